"""Threshold calibration on labelled real photos: same-person vs. different-person similarities.

Every photo contributes its largest face; every pair of photos is compared (cosine of normalised
embeddings). The suggested threshold minimises the balanced error (mean of the false-reject and
false-accept rates) over the midpoints between observed values; when the two groups are separable
that is the middle of the gap between the lowest same-person and the highest different-person
similarity.

Labels: a ``labels.json`` like ``shared/faces`` (``{"photos": {file: {"identity": name}}}``; photos
with a null identity, e.g. group shots, are skipped) or, without one, the file-name prefix before the
last ``_<number>`` token (``obama_03.jpg`` -> ``obama``).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..face.faces import FaceEngine
from ..images import list_images, load_rgb
from .reference import unit

log = logging.getLogger(__name__)


@dataclass
class Calibration:
    engine: str
    photos: dict[str, str]                                   # file -> identity (photos with a face)
    same: list[tuple[str, str, float]]                       # (file a, file b, similarity), ascending
    different: list[tuple[str, str, float]]
    threshold: float
    separable: bool
    skipped: list[str] = field(default_factory=list)         # photos without a face

    def describe(self) -> dict:
        same = np.array([s for *_, s in self.same])
        diff = np.array([s for *_, s in self.different])
        stat = lambda a: {"n": int(a.size), "min": float(a.min()), "mean": float(a.mean()),
                          "max": float(a.max())} if a.size else {"n": 0}
        return {"engine": self.engine, "n_photos": len(self.photos), "n_identities": len(set(self.photos.values())),
                "same_person": stat(same), "different_people": stat(diff),
                "suggested_threshold": self.threshold, "separable": self.separable,
                "lowest_same": self.same[:3], "highest_different": self.different[-3:],
                "skipped_no_face": self.skipped}


def suggest_threshold(same, different) -> tuple[float, bool]:
    """(threshold, separable) minimising the balanced error; see the module docstring."""
    same, different = np.sort(np.asarray(same, float)), np.sort(np.asarray(different, float))
    if not same.size or not different.size:
        raise ValueError("calibration needs at least one same-person pair and one different-person pair")
    if same.min() > different.max():
        return float((same.min() + different.max()) / 2), True
    values = np.unique(np.concatenate([same, different]))
    candidates = (values[:-1] + values[1:]) / 2
    errors = [(np.mean(same < t) + np.mean(different >= t)) / 2 for t in candidates]
    return float(candidates[int(np.argmin(errors))]), False


def calibrate(engine: FaceEngine, photos: dict[str, tuple[str, np.ndarray]]) -> Calibration:
    """``photos``: {file: (identity, RGB uint8 image)}."""
    embeddings, identities, skipped = {}, {}, []
    for file, (identity, image) in photos.items():
        faces = engine.detect(image, order="largest", embed=True)
        if not faces:
            log.warning("%s: no face found by %s; left out of the calibration", file, engine.name)
            skipped.append(file)
            continue
        embeddings[file], identities[file] = unit(faces[0].embedding, file), identity
    files = sorted(embeddings)
    same, different = [], []
    for i, a in enumerate(files):
        for b in files[i + 1:]:
            pair = (a, b, round(float(embeddings[a] @ embeddings[b]), 6))
            (same if identities[a] == identities[b] else different).append(pair)
    same.sort(key=lambda p: p[2])
    different.sort(key=lambda p: p[2])
    threshold, separable = suggest_threshold([p[2] for p in same], [p[2] for p in different])
    return Calibration(engine=engine.name, photos=identities, same=same, different=different,
                       threshold=round(threshold, 4), separable=separable, skipped=skipped)


def photo_labels(folder) -> dict[str, str]:
    """{file name: identity} for the photos of ``folder`` (see the module docstring)."""
    folder = Path(folder)
    labels_file = folder / "labels.json" if (folder / "labels.json").is_file() else folder.parent / "labels.json"
    photo_dir = folder / "photos" if (folder / "photos").is_dir() else folder
    if labels_file.is_file():
        data = json.loads(labels_file.read_text(encoding="utf-8"))
        entries = data.get("photos", data)
        labels = {f: (v.get("identity") if isinstance(v, dict) else v) for f, v in entries.items()}
        present = {p.name for p in list_images(photo_dir)}
        missing = sorted(set(labels) - present)
        if missing:
            raise FileNotFoundError(f"{labels_file} names photos that are not in {photo_dir}: {', '.join(missing)}")
        return {f: i for f, i in labels.items() if i}
    labels = {}
    for p in list_images(photo_dir):
        match = re.match(r"^(.+?)_\d+(?:_.*)?$", p.stem)
        if match:
            labels[p.name] = match.group(1)
        else:
            log.warning("%s: no <identity>_<NN> name and no labels.json; left out", p.name)
    return labels


def calibrate_photos(engine: FaceEngine, folder) -> Calibration:
    """Calibrate ``engine`` on a folder of labelled photos (``shared/faces`` layout or named files)."""
    folder = Path(folder)
    photo_dir = folder / "photos" if (folder / "photos").is_dir() else folder
    labels = photo_labels(folder)
    if len(set(labels.values())) < 2:
        raise ValueError(f"{folder}: calibration needs photos of at least two people")
    return calibrate(engine, {f: (identity, load_rgb(photo_dir / f)) for f, identity in sorted(labels.items())})
