"""Pose edits that keep the figure's proportions: arm angles, uniform scale/move, fitting to a canvas,
head-room, mirroring.

Every edit works in canvas pixels (so limb lengths are true lengths on non-square canvases) and
returns a new frame in the units of the one given; a list of frames gives a list back, each frame
edited. Absent points, unknown keys and the number types of untouched values are preserved.

Arm angles (``pose_arm``/``arm_angles``) are measured in the image plane:
* ``raise_deg``: the upper arm's angle from hanging straight down, towards the side the shoulder is on
  (away from the neck): 0 = down, 90 = out horizontally, 180 = straight up; negative = across the body.
* ``bend_deg``: the elbow, as the forearm's angle relative to the upper arm's direction, positive
  continuing the same way (90 on an arm held out horizontally points the forearm up).
"""

import copy
import math
from dataclasses import dataclass

import numpy as np

from .keypoints import (
    BODY,
    DEFAULT_MIN_CONFIDENCE,
    HAND_LEFT,
    HAND_RIGHT,
    HAND_SWAP,
    L_ELBOW,
    L_SHOULDER,
    L_WRIST,
    LIMBS,
    NECK,
    PART_MIRROR,
    R_ELBOW,
    R_SHOULDER,
    R_WRIST,
    PixelPose,
    PoseFormatError,
    as_frame,
    head_top,
    part_array,
    rotate,
    validate_frame,
    visible_mask,
)

ARMS = {
    "left": (L_SHOULDER, L_ELBOW, L_WRIST, HAND_LEFT),
    "right": (R_SHOULDER, R_ELBOW, R_WRIST, HAND_RIGHT),
}
DEFAULT_HEAD_MARGIN = 0.18   # gap above the crown, as a fraction of the canvas height
DEFAULT_SIDE_MARGIN = 0.05
DEFAULT_BOTTOM_MARGIN = 0.04
DEFAULT_EDGE_MARGIN = 0.02   # for points above the crown (a raised hand)
CUT_TOLERANCE = 0.03         # a figure reaching this close to the canvas bottom is taken as cut by it


def _per_frame(edit):
    """Apply a one-frame edit to every frame of a list, keeping the list-or-dict shape."""
    def wrapper(pose, *args, **kwargs):
        if isinstance(pose, (list, tuple)):
            if not pose:
                raise PoseFormatError("the pose list is empty: expected at least one frame dict")
            return [edit(frame, *args, **kwargs) for frame in pose]
        return edit(pose, *args, **kwargs)
    wrapper.__name__ = edit.__name__
    wrapper.__doc__ = edit.__doc__
    wrapper.__wrapped__ = edit
    return wrapper


# --------------------------------------------------------------------------------------------------
# Measuring


