"""The head-pose view bank: a pose-bank figure whose head is turned to a requested yaw, pitch and roll.

OpenPose draws a head as five points (nose, eyes, ears); a turned head is a nose off the eyes' centre
and, past about 20 degrees, a hidden far ear, and past about 65 degrees a hidden far eye: the way a
pose ControlNet is told "three-quarter" or "profile". Here the five points are a small 3-D head
(centimetres, the bank figure's proportions, with depth) rotated with the same conventions as the
head-pose estimator (:mod:`pulid_flux.face.headpose`: yaw > 0 turns the face toward the image's
right, pitch > 0 looks up, roll > 0 tilts the top of the head toward the image's right) and drawn
orthographically over the bank figure's head. A point whose surface faces away from the camera is
written as missing, as pose detectors do. The shoulders and hips turn by ``body_turn`` times the
yaw (a body follows a turned head partly), narrowing the figure by the cosine of that angle.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from ..face.headpose import rotation_matrix
from .bank import pose_bank
from .keypoints import BODY, L_EAR, L_EYE, NECK, NOSE, R_EAR, R_EYE, part_array

#: framings a view can ask for (the bank entries without a raised arm)
VIEW_FRAMINGS = ("headshot", "portrait", "medium", "full_body")
EYE_DISTANCE_CM = 6.6                 # the bank figure's eyes are at x = -3.3 and +3.3
# Head points in cm: x toward the image's right on a frontal figure, y up from ear level, z toward
# the camera from the head's turning axis; and each point's outward surface direction.
HEAD_POINTS_CM = {
    NOSE: ((0.0, -2.0, 10.0), (0.0, 0.0, 1.0)),
    R_EYE: ((-3.3, 1.5, 7.5), (-0.35, 0.0, 0.94)),     # the subject's right eye: the image's left
    L_EYE: ((3.3, 1.5, 7.5), (0.35, 0.0, 0.94)),
    R_EAR: ((-7.5, 0.0, -1.0), (-1.0, 0.0, 0.0)),
    L_EAR: ((7.5, 0.0, -1.0), (1.0, 0.0, 0.0)),
}
#: a point is drawn while its surface direction's component toward the camera exceeds this (ears
#: stay visible up to ~20 degrees past side-on, as detectors still find them)
VISIBLE_FROM = {NOSE: -1.0, R_EYE: -0.05, L_EYE: -0.05, R_EAR: -0.35, L_EAR: -0.35}
MAX_BODY_TURN_DEG = 60.0
_BODY_SIDE_POINTS = tuple(i for i in range(18) if i not in HEAD_POINTS_CM and i != NECK)


def head_view_pose(framing: str, width: int, height: int, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0,
                   *, body_turn: float = 0.5) -> dict:
    """One POSE_KEYPOINT frame: the ``framing`` bank figure with the head turned (see the module docstring)."""
    if framing not in VIEW_FRAMINGS:
        raise ValueError(f"unknown framing {framing!r} for a head view; use one of {', '.join(VIEW_FRAMINGS)}")
    for name, value, limit in (("yaw", yaw, 180.0), ("pitch", pitch, 90.0), ("roll", roll, 90.0)):
        if not -limit <= float(value) <= limit:
            raise ValueError(f"{name} must be within +-{limit:g} degrees, got {value}")
    if not 0.0 <= body_turn <= 1.0:
        raise ValueError(f"body_turn must be in [0, 1], got {body_turn}")
    frame = copy.deepcopy(pose_bank(framing, width, height))
    person = frame["people"][0]
    body = part_array(person, BODY)
    px = body[:, :2] * [width, height]                       # the bank writes normalised coordinates
    cm = abs(px[L_EYE, 0] - px[R_EYE, 0]) / EYE_DISTANCE_CM  # pixels per cm on this canvas
    pivot = (px[L_EAR] + px[R_EAR]) / 2.0
    rotation = rotation_matrix(yaw, pitch, roll)
    for index, (point, normal) in HEAD_POINTS_CM.items():
        x, y, z = rotation @ np.asarray(point)
        facing = (rotation @ np.asarray(normal))[2]
        if facing <= VISIBLE_FROM[index]:
            body[index] = (0.0, 0.0, 0.0)
            continue
        body[index] = ((pivot[0] + cm * x) / width, (pivot[1] - cm * y) / height, 1.0)
    turn = math.radians(max(-MAX_BODY_TURN_DEG, min(MAX_BODY_TURN_DEG, body_turn * float(yaw))))
    neck_x = px[NECK, 0]
    for index in _BODY_SIDE_POINTS:
        if body[index, 2] > 0:
            body[index, 0] = (neck_x + (px[index, 0] - neck_x) * math.cos(turn)) / width
    person[BODY] = [float(v) for v in body.reshape(-1)]
    return frame

