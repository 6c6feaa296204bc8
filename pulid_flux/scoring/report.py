"""Per-image CSV rows and per-set summaries (CSV and JSON), written so they read back exactly.

Per-image columns: ``file``, [``config``, ``prompt``, ``seed`` for galleries], ``face_found`` (1/0),
``n_faces``, ``similarity_<engine>`` for each engine (empty when that engine found no face),
``face_px`` (sqrt of the chosen face's bbox area, empty without a face). ``face_found``, ``n_faces``
and ``face_px`` describe the FIRST engine; with several engines ``n_faces_<engine>`` and
``face_px_<engine>`` follow for each one. ``error`` is empty, or says why the image could not be
scored (``unreadable: <reason>``; its other cells are then empty).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from .score import ScoredImage
from .stats import SUMMARY_KEYS, summarize

GALLERY_COLUMNS = ("config", "prompt", "seed")
SUMMARY_CSV_COLUMNS = ("config", "engine", "model", "n_images") + SUMMARY_KEYS


def columns(keys: Sequence[str], *, gallery: bool = False) -> list[str]:
    cols = ["file"] + (list(GALLERY_COLUMNS) if gallery else []) + ["face_found", "n_faces"]
    cols += [f"similarity_{k}" for k in keys] + ["face_px"]
    if len(keys) > 1:
        for k in keys:
            cols += [f"n_faces_{k}", f"face_px_{k}"]
    return cols + ["error"]


def _cell(value):
    return "" if value is None else value


def row(image: ScoredImage, keys: Sequence[str], *, gallery: bool = False) -> dict:
    primary = image.scores[keys[0]]
    out = {"file": image.file}
    if gallery:
        out.update(config=_cell(image.config), prompt=_cell(image.prompt), seed=_cell(image.seed))
    if not image.scored:
        return {**out, "face_found": 0, "error": image.error}
    out.update(face_found=int(primary.face_found), n_faces=primary.n_faces)
    out.update({f"similarity_{k}": _cell(image.scores[k].similarity) for k in keys})
    out["face_px"] = _cell(primary.face_px)
    if len(keys) > 1:
        for k in keys:
            out[f"n_faces_{k}"] = image.scores[k].n_faces
            out[f"face_px_{k}"] = _cell(image.scores[k].face_px)
    out["error"] = ""
    return out


def write_scores_csv(path, images: Sequence[ScoredImage], keys: Sequence[str], *, gallery: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns(keys, gallery=gallery))
        writer.writeheader()
        for image in images:
            writer.writerow(row(image, keys, gallery=gallery))
    return path


def read_similarities(path, key: str) -> list[float | None]:
    """The ``similarity_<key>`` column of a scores CSV (None for empty cells)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [float(r[f"similarity_{key}"]) if r[f"similarity_{key}"] != "" else None for r in csv.DictReader(fh)]


def summarize_images(images: Sequence[ScoredImage], keys: Sequence[str], thresholds: dict[str, float]) -> dict:
    """{engine key: summary} of one image set (see :mod:`.stats`)."""
    return {k: summarize([im.scores[k].similarity for im in images], thresholds[k]) for k in keys}


def write_json(path, data) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # allow_nan=False: a NaN would make the file unreadable by strict JSON parsers; None is written instead.
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def write_summary_csv(path, summaries: dict[str, dict[str, dict]], n_images: dict[str, int],
                      models: dict[str, str]) -> Path:
    """One row per (config, engine)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SUMMARY_CSV_COLUMNS)
        writer.writeheader()
        for config, per_engine in summaries.items():
            for key, stats in per_engine.items():
                writer.writerow({"config": config, "engine": key, "model": models.get(key, ""),
                                 "n_images": n_images[config], **{k: _cell(stats[k]) for k in SUMMARY_KEYS}})
    return path


def format_table(summaries: dict[str, dict[str, dict]]) -> str:
    """Plain-text table of {set: {engine: summary}} for terminals and the node's text output."""
    header = f"{'set':<20} {'engine':<16} {'faces':>7} {'mean':>7} {'median':>7} {'std':>7} {'min':>7} " \
             f"{'max':>7} {'noface':>7} {'pass':>7} {'thr':>6}"
    lines = [header, "-" * len(header)]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"
    for name, per_engine in summaries.items():
        for key, s in per_engine.items():
            lines.append(f"{name[:20]:<20} {key[:16]:<16} {s['count']:>7} {fmt(s['mean']):>7} {fmt(s['median']):>7} "
                         f"{fmt(s['std']):>7} {fmt(s['min']):>7} {fmt(s['max']):>7} {s['no_face_rate']:>7.1%} "
                         f"{s['pass_rate']:>7.1%} {s['threshold']:>6.3f}")
    return "\n".join(lines)
