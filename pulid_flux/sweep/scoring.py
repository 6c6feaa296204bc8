"""Scoring a sweep's images: identity with two engines, CLIP score, style score, memorization.

* ``identity_arcface``: insightface (ArcFace; the pack under ``<models>/insightface``) against the
  reference centroid; ``identity_dlib``: dlib, the second opinion. An engine that cannot be used
  (pack missing, no face in the reference for it) leaves its column empty and the report says why;
  the rule reads ArcFace when it is available, else dlib. Neither available is an error.
* ``clip_score``: each image against its prompt's text; ``style_clip_score``: against the style
  prompt; ``memorization``: the best CLIP cosine to the ``--dataset`` images.

Images are read in chunks so a large sweep never holds every picture in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NoFaceError, PulidError
from ..images import list_images, load_rgb
from .clip_score import ClipScorer, memorization, pair_cosines
from .table import SweepRow

log = logging.getLogger(__name__)

CHUNK = 16
ARCFACE, DLIB = "identity_arcface", "identity_dlib"


@dataclass(frozen=True)
class SweepImage:
    """A generated image of the sweep (``file`` relative to the sweep folder)."""

    step: str
    checkpoint: str
    prompt: str            # tag
    prompt_text: str
    seed: int
    file: str
    style_lora: str | None = None
    style_strength: float | None = None


@dataclass
class IdentityEngines:
    """The ScoringRun of each identity column (None when unusable, with the reason in ``notes``)."""

    runs: dict = field(default_factory=dict)      # column -> ScoringRun | None
    notes: dict = field(default_factory=dict)     # column -> description or why it is empty

    @property
    def identity_column(self) -> str:
        return ARCFACE if self.runs.get(ARCFACE) is not None else DLIB


def load_identity_engines(reference: Sequence[Path], *, models_dir: Path | None,
                          pack: str = "antelopev2") -> IdentityEngines:
    from ..scoring import EngineOptions, ScoringRun

    engines = IdentityEngines()
    options = EngineOptions(models_dir=models_dir, device="cpu", pack=pack)
    for column, spec in ((ARCFACE, "insightface"), (DLIB, "dlib")):
        try:
            run = ScoringRun.create([str(p) for p in reference], [spec], options=options)
        except (NoFaceError, PulidError, FileNotFoundError, ImportError) as exc:
            engines.runs[column] = None
            engines.notes[column] = f"empty: {spec} cannot score this run ({exc})"
            log.warning("%s left empty: %s", column, exc)
            continue
        engines.runs[column] = run
        engines.notes[column] = (f"{run.engines[0].model}, cosine of the best face to the centroid of "
                                 f"{len(reference)} reference photo(s)")
    if all(run is None for run in engines.runs.values()):
        raise NoFaceError("no identity engine can score this sweep: " + "; ".join(engines.notes.values()))
    return engines


def dataset_features(clip: ClipScorer, folder: Path) -> np.ndarray:
    """Unit CLIP embeddings of the training images in ``folder`` (ai-toolkit's images + captions)."""
    files = list_images(folder)
    if not files:
        raise FileNotFoundError(f"--dataset {folder}: no image (jpg, png, webp) in this folder")
    chunks = [clip.image_features([load_rgb(p) for p in files[i:i + CHUNK]]) for i in range(0, len(files), CHUNK)]
    log.info("memorization: %d dataset image(s) from %s", len(files), folder)
    return np.concatenate(chunks)


def _identity(run, image: np.ndarray, name: str) -> float | None:
    if run is None:
        return None
    return run.score(image, name).primary.similarity


def score_images(out_dir: Path, images: Sequence[SweepImage], *, engines: IdentityEngines, clip: ClipScorer,
                 dataset: np.ndarray | None = None, style_prompt: str | None = None,
                 progress=None) -> list[SweepRow]:
    """One SweepRow per image (in the given order); ``progress(done, total, "score")`` after each image."""
    out_dir = Path(out_dir)
    texts = sorted({im.prompt_text for im in images} | ({style_prompt} if style_prompt else set()))
    text_features = dict(zip(texts, clip.text_features(texts))) if texts else {}
    rows: list[SweepRow] = []
    for start in range(0, len(images), CHUNK):
        chunk = images[start:start + CHUNK]
        pictures = [load_rgb(out_dir / im.file) for im in chunk]
        features = clip.image_features(pictures)
        clip_scores = pair_cosines(features, np.stack([text_features[im.prompt_text] for im in chunk]))
        style_scores = (pair_cosines(features, np.stack([text_features[style_prompt]] * len(chunk)))
                        if style_prompt else [None] * len(chunk))
        memorized = memorization(features, dataset) if dataset is not None else [None] * len(chunk)
        for im, picture, clip_value, style_value, memo in zip(chunk, pictures, clip_scores, style_scores, memorized):
            arcface = _identity(engines.runs.get(ARCFACE), picture, im.file)
            dlib = _identity(engines.runs.get(DLIB), picture, im.file)
            found = (arcface if engines.identity_column == ARCFACE else dlib) is not None
            rows.append(SweepRow(step=im.step, checkpoint=im.checkpoint, prompt=im.prompt, seed=im.seed, file=im.file,
                                 identity_arcface=arcface, identity_dlib=dlib, clip_score=clip_value,
                                 memorization=memo, face_found=found, style_lora=im.style_lora,
                                 style_strength=im.style_strength, style_clip_score=style_value))
            if progress is not None:
                progress(len(rows), len(images), "score")
        log.info("[%d/%d] sweep images scored", min(start + CHUNK, len(images)), len(images))
    return rows
