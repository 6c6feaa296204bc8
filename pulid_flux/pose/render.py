"""OpenPose skeleton maps drawn the way controlnet_aux's OpenPose / DWPose preprocessors draw them.

Body (``draw_bodypose``): black RGB canvas; each of the 17 limbs is a filled ellipse polygon
(``cv2.ellipse2Poly`` with half-length = limb length / 2, half-width = 4 * stick scale, whole-degree
angle, 1-degree steps, then ``cv2.fillConvexPoly``) in its joint colour at 60 % (``int(c * 0.6)``);
then every joint is a filled circle of radius 4 in its full colour, drawn over the limbs.
Hands (``draw_handpose``): 20 edges as 2-px lines coloured by hue ``edge / 20`` (HSV, full saturation
and value), then blue points of radius 4. Face (``draw_facepose``): white points of radius 3.
Hand and face points whose integer pixel x or y is not above 0.01 are skipped, as controlnet_aux does.
Per person the order is body, left hand, right hand, face.

Stick scaling. ``stick_scaling="none"`` (default) is the preprocessors' default look. ``"xinsir"``
is their ``scale_stick_for_xinsr_cn`` option: stick half-width 4 * s with
``s = 1 if max(W, H) < 500 else min(2 + max(W, H) // 1000, 7)`` (3 at 1024 px, 4 at 2048 px). As in
controlnet_aux the joint radius stays 4 in both modes.

Coordinates are mapped from the frame's canvas to the requested size: normalised points are
multiplied by the output size, pixel points by output size / canvas size (1.0 at the canvas size, so
the drawing is then identical to controlnet_aux's).
"""

import colorsys
import math

import cv2
import numpy as np

from .keypoints import (
    BODY,
    DEFAULT_MIN_CONFIDENCE,
    FACE,
    HAND_EDGES,
    HAND_LEFT,
    HAND_RIGHT,
    JOINT_COLORS,
    LIMB_COLORS,
    LIMBS,
    PoseFormatError,
    as_frame,
    as_frames,
    is_normalized,
    part_array,
    visible_mask,
)

STICK_WIDTH = 4
JOINT_RADIUS = 4
HAND_POINT_RADIUS = 4
HAND_LINE_THICKNESS = 2
FACE_POINT_RADIUS = 3
HAND_POINT_COLOR = (0, 0, 255)
FACE_POINT_COLOR = (255, 255, 255)
EPS = 0.01
STICK_SCALINGS = ("none", "xinsir")
# cv2 rounds these float colours itself, exactly as it does for controlnet_aux's matplotlib ones.
HAND_EDGE_COLORS = tuple(
    tuple(v * 255 for v in colorsys.hsv_to_rgb(i / float(len(HAND_EDGES)), 1.0, 1.0)) for i in range(len(HAND_EDGES))
)


def stick_scale(width: int, height: int, stick_scaling: str = "none") -> int:
    if stick_scaling not in STICK_SCALINGS:
        raise ValueError(f"stick_scaling must be one of {STICK_SCALINGS}, got {stick_scaling!r}")
    if stick_scaling == "none":
        return 1
    max_side = max(width, height)
    return 1 if max_side < 500 else min(2 + max_side // 1000, 7)


def render_pose(pose, width=None, height=None, *, draw_body=True, draw_hands=True, draw_face=True,
                stick_scaling="none", min_confidence=DEFAULT_MIN_CONFIDENCE) -> np.ndarray:
    """Draw one frame (``pose`` itself, or the first frame of a list) as an RGB uint8 (H, W, 3) map.

    ``width``/``height`` default to the frame's canvas size.
    """
    frame = as_frame(pose)
    canvas_w, canvas_h = frame["canvas_width"], frame["canvas_height"]
    out_w = round(canvas_w) if width is None else int(width)
    out_h = round(canvas_h) if height is None else int(height)
    if out_w <= 0 or out_h <= 0:
        raise PoseFormatError(f"render size must be positive, got {out_w}x{out_h}")
    if is_normalized(frame):
        sx, sy = float(out_w), float(out_h)
    else:
        sx, sy = out_w / float(canvas_w), out_h / float(canvas_h)
    scale = stick_scale(out_w, out_h, stick_scaling)
    canvas = np.zeros((out_h, out_w, 3), dtype=np.uint8)
    for person in frame.get("people", []):
        if draw_body:
            _draw_body(canvas, part_array(person, BODY), sx, sy, scale, min_confidence)
        if draw_hands:
            _draw_hand(canvas, part_array(person, HAND_LEFT), sx, sy, min_confidence)
            _draw_hand(canvas, part_array(person, HAND_RIGHT), sx, sy, min_confidence)
        if draw_face:
            _draw_face(canvas, part_array(person, FACE), sx, sy, min_confidence)
    return canvas


def render_poses(pose, width=None, height=None, *, progress=None, **kwargs) -> list[np.ndarray]:
    """Every frame of a POSE_KEYPOINT value; frames without an explicit size use the first frame's.
    ``progress(done, total, "render")`` is called after each frame."""
    frames = as_frames(pose)
    width = round(frames[0]["canvas_width"]) if width is None else width
    height = round(frames[0]["canvas_height"]) if height is None else height
    maps = []
    for frame in frames:
        maps.append(render_pose(frame, width, height, **kwargs))
        if progress:
            progress(len(maps), len(frames), "render")
    return maps


def _draw_body(canvas, points, sx, sy, scale, min_confidence):
    if points is None:
        return
    vis = visible_mask(points, min_confidence)
    for (a, b), color in zip(LIMBS, LIMB_COLORS):
        if not (vis[a] and vis[b]):
            continue
        xs = np.array([points[a, 0], points[b, 0]]) * sx
        ys = np.array([points[a, 1], points[b, 1]]) * sy
        mx, my = np.mean(xs), np.mean(ys)
        length = ((ys[0] - ys[1]) ** 2 + (xs[0] - xs[1]) ** 2) ** 0.5
        angle = math.degrees(math.atan2(ys[0] - ys[1], xs[0] - xs[1]))
        polygon = cv2.ellipse2Poly((int(mx), int(my)), (int(length / 2), STICK_WIDTH * scale), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, color)
    for i, color in enumerate(JOINT_COLORS):
        if vis[i]:
            cv2.circle(canvas, (int(points[i, 0] * sx), int(points[i, 1] * sy)), JOINT_RADIUS, color, thickness=-1)


def _draw_hand(canvas, points, sx, sy, min_confidence):
    if points is None:
        return
    vis = visible_mask(points, min_confidence)
    px = [(int(x * sx), int(y * sy)) for x, y in points[:, :2]]
    for (a, b), color in zip(HAND_EDGES, HAND_EDGE_COLORS):
        if vis[a] and vis[b] and min(px[a] + px[b]) > EPS:
            cv2.line(canvas, px[a], px[b], color, thickness=HAND_LINE_THICKNESS)
    for i, (x, y) in enumerate(px):
        if vis[i] and x > EPS and y > EPS:
            cv2.circle(canvas, (x, y), HAND_POINT_RADIUS, HAND_POINT_COLOR, thickness=-1)


def _draw_face(canvas, points, sx, sy, min_confidence):
    if points is None:
        return
    vis = visible_mask(points, min_confidence)
    for i, (x, y) in enumerate(points[:, :2]):
        x, y = int(x * sx), int(y * sy)
        if vis[i] and x > EPS and y > EPS:
            cv2.circle(canvas, (x, y), FACE_POINT_RADIUS, FACE_POINT_COLOR, thickness=-1)