def limb_lengths(pose, person: int = 0, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> dict:
    """Pixel length of every visible limb of one person, keyed by its (joint, joint) pair."""
    body = PixelPose(as_frame(pose)).body(person)
    vis = visible_mask(body, min_confidence)
    return {(a, b): float(np.hypot(*(body[a, :2] - body[b, :2]))) for a, b in LIMBS if vis[a] and vis[b]}


def _outward(body, vis, shoulder, side):
    if vis[NECK] and abs(body[shoulder, 0] - body[NECK, 0]) > 1e-6:
        return 1.0 if body[shoulder, 0] > body[NECK, 0] else -1.0
    return 1.0 if side == "left" else -1.0  # a figure facing the camera


def _angle_from_down(vec, out):
    return math.degrees(math.atan2(out * vec[0], vec[1]))


def _wrap(deg):
    return (deg + 180.0) % 360.0 - 180.0


def _arm(body, side, min_confidence):
    if side not in ARMS:
        raise ValueError(f"arm side must be 'left' or 'right' (the subject's), got {side!r}")
    shoulder, elbow, wrist, hand = ARMS[side]
    vis = visible_mask(body, min_confidence)
    for idx in (shoulder, elbow):
        if not vis[idx]:
            raise PoseFormatError(f"cannot pose the {side} arm: the {side} "
                                  f"{'shoulder' if idx == shoulder else 'elbow'} keypoint is missing")
    return shoulder, elbow, wrist, hand, vis


def arm_angles(pose, side: str, person: int = 0, min_confidence: float = DEFAULT_MIN_CONFIDENCE):
    """(raise_deg, bend_deg) of one arm; bend is None when the wrist is missing."""
    body = PixelPose(as_frame(pose)).body(person)
    shoulder, elbow, wrist, _, vis = _arm(body, side, min_confidence)
    out = _outward(body, vis, shoulder, side)
    upper = body[elbow, :2] - body[shoulder, :2]
    raise_deg = _angle_from_down(upper, out)
    if not vis[wrist]:
        return raise_deg, None
    fore = body[wrist, :2] - body[elbow, :2]
    return raise_deg, _wrap(_angle_from_down(fore, out) - raise_deg)


# --------------------------------------------------------------------------------------------------
# Edits


@_per_frame
def pose_arm(frame, side: str, raise_deg: float, bend_deg: float = 0.0, person: int = 0,
             min_confidence: float = DEFAULT_MIN_CONFIDENCE):
    """Set one arm's angles (see the module docstring), keeping the upper-arm and forearm lengths.

    The hand keypoints of that side, if any, follow the wrist rigidly.
    """
    pix = PixelPose(frame)
    body = pix.body(person)
    shoulder, elbow, wrist, hand, vis = _arm(body, side, min_confidence)
    out = _outward(body, vis, shoulder, side)

    def direction(deg):
        t = math.radians(deg)
        return np.array([out * math.sin(t), math.cos(t)])

    s = body[shoulder, :2].copy()
    old_e, old_w = body[elbow, :2].copy(), body[wrist, :2].copy()
    new_e = s + np.hypot(*(old_e - s)) * direction(raise_deg)
    body[elbow, :2] = new_e
    if vis[wrist]:
        new_w = new_e + np.hypot(*(old_w - old_e)) * direction(raise_deg + bend_deg)
        body[wrist, :2] = new_w
        hand_pts = pix.parts.get((person, hand))
        if hand_pts is not None:
            mask = pix.present[(person, hand)]
            old_dir, new_dir = old_w - old_e, new_w - new_e
            turn = math.atan2(new_dir[1], new_dir[0]) - math.atan2(old_dir[1], old_dir[0])
            hand_pts[mask, :2] = rotate(hand_pts[mask, :2], turn, old_w) + (new_w - old_w)
    return pix.to_frame()


@_per_frame
def transform_pose(frame, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0, center=None,
                   width=None, height=None):
    """Scale uniformly about ``center`` (default: the canvas centre), then move by (dx, dy) pixels.

    ``width``/``height`` give the result a new canvas size (the points keep their pixel positions).
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    pix = PixelPose(frame)
    c = np.array(center if center is not None else (pix.width / 2.0, pix.height / 2.0), dtype=np.float64)
    pix.apply(lambda xy: (xy - c) * scale + c + np.array([dx, dy]))
    return pix.to_frame(width, height)


@_per_frame
def mirror_pose(frame):
    """Flip left-right: x -> W - x, and the subject's left and right swap (body, face, feet and hands),
    so a raised left arm becomes a raised right arm on the other side of the image."""
    validate_frame(frame)
    swapped = copy.deepcopy(frame)
    for person in swapped.get("people", []):
        for key, perm in PART_MIRROR.items():
            arr = part_array(person, key)
            if arr is None:
                continue
            value = person[key]
            nested = all(isinstance(v, (list, tuple)) for v in value)
            triplets = [list(v) for v in value] if nested else [value[3 * i: 3 * i + 3] for i in range(len(arr))]
            triplets = [triplets[perm[i]] for i in range(len(triplets))]
            person[key] = triplets if nested else [x for t in triplets for x in t]
        renamed = {HAND_SWAP.get(k, k): v for k, v in person.items()}
        person.clear()
        person.update(renamed)
    pix = PixelPose(swapped)
    pix.apply(lambda xy: np.column_stack([pix.width - xy[:, 0], xy[:, 1]]))
    return pix.to_frame()


@dataclass(frozen=True)
class FigureBounds:
    """Bounding box of the visible points in canvas pixels, with the estimated crown of the head."""

    left: float
    right: float
    top: float      # highest visible point (may be a raised hand above the crown)
    bottom: float
    crown: float    # top of the head, or ``top`` when no head point is visible


def figure_bounds(frame, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> FigureBounds:
    pix = PixelPose(as_frame(frame))
    pts = pix.visible_points(min_confidence)
    if not len(pts):
        raise PoseFormatError("the pose has no visible keypoints to measure")
    crowns = []
    for p in range(pix.num_people):
        body = pix.parts.get((p, BODY))
        if body is not None:
            top = head_top(body, min_confidence)
            if top is not None:
                crowns.append(top)
    top = float(pts[:, 1].min())
    crown = min(crowns) if crowns else top
    return FigureBounds(float(pts[:, 0].min()), float(pts[:, 0].max()), min(top, crown),
                        float(pts[:, 1].max()), crown)


def fit_scale(bounds: FigureBounds, width, height, *, cut_at=None, head_margin=DEFAULT_HEAD_MARGIN,
              side_margin=DEFAULT_SIDE_MARGIN, bottom_margin=DEFAULT_BOTTOM_MARGIN,
              edge_margin=DEFAULT_EDGE_MARGIN) -> float:
    """The largest uniform scale that puts the crown ``head_margin`` * H below the top edge and keeps
    the figure inside the canvas: within ``side_margin`` of the sides, ``edge_margin`` of the top (for
    points above the crown) and ``bottom_margin`` of the bottom; or, when the figure is cut at source
    y ``cut_at``, that line on the bottom edge."""
    if not 0 <= head_margin < 1 or not 0 <= side_margin < 0.5 or not 0 <= bottom_margin < 1:
        raise ValueError("margins must be fractions of the canvas: head/bottom in [0, 1), side in [0, 0.5)")
    if head_margin + (0 if cut_at is not None else bottom_margin) >= 1:
        raise ValueError(f"head margin {head_margin} and bottom margin {bottom_margin} leave no room for the figure")
    limits = []
    below = (cut_at if cut_at is not None else bounds.bottom) - bounds.crown
    room_below = (1 - head_margin - (0 if cut_at is not None else bottom_margin)) * height
    if below > 0:
        limits.append(room_below / below)
    if bounds.right > bounds.left:
        limits.append((1 - 2 * side_margin) * width / (bounds.right - bounds.left))
    above = bounds.crown - bounds.top
    if above > 0:
        limits.append(max(head_margin - edge_margin, 0.0) * height / above)
    if not limits:
        raise PoseFormatError("the pose's visible keypoints are a single point; there is no figure to fit")
    return min(limits)


@_per_frame
def fit_to_canvas(frame, width: int, height: int, *, head_margin=DEFAULT_HEAD_MARGIN,
                  side_margin=DEFAULT_SIDE_MARGIN, bottom_margin=DEFAULT_BOTTOM_MARGIN,
                  edge_margin=DEFAULT_EDGE_MARGIN, cut_bottom=None,
                  min_confidence: float = DEFAULT_MIN_CONFIDENCE):
    """Place the figure on a ``width`` x ``height`` canvas: uniform scale (see ``fit_scale``), centred
    horizontally, the crown ``head_margin`` of the height below the top.

    ``cut_bottom``: whether the figure continues below its canvas (a head-and-shoulders crop). None
    decides from the pose: cut when the lowest visible point is within 3 % of the canvas bottom. A
    cut figure keeps its cut on the new bottom edge (when the width allows), instead of floating.
    """
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"canvas size must be positive, got {width}x{height}")
    pix = PixelPose(frame)
    bounds = figure_bounds(frame, min_confidence)
    if cut_bottom is None:
        cut_bottom = bounds.bottom >= (1 - CUT_TOLERANCE) * pix.height
    cut_at = max(float(pix.height), bounds.bottom) if cut_bottom else None
    s = fit_scale(bounds, width, height, cut_at=cut_at, head_margin=head_margin, side_margin=side_margin,
                  bottom_margin=bottom_margin, edge_margin=edge_margin)
    cx = (bounds.left + bounds.right) / 2.0
    offset = np.array([width / 2.0 - cx * s, head_margin * height - bounds.crown * s])
    pix.apply(lambda xy: xy * s + offset)
    return pix.to_frame(int(width), int(height))


@_per_frame
def pad_head_margin(frame, fraction: float = DEFAULT_HEAD_MARGIN, min_confidence: float = DEFAULT_MIN_CONFIDENCE):
    """Make the gap above the crown at least ``fraction`` of the canvas height, by shrinking the
    figure about its lowest visible point (a figure cut by the bottom edge stays cut there) and its
    horizontal centre. A figure that already has that much room is returned unchanged."""
    if not 0 <= fraction < 1:
        raise ValueError(f"head margin must be a fraction in [0, 1), got {fraction}")
    pix = PixelPose(frame)
    b = figure_bounds(frame, min_confidence)
    target = fraction * pix.height
    if b.crown >= target or b.bottom <= target:
        return pix.to_frame()
    s = (b.bottom - target) / (b.bottom - b.crown)
    anchor = np.array([(b.left + b.right) / 2.0, b.bottom])
    pix.apply(lambda xy: (xy - anchor) * s + anchor)
    return pix.to_frame()


def target_aspect_mismatch(width_a, height_a, width_b, height_b) -> float:
    """Relative difference of two aspect ratios (0.02 = 2 %)."""
    return abs((width_a / float(height_a)) / (width_b / float(height_b)) - 1.0)


__all__ = [
    "FigureBounds",
    "arm_angles",
    "figure_bounds",
    "fit_scale",
    "fit_to_canvas",
    "limb_lengths",
    "mirror_pose",
    "pad_head_margin",
    "pose_arm",
    "target_aspect_mismatch",
    "transform_pose",
]
