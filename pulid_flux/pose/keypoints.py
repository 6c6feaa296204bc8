"""The ``POSE_KEYPOINT`` layout (comfyui_controlnet_aux / ComfyUI core) and geometry over it.

A ``POSE_KEYPOINT`` value is a list with one *frame* dict per image::

    {"people": [{"pose_keypoints_2d": [x, y, c] * 18,          # OpenPose COCO-18 body
                 "face_keypoints_2d": [x, y, c] * 70 or None,   # 68 landmarks + 2 pupils
                 "hand_left_keypoints_2d": [x, y, c] * 21 or None,
                 "hand_right_keypoints_2d": [x, y, c] * 21 or None,
                 "foot_keypoints_2d": [x, y, c] * 6}],           # only ComfyUI core's SDPose writes it
     "canvas_width": W, "canvas_height": H}

Triplets are flat (what both packs write); nested ``[[x, y, c], ...]`` lists are read too.

Units. The OpenPose preprocessor writes coordinates normalised to 0-1, DWPose and core SDPose write
pixels of the canvas. A frame is taken as **normalised when every present point has |x| <= 1 and
|y| <= 1** (the test controlnet_aux's renderer applies), otherwise as pixels. Edits keep the units of
the frame they are given.

Present and visible. A point is *absent* when its confidence is <= 0 or it carries a "missing"
marker: (0, 0), or -1 for x or y (used by some editors). Absent points are never moved and are
written back unchanged. A point is *visible* (drawn, counted in bounding boxes) when it is present and
its confidence is >= ``min_confidence`` (0.3 by default: DWPose's own cut, and ComfyUI core's
``score_threshold``; controlnet_aux writes 1.0 or 0.0, so its frames draw identically).

Indices follow OpenPose COCO-18; "left"/"right" are the *subject's* sides, so on a figure facing
the camera the left shoulder (5) appears on the image's right.
"""

import copy
import math

import numpy as np

from ..errors import PulidError

BODY = "pose_keypoints_2d"
FACE = "face_keypoints_2d"
HAND_LEFT = "hand_left_keypoints_2d"
HAND_RIGHT = "hand_right_keypoints_2d"
FOOT = "foot_keypoints_2d"

# Number of points each part must hold when it is present.
PART_SIZES = {BODY: 18, FACE: 70, HAND_LEFT: 21, HAND_RIGHT: 21, FOOT: 6}
PARTS = tuple(PART_SIZES)

BODY_JOINTS = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
NOSE, NECK = 0, 1
R_SHOULDER, R_ELBOW, R_WRIST = 2, 3, 4
L_SHOULDER, L_ELBOW, L_WRIST = 5, 6, 7
R_HIP, R_KNEE, R_ANKLE = 8, 9, 10
L_HIP, L_KNEE, L_ANKLE = 11, 12, 13
R_EYE, L_EYE, R_EAR, L_EAR = 14, 15, 16, 17
HEAD_POINTS = (NOSE, R_EYE, L_EYE, R_EAR, L_EAR)

# The 17 limbs OpenPose draws, in drawing order; limb k is filled with JOINT_COLORS[k] * 0.6.
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)
# RGB, one per body joint (and per limb, by position).
JOINT_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
LIMB_INTENSITY = 0.6
LIMB_COLORS = tuple(tuple(int(float(c) * LIMB_INTENSITY) for c in JOINT_COLORS[k]) for k in range(len(LIMBS)))

# 21-point hand: the wrist (0) and four points along each of the five fingers.
HAND_EDGES = tuple((0 if j == 0 else 4 * f + j, 4 * f + j + 1) for f in range(5) for j in range(4))


def _pairs_to_permutation(size, pairs):
    perm = list(range(size))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


# Index permutations that swap the subject's left and right (used when mirroring).
BODY_MIRROR = _pairs_to_permutation(18, [(2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)])
FACE_MIRROR = _pairs_to_permutation(70, (
    [(i, 16 - i) for i in range(8)]                                      # jaw line
    + [(17 + i, 26 - i) for i in range(5)]                               # eyebrows
    + [(31, 35), (32, 34)]                                               # nostrils
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]       # eyes
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]                 # outer lips
    + [(60, 64), (61, 63), (65, 67)]                                     # inner lips
    + [(68, 69)]                                                         # pupils
))
FOOT_MIRROR = _pairs_to_permutation(6, [(0, 3), (1, 4), (2, 5)])
PART_MIRROR = {BODY: BODY_MIRROR, FACE: FACE_MIRROR, FOOT: FOOT_MIRROR}
HAND_SWAP = {HAND_LEFT: HAND_RIGHT, HAND_RIGHT: HAND_LEFT}

DEFAULT_MIN_CONFIDENCE = 0.3
CROWN_PER_NOSE_NECK = 0.9
CROWN_PER_EYE_NOSE = 4.0


class PoseFormatError(PulidError, ValueError):
    """A POSE_KEYPOINT value or pose JSON file does not have the expected layout."""


# --------------------------------------------------------------------------------------------------
# Reading and validating


