"""Who the dataset is about: the centroid of the subject's face embeddings.

Either from reference photos the user gives, or found automatically as the identity seen in the
most photos: faces are grouped around the face with the most same-person neighbours (counted in
distinct photos), the group's centroid is refined until its membership is stable, and the runner-up
group is measured the same way so an ambiguous folder (two people equally often) is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import NoFaceError
from ..face import Face
from .items import DatasetItem

log = logging.getLogger(__name__)

MAX_REFINE_STEPS = 10


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


@dataclass
class Subject:
    centroid: np.ndarray                 # unit vector
    threshold: float
    method: str                          # "auto" | "reference"
    engine: str
    members: list[str] = field(default_factory=list)     # photos whose face formed the centroid
    runner_up: int = 0                   # photos in the next-largest identity group (auto)
    ambiguous: bool = False

    def similarities(self, faces: Sequence[Face]) -> list[float]:
        if not faces:
            return []
        return [float(v) for v in normalize(np.stack([f.embedding for f in faces])) @ self.centroid]

    def summary(self) -> dict:
        return {"method": self.method, "engine": self.engine, "threshold": self.threshold,
                "photos": len(self.members), "members": list(self.members), "runner_up_photos": self.runner_up,
                "ambiguous": self.ambiguous, "embedding_size": int(self.centroid.shape[0])}


def subject_summary(subject: Subject | None, *, engine_name: str, threshold: float, method: str) -> dict:
    """The report's ``subject`` record, also when no subject could be found (no face anywhere)."""
    if subject is None:
        return {"method": method, "engine": engine_name, "threshold": threshold, "photos": 0, "members": [],
                "found": False}
    return {**subject.summary(), "found": True}


def _group(vectors: np.ndarray, owners: np.ndarray, pool: np.ndarray, threshold: float) -> np.ndarray:
    """Indices (into ``vectors``) of the densest same-person group among ``pool``, one face per photo."""
    sims = vectors[pool] @ vectors[pool].T
    close = sims >= threshold
    counts = np.array([len(set(owners[pool][row].tolist())) for row in close])
    mean_close = (sims * close).sum(1) / np.maximum(close.sum(1), 1)
    seed = int(np.lexsort((-mean_close, -counts))[0])
    members = pool[close[seed]]
    for _ in range(MAX_REFINE_STEPS):
        centroid = normalize(vectors[members].mean(axis=0))
        to_centroid = vectors[pool] @ centroid
        chosen = {}
        for idx, sim in zip(pool, to_centroid):
            if sim >= threshold and sim > chosen.get(owners[idx], (None, -2.0))[1]:
                chosen[owners[idx]] = (idx, sim)
        new = np.array(sorted(i for i, _ in chosen.values()), dtype=int)
        if len(new) == 0 or np.array_equal(new, members):
            break
        members = new
    return members


def find_subject(items: Sequence[DatasetItem], threshold: float, engine_name: str = "") -> Subject:
    """The identity seen in the most photos of ``items`` (their ``faces`` must be analysed)."""
    vectors, owners = [], []
    for n, item in enumerate(items):
        for face in item.faces:
            vectors.append(face.embedding)
            owners.append(n)
    if not vectors:
        raise NoFaceError(f"no face found in any of the {len(items)} photo(s); cannot tell who the subject is")
    vectors = normalize(np.stack(vectors))
    owners = np.array(owners)
    everyone = np.arange(len(vectors))
    members = _group(vectors, owners, everyone, threshold)
    # The runner-up: the same search among the faces of photos outside the subject's group.
    rest = everyone[~np.isin(owners, owners[members])]
    runner_up = len(set(owners[_group(vectors, owners, rest, threshold)].tolist())) if len(rest) else 0
    subject = Subject(centroid=normalize(vectors[members].mean(axis=0)), threshold=threshold, method="auto",
                      engine=engine_name, members=[items[i].name for i in sorted(set(owners[members].tolist()))],
                      runner_up=runner_up, ambiguous=runner_up >= len(members))
    if subject.ambiguous:
        log.warning("the subject is ambiguous: two identities appear in %d photos each; pass reference photos "
                    "to choose (using the group containing %s)", len(members), subject.members[0])
    elif len(members) == 1 and len(items) > 1:
        log.warning("every face in the folder looks like a different person; the subject was taken from %s. "
                    "Pass reference photos to choose", subject.members[0])
    return subject


def subject_from_faces(named_faces: Sequence[tuple[str, Face]], threshold: float, engine_name: str = "") -> Subject:
    """Subject given by reference faces (one per reference photo, already chosen)."""
    if not named_faces:
        raise NoFaceError("no reference face given")
    vectors = normalize(np.stack([f.embedding for _, f in named_faces]))
    centroid = normalize(vectors.mean(axis=0))
    names = [name for name, _ in named_faces]
    for name, sim in zip(names, vectors @ centroid):
        if sim < threshold:
            log.warning("reference %s resembles the other references only weakly (similarity %.3f < %.3f): "
                        "are they all the same person?", name, sim, threshold)
    return Subject(centroid=centroid, threshold=threshold, method="reference", engine=engine_name, members=names)
