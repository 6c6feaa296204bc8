"""The identity-and-pose filter: which synthesized candidates of a view go into the training set.

A candidate is **kept** when, in this order:

1. a face is found (``no_face``; ``unverifiable`` instead when the view is turned further than the
   engine's detector can see, see ``ENGINE_VIEW_LIMITS``);
2. only one person is in the picture (``multiple_faces``: another face at least
   ``competing_face_ratio`` of the subject's size);
3. its identity to the portrait passes the threshold for the view's angle band (``not_subject``;
   ``IDENTITY_THRESHOLDS``: lower for three-quarter and profile views, where recognizers are weak);
4. its head pose (:mod:`pulid_flux.face.headpose`) matches the view: yaw within the view band's
   tolerance, pitch within ``PITCH_TOLERANCE`` (``pose_mismatch``);
5. it is no near-duplicate (perceptual hash) of a better candidate already kept (``duplicate``);
6. its view has fewer than ``per_view`` kept images (``surplus``): the best by identity, then by
   pose error, are kept, so no view holds more than K.

Without verification (``verify=False``: ``--tiny`` runs, whose random-weight images hold no face) the
filter still runs and records its verdict in ``filter_reason``, and up to K candidates per view are
written with the status ``unverified``: nothing fakes a pass.

Which engine can verify which views (``ENGINE_VIEW_LIMITS``): dlib's HOG detector was trained on
frontal and slightly turned faces and finds them up to about 45 degrees of yaw, so with ``dlib`` (HOG)
profile views (60-90 degrees) cannot be verified; dlib's CNN detector reaches about 60 degrees;
insightface's SCRFD detects faces up to profile, and its ArcFace similarity drops as the head turns,
which the lower thresholds allow for. The thresholds for turned views are rules of thumb (no profile
photos with known identity were available to calibrate them); the frontal ones are the dataset
preparation's (dlib 0.92, insightface 0.40).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..dataset.analysis import detect_faces, face_size
from ..dataset.quality import hamming, perceptual_hash
from ..dataset.subject import Subject
from ..dataset.scene import subject_head_pose
from ..face import FaceEngine
from ..face.headpose import HeadPose
from .views import PITCH_TOLERANCE, View

log = logging.getLogger(__name__)

KEPT, REJECTED, UNVERIFIED = "kept", "rejected", "unverified"
REASONS = ("unreadable", "no_face", "unverifiable", "multiple_faces", "not_subject", "pose_mismatch", "duplicate",
           "surplus")
#: engine family -> {angle band: cosine similarity to the portrait that passes}
IDENTITY_THRESHOLDS = {
    "insightface": {"frontal": 0.40, "three-quarter": 0.35, "profile": 0.25},
    "dlib": {"frontal": 0.92, "three-quarter": 0.90, "profile": 0.88},
}
#: engine name prefix -> the largest |yaw| (degrees) its detector finds faces at
ENGINE_VIEW_LIMITS = {"dlib:hog": 45.0, "dlib:cnn": 60.0, "dlib": 45.0, "insightface": 90.0}


def engine_family(engine_name: str) -> str:
    return str(engine_name).split(":")[0]


def view_limit(engine_name: str) -> float:
    """The largest |yaw| the engine can verify (see ``ENGINE_VIEW_LIMITS``)."""
    for prefix in sorted(ENGINE_VIEW_LIMITS, key=len, reverse=True):
        if str(engine_name).startswith(prefix):
            return ENGINE_VIEW_LIMITS[prefix]
    return 90.0


def identity_threshold(engine_name: str, view: View, overrides: dict | None = None) -> float:
    table = {**IDENTITY_THRESHOLDS.get(engine_family(engine_name), {}), **(overrides or {})}
    if view.angle not in table:
        raise ValueError(f"no identity threshold for engine {engine_name!r} and {view.angle} views; pass one")
    return float(table[view.angle])


@dataclass
class Candidate:
    """One generated image of a view."""

    name: str                      # file name stem, unique in the run
    view: View
    seed: int
    image: np.ndarray | None = None     # RGB uint8 (dropped once judged, the thumbnail stays)
    path: str | None = None             # relative to the output folder
    # -- what the filter measured and decided --
    faces: int = 0
    similarity: float | None = None
    threshold: float | None = None
    pose: HeadPose | None = None
    face_box: list[float] | None = None
    phash: int | None = None
    thumbnail: np.ndarray | None = None
    status: str | None = None
    reason: str | None = None
    detail: str = ""
    filter_reason: str | None = None     # the filter's own verdict (None = it passed), kept when unverified
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.filter_reason is None and self.status != REJECTED

    @property
    def pose_error(self) -> float:
        if self.pose is None:
            return float("inf")
        return abs(self.pose.yaw - self.view.yaw) + abs(self.pose.pitch - self.view.pitch)

    def fail(self, reason: str, detail: str) -> None:
        self.filter_reason, self.detail = reason, detail

    def record(self) -> dict:
        return {"name": self.name, "view": self.view.name, "seed": self.seed, "file": self.path,
                "status": self.status, "reason": self.reason, "filter_reason": self.filter_reason,
                "detail": self.detail, "faces": self.faces,
                "similarity": None if self.similarity is None else round(self.similarity, 4),
                "threshold": self.threshold, "pose": self.pose.summary() if self.pose else None,
                "requested": {"yaw": self.view.yaw, "pitch": self.view.pitch}, "face_box": self.face_box,
                **self.extra}


@dataclass
class FilterSettings:
    per_view: int = 2                                # K: at most this many kept per view
    duplicate_distance: int = 6                      # perceptual-hash bits (of 63)
    competing_face_ratio: float = 0.6
    pitch_tolerance: float = PITCH_TOLERANCE
    yaw_tolerance: float | None = None               # None: the view band's (views.YAW_TOLERANCE)
    thresholds: dict = field(default_factory=dict)   # angle band -> similarity, over the engine's defaults
    detect_max_side: int = 1024
    verify: bool = True                              # False: --tiny (see the module docstring)

    def __post_init__(self):
        if self.per_view < 1:
            raise ValueError(f"per_view (K) must be at least 1, got {self.per_view}")
        if self.duplicate_distance < 0:
            raise ValueError(f"duplicate_distance must be >= 0, got {self.duplicate_distance}")


def measure(candidate: Candidate, engine: FaceEngine, subject: Subject | None, settings: FilterSettings) -> None:
    """Steps 1-4 of the module docstring on one candidate (its ``image`` must be set)."""
    image = candidate.image
    candidate.phash = perceptual_hash(image)
    view = candidate.view
    candidate.threshold = identity_threshold(engine.name, view, settings.thresholds)
    faces = detect_faces(engine, image, settings.detect_max_side)
    candidate.faces = len(faces)
    if not faces:
        limit = view_limit(engine.name)
        if abs(view.yaw) > limit:
            candidate.fail("unverifiable", f"no face found; {engine.name} finds faces up to about {limit:.0f} deg "
                                           f"of yaw and this view asks for {view.yaw:+.0f} (use insightface)")
        else:
            candidate.fail("no_face", f"no face found by {engine.name}")
        return
    if subject is not None:
        sims = subject.similarities(faces)
        best = int(np.argmax(sims))
    else:
        sims, best = [None] * len(faces), 0
    face = faces[best]
    candidate.similarity = sims[best]
    candidate.face_box = [round(float(v), 1) for v in face.bbox]
    candidate.pose = subject_head_pose(face, (image.shape[1], image.shape[0]))
    competing = [f for i, f in enumerate(faces) if i != best and face_size(f) >= settings.competing_face_ratio * face_size(face)]
    if competing:
        candidate.fail("multiple_faces", f"{len(competing)} other face(s) as large as the subject's")
        return
    if subject is None:
        candidate.fail("not_subject", "no subject to compare with (no face in the portrait)")
        return
    if candidate.similarity < candidate.threshold:
        candidate.fail("not_subject", f"identity {candidate.similarity:.3f} < {candidate.threshold:.2f} "
                                      f"({view.angle} view, {engine.name})")
        return
    if candidate.pose is None:
        candidate.fail("pose_mismatch", "the head pose could not be estimated from the landmarks")
        return
    yaw_tol = settings.yaw_tolerance if settings.yaw_tolerance is not None else view.yaw_tolerance
    dyaw, dpitch = candidate.pose.yaw - view.yaw, candidate.pose.pitch - view.pitch
    if abs(dyaw) > yaw_tol or abs(dpitch) > settings.pitch_tolerance:
        candidate.fail("pose_mismatch", f"head yaw {candidate.pose.yaw:+.0f}, pitch {candidate.pose.pitch:+.0f}; the "
                                        f"view asks for {view.yaw:+.0f} +-{yaw_tol:.0f}, {view.pitch:+.0f} "
                                        f"+-{settings.pitch_tolerance:.0f}")


def _rank(candidate: Candidate) -> tuple:
    return (-(candidate.similarity or 0.0), candidate.pose_error, candidate.seed)


def select(candidates: Sequence[Candidate], settings: FilterSettings) -> None:
    """Steps 5-6: duplicates and the per-view quota, then every candidate's final status."""
    kept_hashes: list[tuple[int, str]] = []
    per_view: dict[str, int] = {}
    passing = sorted((c for c in candidates if c.filter_reason is None), key=_rank)
    for c in passing:
        twin = next((name for h, name in kept_hashes if hamming(h, c.phash) <= settings.duplicate_distance), None)
        if twin is not None:
            c.fail("duplicate", f"near-identical to {twin} (hash distance <= {settings.duplicate_distance})")
            continue
        if per_view.get(c.view.name, 0) >= settings.per_view:
            c.fail("surplus", f"{c.view.name} already has {settings.per_view} kept image(s) (K)")
            continue
        per_view[c.view.name] = per_view.get(c.view.name, 0) + 1
        kept_hashes.append((c.phash, c.name))
    for c in candidates:
        if c.filter_reason is None:
            c.status, c.reason = KEPT, None
        else:
            c.status, c.reason = REJECTED, c.filter_reason
    if not settings.verify:
        _mark_unverified(candidates, settings.per_view)


