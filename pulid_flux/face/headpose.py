"""Head pose (yaw, pitch, roll in degrees) from 2-D face landmarks, with ``cv2.solvePnP`` against a
generic 3-D face. No model weights: the 3-D face is a handful of anthropometric mean positions.

Conventions, shared by the estimator, the view bank that draws requested poses and the captions:

* **yaw** > 0: the face turns toward the image's right (the subject's own left); a frontal face is
  0, a profile facing the image's right +90. Mirroring an image flips its sign.
* **pitch** > 0: the face looks up.
* **roll** > 0: the head tilts so its top moves toward the image's right (clockwise on screen).

The generic face is in millimetres with the origin at the nose tip, x toward the image's right on a
frontal face, y up and z toward the camera. Its values are population means from anthropometric
tables (inter-pupillary 63 mm, biocular width 92 mm, mouth width 50 mm, eyes 35 mm above and 27 mm
behind the nose tip); an individual face differs by a few millimetres, which is worth a few degrees.

Landmark schemes (``LANDMARK_SCHEMES``), all with left/right as seen in the image:

* ``kps5``: the 5 keypoints every engine returns (eye centres, nose tip, mouth corners: SCRFD's).
* ``dlib5``: dlib's 5-point model (image-right eye outer and inner corner, image-left eye outer and
  inner corner, nose base). It measures no nose tip: yaw shows only through the nose base, about
  15 mm in front of the eye corners, so its estimates are coarser.
* ``dlib68``: dlib's / iBUG's 68 points; the rigid ones are used (eye corners, nose bridge, tip and
  base, mouth corners, chin). Contour points are left out: they follow the silhouette, not the skull.

Accuracy: exact on the generic face itself; on real faces about 5-10 degrees from face-to-face
differences, more for ``dlib5`` and for faces near profile, where 2-D landmark detectors themselves
guess the hidden side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# name -> (x, y, z) in mm; see the module docstring for the frame.
GENERIC_FACE_MM = {
    "nose_tip": (0.0, 0.0, 0.0),
    "nose_bridge": (0.0, 45.0, -20.0),
    "nose_base": (0.0, -13.0, -15.0),
    "left_eye": (-31.5, 35.0, -27.0),          # eye centres (pupils), image-left first
    "right_eye": (31.5, 35.0, -27.0),
    "left_eye_outer": (-46.0, 35.0, -38.0),
    "left_eye_inner": (-16.0, 35.0, -27.0),
    "right_eye_inner": (16.0, 35.0, -27.0),
    "right_eye_outer": (46.0, 35.0, -38.0),
    "left_mouth": (-25.0, -32.0, -28.0),
    "right_mouth": (25.0, -32.0, -28.0),
    "chin": (0.0, -72.0, -25.0),
}

#: scheme -> (number of points the scheme has, {index in the scheme: generic point name})
LANDMARK_SCHEMES = {
    "kps5": (5, {0: "left_eye", 1: "right_eye", 2: "nose_tip", 3: "left_mouth", 4: "right_mouth"}),
    "dlib5": (5, {0: "right_eye_outer", 1: "right_eye_inner", 2: "left_eye_outer", 3: "left_eye_inner",
                  4: "nose_base"}),
    "dlib68": (68, {36: "left_eye_outer", 39: "left_eye_inner", 42: "right_eye_inner", 45: "right_eye_outer",
                    27: "nose_bridge", 30: "nose_tip", 33: "nose_base", 48: "left_mouth", 54: "right_mouth",
                    8: "chin"}),
}

#: head-angle words for captions, by |yaw| band upper limits (degrees)
ANGLE_BANDS = ((25.0, "frontal"), (60.0, "three-quarter"), (180.0, "profile"))

# A frontal face seen by the camera: model (y up, z toward the camera) -> camera (y down, z ahead).
_FRONTAL = np.diag([1.0, -1.0, -1.0])
# Focal length of the assumed pinhole camera, in units of the image's longer side (a normal lens;
# the estimate barely depends on it for a face that fills a small part of the frame).
FOCAL_PER_SIDE = 1.2
_GUESS_DISTANCE_EYES = 10.0     # initial camera distance, in inter-pupillary distances


@dataclass(frozen=True)
class HeadPose:
    """Angles in degrees (conventions in the module docstring) and the fit's RMS reprojection error
    in pixels."""

    yaw: float
    pitch: float
    roll: float
    error_px: float = 0.0
    scheme: str = "kps5"

    @property
    def angle_name(self) -> str:
        return head_angle_name(self.yaw)

    def summary(self) -> dict:
        return {"yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1), "roll": round(self.roll, 1),
                "error_px": round(self.error_px, 2), "scheme": self.scheme, "angle": self.angle_name}


def head_angle_name(yaw: float) -> str:
    """'frontal', 'three-quarter' or 'profile' from the yaw (see ``ANGLE_BANDS``)."""
    for limit, name in ANGLE_BANDS:
        if abs(yaw) < limit:
            return name
    return ANGLE_BANDS[-1][1]


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation in the generic face's frame: roll first, then pitch, then yaw (degrees)."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    # Looking up turns the face's forward axis (+z) toward +y: a rotation by -pitch about x.
    rx = np.array([[1, 0, 0], [0, math.cos(-p), -math.sin(-p)], [0, math.sin(-p), math.cos(-p)]])
    # Tilting the top toward +x: a rotation by -roll about z.
    rz = np.array([[math.cos(-r), -math.sin(-r), 0], [math.sin(-r), math.cos(-r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def angles_from_matrix(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a head rotation built like ``rotation_matrix``."""
    m = np.asarray(matrix, dtype=np.float64)
    a = math.asin(max(-1.0, min(1.0, -m[1, 2])))          # the x rotation (= -pitch)
    yaw = math.atan2(m[0, 2], m[2, 2])
    c = math.atan2(m[1, 0], m[1, 1])                       # the z rotation (= -roll)
    return math.degrees(yaw), -math.degrees(a), -math.degrees(c)


