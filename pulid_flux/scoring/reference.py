"""The reference identity: the centroid of one or more reference photos' face embeddings, per engine.

Each reference photo contributes its LARGEST face (by box area), or the face of its face region
(a ``<photo stem>.face.json`` sidecar, see :mod:`pulid_flux.face.region`) when it has one. Its
embedding is normalised; the centroid is the mean of those unit vectors, normalised again, so every
photo weighs the same whatever its raw embedding norm. A reference photo without a face is an error
naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import NoFaceError
from ..face.faces import FaceEngine
from ..face.region import FaceRegion
from ..face.region_locate import embed_region


def unit(vector, what: str = "embedding") -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"{what} has zero or non-finite length; the recognizer output is unusable")
    return vector / norm


def centroid(embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of the normalised embeddings, normalised again."""
    if not len(embeddings):
        raise ValueError("a centroid needs at least one embedding")
    return unit(np.mean([unit(e) for e in embeddings], axis=0), "reference centroid")


@dataclass
class ReferenceFace:
    file: str
    n_faces: int
    bbox: tuple[float, float, float, float]
    embedding: np.ndarray          # normalised
    region: dict | None = None     # the face region that chose the face: source, mode


@dataclass
class Reference:
    """Reference identity for one engine."""

    engine: str                    # engine name (e.g. dlib:hog, insightface:antelopev2)
    centroid: np.ndarray           # unit vector
    faces: list[ReferenceFace]

    def similarity(self, embedding) -> float:
        """Cosine similarity of ``embedding`` (any norm) with the centroid."""
        vector = unit(embedding, "face embedding")
        if vector.shape != self.centroid.shape:
            raise ValueError(f"embedding has {vector.size} values but the {self.engine} reference has "
                             f"{self.centroid.size}; score with the engine the reference was built with")
        return float(vector @ self.centroid)

    def self_similarity(self) -> dict[str, float]:
        """Leave-one-out: each reference photo against the centroid of the others (the "same person"
        baseline of this reference set); empty with a single photo."""
        if len(self.faces) < 2:
            return {}
        result = {}
        for i, face in enumerate(self.faces):
            others = centroid([f.embedding for j, f in enumerate(self.faces) if j != i])
            result[face.file] = float(face.embedding @ others)
        return result

    def describe(self) -> dict:
        return {"engine": self.engine, "photos": [
            {"file": f.file, "n_faces": f.n_faces, "bbox": [round(float(v), 1) for v in f.bbox],
             **({"region": f.region} if f.region else {})} for f in self.faces],
            "leave_one_out_similarity": {k: round(v, 6) for k, v in self.self_similarity().items()}}


def build_reference(engine: FaceEngine, images: Sequence[tuple[str, np.ndarray]],
                    regions: Mapping[str, FaceRegion | None] | None = None) -> Reference:
    """Reference of ``images`` ((name, RGB uint8 array) pairs) with ``engine``; ``regions`` maps a
    name to the face region that says which face of that photo is the person."""
    if not images:
        raise ValueError("no reference image given; pass at least one photo of the person")
    faces = []
    for name, image in images:
        region = (regions or {}).get(name)
        if region is not None:
            located, embedding = embed_region(image, region, engine)
            faces.append(ReferenceFace(file=str(name), n_faces=1, bbox=tuple(float(v) for v in located.face.bbox),
                                       embedding=unit(embedding, f"{name}: face embedding"),
                                       region={"source": region.source, "mode": located.mode}))
            continue
        found = engine.detect(image, order="largest", embed=True)
        if not found:
            raise NoFaceError(f"{name}: no face found in this reference photo by {engine.name}; use a photo "
                              "where the face is clearly visible and at least ~80 pixels tall")
        face = found[0]
        faces.append(ReferenceFace(file=str(name), n_faces=len(found), bbox=tuple(float(v) for v in face.bbox),
                                   embedding=unit(face.embedding, f"{name}: face embedding")))
    return Reference(engine=engine.name, centroid=centroid([f.embedding for f in faces]), faces=faces)