def _mark_unverified(candidates: Sequence[Candidate], per_view: int) -> None:
    """Unverified runs: the first K generated candidates of each view (by seed) are written anyway
    (a candidate whose image is missing cannot be)."""
    taken: dict[str, int] = {}
    for c in sorted(candidates, key=lambda c: (c.view.name, c.seed)):
        if c.status == KEPT:                      # cannot happen on faceless images; kept if it does
            taken[c.view.name] = taken.get(c.view.name, 0) + 1
    for c in sorted(candidates, key=lambda c: (c.view.name, c.seed)):
        if c.status != KEPT and c.filter_reason != "unreadable" and taken.get(c.view.name, 0) < per_view:
            taken[c.view.name] = taken.get(c.view.name, 0) + 1
            c.status, c.reason = UNVERIFIED, None


def filter_candidates(candidates: Sequence[Candidate], engine: FaceEngine, subject: Subject | None,
                      settings: FilterSettings, progress=None) -> None:
    """Measure, then select (see the module docstring); decisions are written on the candidates."""
    for n, candidate in enumerate(candidates, 1):
        if candidate.image is None:
            candidate.fail("unreadable", "the image could not be read")
        else:
            measure(candidate, engine, subject, settings)
        log.info("%s (%s, seed %d): %s", candidate.name, candidate.view.name, candidate.seed,
                 candidate.filter_reason or "passes")
        if progress:
            progress(n, len(candidates), "filter")
    select(candidates, settings)