def generic_points(names) -> np.ndarray:
    return np.array([GENERIC_FACE_MM[n] for n in names], dtype=np.float64)


def camera_matrix(width: float, height: float) -> np.ndarray:
    focal = FOCAL_PER_SIDE * max(width, height)
    return np.array([[focal, 0, width / 2.0], [0, focal, height / 2.0], [0, 0, 1]], dtype=np.float64)


def project_generic_face(yaw: float, pitch: float, roll: float, *, scheme: str = "kps5", width: int = 1024,
                         height: int = 1024, distance_mm: float = 600.0, center=None) -> np.ndarray:
    """The generic face rotated by the given angles and projected: the ``scheme``'s landmark array
    (missing indices of a 68-point scheme are NaN). For tests and for drawing requested views."""
    count, mapping = _scheme(scheme)
    names = [mapping[i] for i in sorted(mapping)]
    cam = camera_matrix(width, height)
    if center is not None:       # place the nose tip on this pixel
        cx, cy = center
        offset = np.array([(cx - width / 2.0) * distance_mm / cam[0, 0], (cy - height / 2.0) * distance_mm / cam[1, 1]])
    else:
        offset = np.zeros(2)
    rotation = _FRONTAL @ rotation_matrix(yaw, pitch, roll)
    rvec, _ = cv2.Rodrigues(rotation)
    tvec = np.array([offset[0], offset[1], distance_mm], dtype=np.float64)
    projected, _ = cv2.projectPoints(generic_points(names), rvec, tvec, cam, None)
    points = np.full((count, 2), np.nan)
    points[sorted(mapping)] = projected.reshape(-1, 2)
    return points


def _scheme(scheme: str):
    if scheme not in LANDMARK_SCHEMES:
        raise ValueError(f"unknown landmark scheme {scheme!r}; known: {', '.join(LANDMARK_SCHEMES)}")
    return LANDMARK_SCHEMES[scheme]


