"""Score an in-memory batch (the ComfyUI node): text report and a preview grid."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..progress import ProgressCallback
from .grid import GridLayout, Tile, render_grid
from .report import format_table
from .run import ScoringRun
from .score import ScoredImage
from .stats import passes

PREVIEW_TILE_MAX = 512


@dataclass
class BatchResult:
    images: list[ScoredImage]
    summary: dict[str, dict]
    text: str
    grid: object                 # PIL.Image
    layout: GridLayout


def describe(images: Sequence[ScoredImage], summary: dict, run: ScoringRun) -> str:
    lines = []
    for e in run.engines:
        ref = run.references[e.key]
        lines.append(f"engine {e.key}: {e.model}, threshold {run.thresholds[e.key]:g} ({e.threshold_source}); "
                     f"reference: {len(ref.faces)} photo(s)")
    lines.append("")
    for im in images:
        parts = []
        for key, s in im.scores.items():
            if s.face_found:
                verdict = "pass" if passes(s.similarity, run.thresholds[key]) else "fail"
                parts.append(f"{key} {s.similarity:.4f} {verdict} ({s.n_faces} face(s), {s.face_px:.0f} px)")
            else:
                parts.append(f"{key} NO FACE")
        lines.append(f"{im.file}: " + "; ".join(parts))
    lines += ["", format_table({"batch": summary}), "",
              ("similarity: best-matching face vs. the reference centroid; std is the population std; "
               "pass rate is over all images (no face = fail); face px = sqrt(bbox area)")]
    return "\n".join(lines)


def score_batch(images: Sequence[np.ndarray], run: ScoringRun, *, columns: int | None = None,
                names: Sequence[str] | None = None, progress: ProgressCallback | None = None) -> BatchResult:
    """Score RGB uint8 ``images`` with an already set-up run (``progress(done, total, "score")``
    after each one)."""
    if not len(images):
        raise ValueError("no image to score")
    names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
    scored = []
    for im, name in zip(images, names):
        scored.append(run.score(im, name))
        if progress:
            progress(len(scored), len(images), "score")
    summary = run.summarize(scored)
    columns = int(columns) if columns else math.ceil(math.sqrt(len(images)))
    columns = max(1, min(columns, len(images)))
    n_rows = math.ceil(len(images) / columns)
    row_keys, col_keys = [f"row {r}" for r in range(n_rows)], [f"col {c}" for c in range(columns)]
    key0 = run.keys[0]
    tiles = {}
    for i, (image, im) in enumerate(zip(images, scored)):
        s = im.scores[key0]
        label = f"{im.file}: {s.similarity:.3f}" if s.face_found else f"{im.file}: no face"
        status = "noface" if not s.face_found else ("pass" if passes(s.similarity, run.thresholds[key0]) else "fail")
        extra = " · ".join(f"{k} {v.similarity:.3f}" if v.face_found else f"{k} no face"
                           for k, v in list(im.scores.items())[1:])
        tiles[(row_keys[i // columns], col_keys[i % columns])] = Tile(image, label + ("\n" + extra if extra else ""),
                                                                      status)
    for i in range(len(images), n_rows * columns):
        tiles[(row_keys[i // columns], col_keys[i % columns])] = Tile(None, "", "neutral")
    tile = min(PREVIEW_TILE_MAX, max(max(im.shape[:2]) for im in images))
    grid, layout = render_grid(tiles, row_keys, col_keys, tile=max(64, tile), row_header=False, column_header=False)
    return BatchResult(images=scored, summary=summary, text=describe(scored, summary, run), grid=grid, layout=layout)
