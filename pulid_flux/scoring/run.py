"""``ScoringRun``: the engines, their reference centroids and thresholds, set up once per run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..face.region import FaceRegion, read_sidecar
from ..images import ImageReadError, load_rgb
from .engines import EngineOptions, ScoringEngine, load_scoring_engines, resolve_thresholds
from .reference import Reference
from .report import summarize_images
from .score import FACE_PX_DECIMALS, EngineScore, ScoredImage, build_references, score_image

log = logging.getLogger(__name__)

FACE_PX_DEFINITION = ("sqrt of the chosen face's bounding-box area, in pixels of the image as scored; "
                      "face_found, n_faces and face_px describe the first engine")


def load_references(paths) -> list[tuple[str, np.ndarray]]:
    """(path as text, RGB array) of reference photos; errors name the file."""
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise ValueError("no reference image given; pass at least one photo of the person")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: reference image not found")
    return [(str(p), load_rgb(p)) for p in paths]


@dataclass
class ScoringRun:
    engines: list[ScoringEngine]
    references: dict[str, Reference]
    thresholds: dict[str, float]

    @classmethod
    def create(cls, reference, engines=("dlib",), *, options: EngineOptions | None = None,
               thresholds=None, regions: dict[str, FaceRegion] | None = None) -> ScoringRun:
        """``reference``: reference photo paths, or (name, RGB uint8 array) pairs; ``engines``: specs
        or ScoringEngines; ``thresholds``: None, one number, or {engine key: number}; ``regions``: the
        face region of a reference (by path or name), else a photo's ``.face.json`` sidecar is used."""
        engines = load_scoring_engines(list(engines), options)
        reference = list(reference) if not isinstance(reference, (str, Path)) else [reference]
        images = reference if reference and isinstance(reference[0], tuple) else load_references(reference)
        given = {str(k): v for k, v in (regions or {}).items()}
        if not (reference and isinstance(reference[0], tuple)):
            given = {str(p): given.get(str(p)) or read_sidecar(p) for p in reference}
        run = cls(engines=engines, references=build_references(engines, images, given),
                  thresholds=resolve_thresholds(engines, thresholds))
        for key, ref in run.references.items():
            loo = ref.self_similarity()
            if loo:
                log.info("reference (%s): leave-one-out similarity %s", key,
                         ", ".join(f"{Path(k).name} {v:.3f}" for k, v in loo.items()))
        return run

    @property
    def keys(self) -> list[str]:
        return [e.key for e in self.engines]

    @property
    def models(self) -> dict[str, str]:
        return {e.key: e.model for e in self.engines}

    def score(self, image: np.ndarray, file: str, *, region: FaceRegion | None = None, **meta) -> ScoredImage:
        """Scores of one image; a ``region`` (default: the sidecar of ``meta['path']``) picks its face."""
        if region is None and meta.get("path") is not None:
            region = read_sidecar(meta["path"])
        return ScoredImage(file=file, scores=score_image(image, self.engines, self.references, name=file,
                                                         region=region), **meta)

    def score_file(self, path, file: str | None = None, **meta) -> ScoredImage:
        """Score the image at ``path``; an unreadable file is skipped with a warning and comes back
        as a row that says so (``error``), so one broken file does not stop a run."""
        path = Path(path)
        try:
            image = load_rgb(path)
        except ImageReadError as exc:
            return self.unreadable(path, exc, file, **meta)
        return self.score(image, file or path.name, path=path, **meta)

    def unreadable(self, path: Path, exc: Exception, file: str | None = None, **meta) -> ScoredImage:
        reason = str(exc).split(": ", 1)[-1] if str(exc).startswith(str(path)) else str(exc)
        log.warning("%s: skipped, not a readable image (%s)", path, reason)
        return ScoredImage(file=file or path.name, scores={k: EngineScore(n_faces=0) for k in self.keys}, path=path,
                           error=f"unreadable: {reason}", **meta)

    def summarize(self, images: Sequence[ScoredImage]) -> dict:
        """Summaries over the images that could be read (unreadable ones are listed, not scored)."""
        readable = [im for im in images if im.scored]
        if not readable:
            names = ", ".join(im.file for im in images[:5]) + (", ..." if len(images) > 5 else "")
            raise ImageReadError(f"none of the {len(images)} image(s) could be read ({names})")
        return summarize_images(readable, self.keys, self.thresholds)

    def info(self) -> dict:
        """How the numbers were made (written as run_info.json beside the results)."""
        return {
            "engines": {e.key: {"spec": e.spec, "model": e.model, "embedding_size": e.engine.embedding_size,
                                "threshold": self.thresholds[e.key],
                                "threshold_default": e.default_threshold,
                                "threshold_source": e.threshold_source,
                                "license": e.engine.license_note} for e in self.engines},
            "reference": {k: r.describe() for k, r in self.references.items()},
            "similarity": "cosine of normalised embeddings, best-matching face vs. the reference centroid "
                          "(mean of the reference photos' normalised largest-face embeddings, re-normalised)",
            "face_px": FACE_PX_DEFINITION,
            "face_px_decimals": FACE_PX_DECIMALS,
            "std": "population standard deviation (ddof=0) over images with a face",
            "pass_rule": "similarity >= threshold; images without a face count as fails; pass_rate is over "
                         "all images",
            "no_face": "excluded from count/mean/median/std/min/max; counted in no_face_rate and as a fail",
            "unreadable": "files that are not readable images are skipped with a warning: their CSV row says "
                          "'unreadable: <reason>' in the error column, and they are left out of every summary",
        }