def as_frames(pose) -> list:
    """The frames of a POSE_KEYPOINT value: a list of frame dicts, or one frame dict."""
    if isinstance(pose, dict):
        frames = [pose]
    elif isinstance(pose, (list, tuple)):
        frames = list(pose)
    else:
        raise PoseFormatError(f"a pose must be a frame dict or a list of frame dicts, got {type(pose).__name__}")
    if not frames:
        raise PoseFormatError("the pose list is empty: expected at least one frame dict")
    for i, frame in enumerate(frames):
        validate_frame(frame, where=f"frame {i}")
    return frames


def as_frame(pose) -> dict:
    """One frame: ``pose`` itself if it is a frame dict, else the first frame of the list."""
    return as_frames(pose)[0]


def validate_frame(frame, where="frame") -> None:
    """Raise PoseFormatError naming the frame, person and key when ``frame`` is malformed."""
    if not isinstance(frame, dict):
        raise PoseFormatError(f"{where}: expected a dict with 'people', 'canvas_width', 'canvas_height', "
                              f"got {type(frame).__name__}")
    for key in ("canvas_width", "canvas_height"):
        value = frame.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise PoseFormatError(f"{where}: '{key}' must be a positive number, got {value!r}")
    people = frame.get("people", [])
    if not isinstance(people, list):
        raise PoseFormatError(f"{where}: 'people' must be a list, got {type(people).__name__}")
    for p, person in enumerate(people):
        if not isinstance(person, dict):
            raise PoseFormatError(f"{where}, person {p}: expected a dict of keypoint lists, "
                                  f"got {type(person).__name__}")
        for key in PARTS:
            part_array(person, key, where=f"{where}, person {p}")


def part_array(person: dict, key: str, where="person") -> np.ndarray | None:
    """The points of one part as a float64 (N, 3) array of x, y, c; None when the part is absent."""
    value = person.get(key)
    if not value:  # None, [] (both written by the packs for "not detected")
        return None
    expected = PART_SIZES[key]
    if not isinstance(value, (list, tuple)):
        raise PoseFormatError(f"{where}, '{key}': expected a list of numbers, got {type(value).__name__}")
    if all(isinstance(v, (list, tuple)) for v in value):
        if any(len(v) != 3 for v in value):
            raise PoseFormatError(f"{where}, '{key}': nested keypoints must be [x, y, c] triplets")
        flat = [x for v in value for x in v]
    else:
        flat = value
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in flat):
        raise PoseFormatError(f"{where}, '{key}': every value must be a number")
    if len(flat) != 3 * expected:
        raise PoseFormatError(f"{where}, '{key}': expected {expected} x,y,c triplets ({3 * expected} numbers), "
                              f"got {len(flat)} numbers")
    arr = np.asarray(flat, dtype=np.float64).reshape(expected, 3)
    if not np.all(np.isfinite(arr)):
        raise PoseFormatError(f"{where}, '{key}': holds NaN or infinite values")
    return arr


def present_mask(points: np.ndarray) -> np.ndarray:
    """Points that carry a position: confidence > 0 and no missing marker ((0, 0) or -1)."""
    x, y, c = points[:, 0], points[:, 1], points[:, 2]
    missing = ((x == 0) & (y == 0)) | (x == -1) | (y == -1)
    return (c > 0) & ~missing


