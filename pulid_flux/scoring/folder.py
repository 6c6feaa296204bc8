"""Score a flat folder of images: ``scores.csv``, ``summary.json`` and ``run_info.json``.

``summary.json`` is ``{"<engine>": {"count", "mean", "median", "std", "min", "max", "no_face_rate",
"pass_rate", "threshold"}}`` (see :mod:`.stats` for the definitions).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..face.region import list_photos
from .engines import EngineOptions
from .report import write_json, write_scores_csv
from .run import ScoringRun
from .score import ScoredImage

log = logging.getLogger(__name__)

SCORES_CSV = "scores.csv"
SUMMARY_JSON = "summary.json"
RUN_INFO_JSON = "run_info.json"


@dataclass
class FolderResult:
    images: list[ScoredImage]
    summary: dict[str, dict]
    run: ScoringRun
    paths: dict[str, Path] = field(default_factory=dict)


def folder_images(folder) -> list[Path]:
    files = list_photos(folder)          # mask PNGs named by .face.json sidecars are not images to score
    if not files:
        raise FileNotFoundError(f"{folder}: no images to score (looked for .jpg, .jpeg, .png, .webp files)")
    return files


def score_folder(images_dir, reference, out_dir, *, engines=("dlib",), options: EngineOptions | None = None,
                 thresholds=None, run: ScoringRun | None = None) -> FolderResult:
    """Score every image directly inside ``images_dir`` against ``reference`` (photo paths).

    Pass an existing ``run`` to reuse loaded engines and reference centroids.
    """
    files = folder_images(images_dir)
    run = run or ScoringRun.create(reference, engines, options=options, thresholds=thresholds)
    images = []
    for i, path in enumerate(files):
        images.append(run.score_file(path))
        if not images[-1].scored:
            continue  # score_file warned
        log.info("[%d/%d] %s: %s", i + 1, len(files), path.name,
                 ", ".join(f"{k} {s.similarity if s.face_found else 'no face'}" for k, s in images[-1].scores.items()))
    summary = run.summarize(images)
    out_dir = Path(out_dir)
    paths = {"scores": write_scores_csv(out_dir / SCORES_CSV, images, run.keys),
             "summary": write_json(out_dir / SUMMARY_JSON, summary),
             "run_info": write_json(out_dir / RUN_INFO_JSON, {**run.info(), "images_dir": str(images_dir),
                                                               "n_images": len(images),
                                                               "unreadable": [im.file for im in images
                                                                              if not im.scored]})}
    return FolderResult(images=images, summary=summary, run=run, paths=paths)
