"""Which face of a reference image is "the" face.

A rule orders the detected faces; ``index`` then picks one in that order (0 = first). The chosen
``Face`` supplies both the recognizer vector and the alignment keypoints, so the two always describe
the same person (the official pipeline takes them from two different detectors, which can disagree
on group photos).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import NoFaceError
from .faces import Face

#: largest bbox area first (the official PuLID rule), then reading orders, then detector confidence
FACE_ORDERS = ("largest", "left_to_right", "right_to_left", "top_to_bottom", "score")

_KEYS = {
    "largest": lambda f: -f.area,
    "left_to_right": lambda f: f.center[0],
    "right_to_left": lambda f: -f.center[0],
    "top_to_bottom": lambda f: f.center[1],
    "score": lambda f: -f.score,
}


def sort_faces(faces: Sequence[Face], order: str = "largest") -> list[Face]:
    """A new list of ``faces`` in ``order`` (stable: ties keep the detector's order)."""
    if order not in _KEYS:
        raise ValueError(f"unknown face order {order!r}; choose one of {', '.join(FACE_ORDERS)}")
    return sorted(faces, key=_KEYS[order])


def choose_face(faces: Sequence[Face], order: str = "largest", index: int = 0, *, source: str = "image") -> Face:
    """The ``index``-th face of ``faces`` sorted by ``order``.

    Raises NoFaceError when there is no face, and ValueError when ``index`` is past the last face
    (the message says how many faces there are, so the user can fix the index).
    """
    if not faces:
        raise NoFaceError(f"no face found in {source}")
    ordered = sort_faces(faces, order)
    if not -len(ordered) <= index < len(ordered):
        raise ValueError(f"face index {index} asked for {source}, but only {len(ordered)} face(s) were found "
                         f"(valid indices 0..{len(ordered) - 1}, ordered {order})")
    return ordered[index]


def match_face(target: Face, candidates: Sequence[Face], tolerance: float = 0.35) -> Face | None:
    """The face of ``candidates`` (another engine's detections) that is ``target``, or None.

    Faces match when their keypoints are on average within ``tolerance`` x the target's eye
    distance of each other; the closest such face wins. Engines place keypoints a little
    differently, but another person is always more than an eye distance away.
    """
    if not candidates:
        return None
    eye_distance = float(np.linalg.norm(target.kps[1] - target.kps[0]))
    scale = max(eye_distance, 0.25 * np.sqrt(max(target.area, 0.0)), 1.0)
    distances = [float(np.linalg.norm(c.kps - target.kps, axis=1).mean()) for c in candidates]
    best = int(np.argmin(distances))
    return candidates[best] if distances[best] <= tolerance * scale else None
