"""A bank of ready poses, placed for any canvas aspect, plus users' own keypoint JSON files.

Built-in entries share one front-facing adult figure (about 171 cm, coordinates in centimetres from
the crown of the head, the subject's left on the image's right) and differ in framing:

=====================  ===================================================================
``headshot``           head and shoulders, cut at the upper chest (44 cm below the crown)
``portrait``           chest-up, cut below the elbows (70 cm)
``medium``             waist-up "medium shot", cut at mid-thigh (100 cm)
``full_body``          the whole figure, feet ``bottom_margin`` above the bottom edge
``full_body_arm_up``   full body with the left arm raised high (165 deg, elbow bent 10 deg)
=====================  ===================================================================

Placement (``pose_bank``): one uniform scale, the crown 18 % of the height below the top edge (the
head-room the reference pipeline used), centred horizontally, every drawn point inside the canvas
(5 % side margins). A cut framing puts its cut line on the bottom edge when the width allows; when
the width is the limit (a headshot on a tall canvas) more of the body comes into view and the points
that enter the frame are drawn. Points outside the frame are written as missing (0, 0, 0), as the
pose detectors do. Frames use normalised coordinates with the canvas set to the requested size.

Users' entries are POSE_KEYPOINT JSON files (``<name>.json``, e.g. saved by controlnet_aux) in the
given folders (the ``poses`` model folder in ComfyUI); their first frame is fitted with
``fit_to_canvas`` and the same margins. Built-in names cannot be overridden.
"""

import logging
from pathlib import Path

import numpy as np

from ..errors import PulidError
from .edit import (
    DEFAULT_BOTTOM_MARGIN,
    DEFAULT_EDGE_MARGIN,
    DEFAULT_HEAD_MARGIN,
    DEFAULT_SIDE_MARGIN,
    FigureBounds,
    fit_scale,
    fit_to_canvas,
    pose_arm,
)
from .jsonio import load_pose_json
from .keypoints import BODY, FACE, HAND_LEFT, HAND_RIGHT, as_frame, head_top

log = logging.getLogger(__name__)

# (x, y) in cm from the crown; the order is OpenPose COCO-18.
STANDING_FIGURE_CM = (
    (0.0, 14.5),     # nose
    (0.0, 30.0),     # neck (midpoint of the shoulders)
    (-19.0, 30.0),   # right shoulder
    (-22.0, 60.0),   # right elbow   (upper arm 30 cm)
    (-24.0, 85.0),   # right wrist   (forearm 25 cm)
    (19.0, 30.0),    # left shoulder
    (22.0, 60.0),    # left elbow
    (24.0, 85.0),    # left wrist
    (-10.0, 84.0),   # right hip
    (-10.5, 126.0),  # right knee    (thigh 42 cm)
    (-11.0, 164.0),  # right ankle   (shin 38 cm)
    (10.0, 84.0),    # left hip
    (10.5, 126.0),   # left knee
    (11.0, 164.0),   # left ankle
    (-3.3, 11.0),    # right eye
    (3.3, 11.0),     # left eye
    (-7.5, 12.5),    # right ear
    (7.5, 12.5),     # left ear
)
SOLE_CM = 171.0  # bottom of the feet: what the bottom margin is measured from

# name -> (bottom of the framing in cm from the crown, whether the frame cuts the body there)
FRAMINGS = {
    "headshot": (44.0, True),
    "portrait": (70.0, True),
    "medium": (100.0, True),
    "full_body": (SOLE_CM, False),
    "full_body_arm_up": (SOLE_CM, False),
}
BUILTIN_POSES = tuple(FRAMINGS)
ARM_UP = ("left", 165.0, 10.0)  # side, raise_deg, bend_deg


class UnknownPoseError(PulidError, ValueError):
    """A pose bank name that is neither built in nor a JSON file in the pose folders."""


def _figure_frame(points_cm, visible=None):
    """A frame in cm 'pixels' with the given points (1.0 confidence) and the rest missing."""
    flat = []
    for i, (x, y) in enumerate(points_cm):
        flat += [float(x), float(y), 1.0] if visible is None or visible[i] else [0.0, 0.0, 0.0]
    # A canvas far larger than the figure keeps its cm values from reading as normalised ones.
    return {"people": [{BODY: flat, FACE: None, HAND_LEFT: None, HAND_RIGHT: None}],
            "canvas_height": 1000, "canvas_width": 1000}