def visible_mask(points: np.ndarray, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> np.ndarray:
    """Points to draw and to measure: present and at least ``min_confidence`` confident."""
    return present_mask(points) & (points[:, 2] >= min_confidence)


def canvas_size(frame: dict) -> tuple[float, float]:
    return frame["canvas_width"], frame["canvas_height"]


def is_normalized(frame: dict) -> bool:
    """True when every present point of the frame lies within [-1, 1] (see the module docstring)."""
    found = False
    for person in frame.get("people", []):
        for key in PARTS:
            arr = part_array(person, key)
            if arr is None:
                continue
            pts = arr[present_mask(arr)]
            if len(pts):
                found = True
                if np.any(np.abs(pts[:, :2]) > 1.0):
                    return False
    return found


# --------------------------------------------------------------------------------------------------
# Pixel-space geometry for edits


class PixelPose:
    """Every part of every person of one frame as (N, 3) arrays in canvas pixels.

    Edits move the x, y columns of present points; ``to_frame`` writes the result back into a deep
    copy of the source frame in the source's units (normalised stays normalised), leaving absent
    points, unknown keys and the flat-or-nested shape of each part untouched. In a normalised frame a
    point moved off the canvas (outside 0-1) is written as missing (0, 0, 0), as a detector would
    report it: a coordinate beyond 1 would otherwise turn the whole frame into "pixels" for every
    reader. Pixel frames keep off-canvas points.
    """

    def __init__(self, frame: dict):
        validate_frame(frame)
        self.source = frame
        self.normalized = is_normalized(frame)
        self.width, self.height = canvas_size(frame)
        self.parts: dict[tuple[int, str], np.ndarray] = {}
        self.present: dict[tuple[int, str], np.ndarray] = {}
        for p, person in enumerate(frame.get("people", [])):
            for key in PARTS:
                arr = part_array(person, key)
                if arr is None:
                    continue
                mask = present_mask(arr)
                if self.normalized:
                    arr[mask, 0] *= self.width
                    arr[mask, 1] *= self.height
                self.parts[(p, key)] = arr
                self.present[(p, key)] = mask
        self._start = {key: arr[:, :2].copy() for key, arr in self.parts.items()}

    @property
    def num_people(self) -> int:
        return len(self.source.get("people", []))

    def body(self, person: int = 0) -> np.ndarray:
        if not 0 <= person < self.num_people:
            raise PoseFormatError(f"the frame has {self.num_people} people; there is no person {person}")
        arr = self.parts.get((person, BODY))
        if arr is None:
            raise PoseFormatError(f"person {person} has no '{BODY}' (body keypoints)")
        return arr

    def visible_points(self, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> np.ndarray:
        """All visible points of all people and parts, (M, 2) pixels."""
        chunks = [arr[visible_mask(arr, min_confidence), :2] for arr in self.parts.values()]
        return np.concatenate(chunks) if chunks else np.zeros((0, 2))

    def apply(self, fn) -> None:
        """Replace the x, y of every present point by ``fn(xy)`` for an (M, 2) array."""
        for key, arr in self.parts.items():
            mask = self.present[key]
            if mask.any():
                arr[mask, :2] = fn(arr[mask, :2])

    def to_frame(self, width=None, height=None) -> dict:
        width = self.width if width is None else width
        height = self.height if height is None else height
        frame = copy.deepcopy(self.source)
        frame["canvas_width"] = _canvas_value(width, self.source["canvas_width"])
        frame["canvas_height"] = _canvas_value(height, self.source["canvas_height"])
        same_canvas = (width, height) == (self.width, self.height)
        for (p, key), arr in self.parts.items():
            mask = self.present[(p, key)]
            # Points an edit did not move keep their source values exactly (no x * W / W noise).
            moved = mask & np.any(arr[:, :2] != self._start[(p, key)], axis=1)
            if self.normalized and not same_canvas:
                moved = mask
            out = arr.copy()
            off_canvas = np.zeros_like(mask)
            if self.normalized:
                out[mask, 0] /= frame["canvas_width"]
                out[mask, 1] /= frame["canvas_height"]
                # A coordinate beyond 1 would make every reader take the frame for pixels.
                off_canvas = moved & np.any((out[:, :2] < 0) | (out[:, :2] > 1), axis=1)
            original = self.source["people"][p][key]
            frame["people"][p][key] = _write_part(original, out, moved, off_canvas)
        return frame


def _canvas_value(value, like):
    # Keep the source's number type so a frame saved again looks like the one read.
    return round(value) if isinstance(like, int) else float(value)


def _write_part(original, arr, mask, dropped):
    nested = all(isinstance(v, (list, tuple)) for v in original)
    flat_in = [x for v in original for x in v] if nested else list(original)
    flat_out = []
    for i, row in enumerate(arr):
        if dropped[i]:
            flat_out += [0.0, 0.0, 0.0]
        elif mask[i]:
            flat_out += [float(row[0]), float(row[1]), flat_in[3 * i + 2]]
        else:
            flat_out += flat_in[3 * i: 3 * i + 3]
    if nested:
        return [flat_out[i: i + 3] for i in range(0, len(flat_out), 3)]
    return flat_out


def head_top(body: np.ndarray, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> float | None:
    """Estimated y of the top of the skull, in the body array's units (y grows downwards).

    Adult proportions put the crown about 0.9 nose-to-neck distances above the nose (the OpenPose
    neck point lies on the shoulders' line) and about three eye-to-nose distances above the eyes;
    the first rule is used when the nose and neck are visible, the second with the nose and an eye,
    else the highest head keypoint. None when no head point is visible.
    """
    vis = visible_mask(body, min_confidence)
    head = [i for i in HEAD_POINTS if vis[i]]
    if not head:
        return None
    top = float(min(body[i, 1] for i in head))
    if vis[NOSE] and vis[NECK] and body[NECK, 1] > body[NOSE, 1]:
        return min(top, float(body[NOSE, 1] - CROWN_PER_NOSE_NECK * (body[NECK, 1] - body[NOSE, 1])))
    eyes = [i for i in (R_EYE, L_EYE) if vis[i]]
    if vis[NOSE] and eyes:
        span = abs(body[NOSE, 1] - np.mean([body[i, 1] for i in eyes]))
        return min(top, float(body[NOSE, 1] - CROWN_PER_EYE_NOSE * span))
    return top


def rotate(xy: np.ndarray, radians: float, center) -> np.ndarray:
    """Rotate (M, 2) points about ``center`` by ``radians`` in image coordinates (x right, y down),
    so a positive angle turns clockwise on screen, matching ``atan2(dy, dx)`` angles."""
    rot = np.array([[math.cos(radians), -math.sin(radians)], [math.sin(radians), math.cos(radians)]])
    c = np.asarray(center, dtype=np.float64)
    return (xy - c) @ rot.T + c