def estimate_head_pose(points, scheme: str = "kps5", image_size=None) -> HeadPose:
    """Yaw, pitch and roll of a face from its landmarks (``scheme``), in an image of ``image_size``
    (width, height; default: a square around the points, which suits crops)."""
    count, mapping = _scheme(scheme)
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape != (count, 2):
        raise ValueError(f"the {scheme!r} scheme needs a ({count}, 2) landmark array, got shape {points.shape}")
    indices = sorted(mapping)
    image_points = points[indices]
    if not np.isfinite(image_points).all():
        raise ValueError(f"the landmarks of scheme {scheme!r} contain NaN or infinite values")
    if image_size is None:
        lo, hi = image_points.min(axis=0), image_points.max(axis=0)
        side = 4.0 * float(max(hi - lo))
        width = height = max(side, 1.0)
        shift = (lo + hi) / 2.0 - side / 2.0
        image_points = image_points - shift
    else:
        width, height = (float(v) for v in image_size)
    model = generic_points([mapping[i] for i in indices])
    cam = camera_matrix(width, height)
    rvec, tvec = _frontal_guess(model, image_points, cam)
    ok, rvec, tvec = cv2.solvePnP(model, image_points.reshape(-1, 1, 2), cam, None, rvec, tvec,
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise ValueError(f"head pose: solvePnP found no solution for landmarks {points.tolist()}")
    rotation, _ = cv2.Rodrigues(rvec)
    if tvec[2, 0] <= 0:          # a mirror solution behind the camera: not a face we are looking at
        raise ValueError("head pose: the landmark fit put the face behind the camera (degenerate landmarks)")
    yaw, pitch, roll = angles_from_matrix(_FRONTAL.T @ rotation)
    reprojected, _ = cv2.projectPoints(model, rvec, tvec, cam, None)
    error = float(np.sqrt(np.mean(np.sum((reprojected.reshape(-1, 2) - image_points) ** 2, axis=1))))
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll, error_px=error, scheme=scheme)


def _frontal_guess(model: np.ndarray, image_points: np.ndarray, cam: np.ndarray):
    """A frontal face at the distance its landmark spread implies, as solvePnP's starting point (so
    the iterative fit starts on the right side of the mirror ambiguity of a shallow 3-D face)."""
    spread_px = float(np.linalg.norm(image_points - image_points.mean(axis=0), axis=1).mean())
    spread_mm = float(np.linalg.norm(model[:, :2] - model[:, :2].mean(axis=0), axis=1).mean())
    distance = cam[0, 0] * spread_mm / max(spread_px, 1e-6)
    center = image_points.mean(axis=0)
    tvec = np.array([[(center[0] - cam[0, 2]) * distance / cam[0, 0]],
                     [(center[1] - cam[1, 2]) * distance / cam[1, 1]], [distance]])
    # The model's centroid should project onto the landmarks' centroid.
    tvec[:2, 0] -= (_FRONTAL @ model.mean(axis=0))[:2]
    rvec, _ = cv2.Rodrigues(_FRONTAL)
    return rvec, tvec


def face_landmarks(face) -> tuple[np.ndarray, str]:
    """The richest landmarks a :class:`~pulid_flux.face.Face` carries and their scheme: an engine's
    raw points (``face.extra['landmarks']`` with ``face.extra['landmark_scheme']``) when present,
    else its 5 keypoints."""
    extra = getattr(face, "extra", None) or {}
    points, scheme = extra.get("landmarks"), extra.get("landmark_scheme")
    if points is not None and scheme in LANDMARK_SCHEMES:
        return np.asarray(points, dtype=np.float64), scheme
    return np.asarray(face.kps, dtype=np.float64), "kps5"


def face_head_pose(face, image_size=None) -> HeadPose:
    """:func:`estimate_head_pose` on a detected face's landmarks (see :func:`face_landmarks`)."""
    points, scheme = face_landmarks(face)
    return estimate_head_pose(points, scheme, image_size)