def builtin_figure_cm(name: str) -> np.ndarray:
    """The built-in figure of ``name`` in cm from the crown, (18, 2)."""
    if name not in FRAMINGS:
        raise UnknownPoseError(f"no built-in pose {name!r}; built-ins: {', '.join(BUILTIN_POSES)}")
    pts = np.array(STANDING_FIGURE_CM, dtype=np.float64)
    if name == "full_body_arm_up":
        side, raise_deg, bend_deg = ARM_UP
        # The figure's crown is at y=0, so shift it down to keep the 'cm' frame free of negatives.
        frame = pose_arm(_figure_frame(pts + [500.0, 100.0]), side, raise_deg, bend_deg)
        pts = np.array(frame["people"][0][BODY], dtype=np.float64).reshape(18, 3)[:, :2] - [500.0, 100.0]
    return pts


def _place_builtin(name, width, height, head_margin, side_margin, bottom_margin):
    pts = builtin_figure_cm(name)
    bottom, cut = FRAMINGS[name]
    body = np.column_stack([pts, np.ones(len(pts))])
    crown = head_top(body)
    visible = pts[:, 1] <= bottom
    for _ in range(len(pts) + 1):  # the visible set only grows, so this settles
        vis_pts = pts[visible]
        bounds = FigureBounds(float(vis_pts[:, 0].min()), float(vis_pts[:, 0].max()),
                              min(float(vis_pts[:, 1].min()), crown),
                              bottom if not cut else float(vis_pts[:, 1].max()), crown)
        s = fit_scale(bounds, width, height, cut_at=bottom if cut else None, head_margin=head_margin,
                      side_margin=side_margin, bottom_margin=bottom_margin, edge_margin=DEFAULT_EDGE_MARGIN)
        if not cut:
            break
        shown_to = crown + (1 - head_margin) * height / s  # the cm line on the bottom edge
        grown = pts[:, 1] <= shown_to
        if np.array_equal(grown, visible):
            break
        visible = grown
    cx = (bounds.left + bounds.right) / 2.0
    xy = (pts - [cx, crown]) * s + [width / 2.0, head_margin * height]
    flat = []
    for (x, y), vis in zip(xy, visible):
        flat += [float(x / width), float(y / height), 1.0] if vis else [0.0, 0.0, 0.0]
    return {"people": [{BODY: flat, FACE: None, HAND_LEFT: None, HAND_RIGHT: None}],
            "canvas_height": int(height), "canvas_width": int(width)}


def _user_files(extra_dirs):
    found = {}
    for folder in extra_dirs or ():
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            name = path.stem
            if name in FRAMINGS:
                log.warning("pose file %s is ignored: %r is a built-in pose name; rename the file", path, name)
            elif name not in found:
                found[name] = path
    return found


def list_pose_bank(extra_dirs=()) -> list[str]:
    """Built-in names first, then the users' JSON pose names (file stems) in ``extra_dirs``."""
    return list(BUILTIN_POSES) + sorted(_user_files(extra_dirs))


def pose_bank(name: str, width: int, height: int, extra_dirs=(), *, head_margin=DEFAULT_HEAD_MARGIN,
              side_margin=DEFAULT_SIDE_MARGIN, bottom_margin=DEFAULT_BOTTOM_MARGIN) -> dict:
    """One frame dict with the ``name`` pose placed on a ``width`` x ``height`` canvas."""
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise ValueError(f"canvas size must be positive, got {width}x{height}")
    name = name.removesuffix(".json")
    if name in FRAMINGS:
        return _place_builtin(name, width, height, head_margin, side_margin, bottom_margin)
    files = _user_files(extra_dirs)
    if name not in files:
        raise UnknownPoseError(f"no pose named {name!r}: built-ins are {', '.join(BUILTIN_POSES)}"
                               + (f"; JSON poses found: {', '.join(sorted(files))}" if files else
                                  f"; no <name>.json files in {', '.join(map(str, extra_dirs)) or 'any pose folder'}"))
    frame = as_frame(load_pose_json(files[name]))
    return fit_to_canvas(frame, width, height, head_margin=head_margin, side_margin=side_margin,
                         bottom_margin=bottom_margin)
