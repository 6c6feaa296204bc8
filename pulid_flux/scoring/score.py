"""Scoring one image: every face is compared with the reference, the best match counts.

``face_px`` is the face size in pixels of the image as given: the square root of the chosen face's
bounding-box area (the side of a square of the same area). Boxes differ between engines (dlib's HOG
box is tighter than SCRFD's), so face sizes from different engines are not directly comparable.
Faces under about 64 px give unreliable recognizer scores.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..face.faces import Face
from ..face.region import FaceRegion
from ..face.region_locate import embed_region
from .engines import ScoringEngine
from .reference import Reference
from .stats import round_similarity

log = logging.getLogger(__name__)

FACE_PX_DECIMALS = 1
SMALL_FACE_PX = 64


@dataclass
class EngineScore:
    """One engine's verdict on one image."""

    n_faces: int
    similarity: float | None = None        # rounded; None when no face was found
    face_px: float | None = None           # sqrt(bbox area) of the chosen face
    det_score: float | None = None
    bbox: tuple[float, float, float, float] | None = None

    @property
    def face_found(self) -> bool:
        return self.similarity is not None


def face_px(face: Face) -> float:
    return round(math.sqrt(face.area), FACE_PX_DECIMALS)


def score_faces(faces: Sequence[Face], reference: Reference) -> EngineScore:
    """The face most similar to ``reference`` among ``faces`` (all embedded)."""
    if not faces:
        return EngineScore(n_faces=0)
    sims = [reference.similarity(f.embedding) for f in faces]
    best = int(np.argmax(sims))
    face = faces[best]
    return EngineScore(n_faces=len(faces), similarity=round_similarity(sims[best]), face_px=face_px(face),
                       det_score=round(face.score, 4), bbox=tuple(round(float(v), 1) for v in face.bbox))


@dataclass
class ScoredImage:
    """An image and every engine's score, with the gallery metadata it was found under."""

    file: str                              # name as written in the CSV (relative to the scored folder)
    scores: dict[str, EngineScore]         # engine key -> score, in engine order (the first is primary)
    path: Path | None = None
    config: str | None = None
    prompt: str | None = None
    seed: int | None = None
    index: int | None = None               # <NN> of the gallery file name
    extra: dict = field(default_factory=dict)
    error: str | None = None               # why it could not be scored ("unreadable: ..."); no scores then

    @property
    def scored(self) -> bool:
        return self.error is None

    @property
    def primary(self) -> EngineScore:
        return next(iter(self.scores.values()))


def score_image(image: np.ndarray, engines: Sequence[ScoringEngine], references: dict[str, Reference],
                *, name: str = "image", region: FaceRegion | None = None) -> dict[str, EngineScore]:
    """{engine key: EngineScore} for one RGB uint8 image; with a ``region`` only its face is scored."""
    result = {}
    for engine in engines:
        if region is not None:
            faces = [embed_region(image, region, engine.engine)[0].face]
        else:
            faces = engine.engine.detect(image, embed=True)
        score = score_faces(faces, references[engine.key])
        if not score.face_found:
            log.warning("%s: no face found by %s (counted as a fail, excluded from the mean)", name, engine.model)
        elif score.face_px < SMALL_FACE_PX:
            log.warning("%s: the face is only %.0f px (%s); recognizer scores are unreliable below %d px",
                        name, score.face_px, engine.model, SMALL_FACE_PX)
        result[engine.key] = score
    return result


def build_references(engines: Sequence[ScoringEngine], images, regions=None) -> dict[str, Reference]:
    """{engine key: Reference} for (name, RGB uint8) reference images (``regions``: name -> FaceRegion)."""
    from .reference import build_reference

    images = list(images)
    return {e.key: build_reference(e.engine, images, regions) for e in engines}
