"""Score a generated gallery laid out as ``gallery/<config>/<NN>_<tag>[_<params>].png``.

Writes into ``out_dir``:

* ``eval/<config>.csv``: one row per image (file, config, prompt, seed, face_found, n_faces,
  similarity_<engine>..., face_px; see :mod:`.report`);
* ``summary.csv`` (one row per config and engine) and ``summary.json``
  (``{config: {engine: {count, mean, median, std, min, max, no_face_rate, pass_rate, threshold}}}``);
* ``grid.jpg`` (full: tiles at the images' own size, up to 1024 px) and ``grid_small.png`` (about
  1100 px wide): rows = prompts (ordered by NN, then tag), columns = configs (folder names, sorted);
  each tile shows the cell's first image (lowest seed, then file name) with its score, coloured
  green (pass), red (fail) or orange (no face); a cell with several images also shows their mean;
* ``summary_plot.png``: per config, box + strip of the similarities, threshold line, no-face and
  pass rates;
* ``run_info.json``: engines, models, thresholds and their sources, reference faces, definitions.

Prompt tags and seeds come from the file names or from a manifest (see :mod:`.naming`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..face.region import list_photos
from ..images import ImageReadError, load_rgb
from .engines import EngineOptions
from .grid import FULL_TILE_MAX, GridLayout, Tile, full_tile, render_grid, small_tile
from .naming import ImageMeta, find_manifest, image_meta, read_manifest
from .plot import plot_similarities
from .report import write_json, write_scores_csv, write_summary_csv
from .run import ScoringRun
from .score import ScoredImage
from .stats import passes

log = logging.getLogger(__name__)

EVAL_DIR = "eval"
FILES = {"summary_csv": "summary.csv", "summary_json": "summary.json", "grid": "grid.jpg",
         "grid_small": "grid_small.png", "plot": "summary_plot.png", "run_info": "run_info.json"}


@dataclass
class GalleryEntry:
    config: str
    path: Path
    meta: ImageMeta

    @property
    def relative(self) -> str:
        return f"{self.config}/{self.path.name}"


@dataclass
class GalleryResult:
    configs: list[str]
    prompts: list[str]
    images: dict[str, list[ScoredImage]]           # config -> scored images (file-name order)
    summaries: dict[str, dict[str, dict]]          # config -> engine -> summary
    layout: GridLayout                             # of the full grid
    small_layout: GridLayout
    run: ScoringRun
    paths: dict = field(default_factory=dict)


def discover_gallery(gallery_dir, *, manifest=None, configs: Sequence[str] | None = None,
                     exclude: Sequence[Path] = ()) -> dict[str, list[GalleryEntry]]:
    """{config: entries} for the config sub-folders of ``gallery_dir`` (all, sorted, or ``configs``)."""
    gallery_dir = Path(gallery_dir)
    if not gallery_dir.is_dir():
        raise FileNotFoundError(f"{gallery_dir}: gallery folder not found")
    if manifest is None:
        manifest = find_manifest(gallery_dir)
        if manifest is not None:
            log.info("gallery manifest: %s", manifest)
    records = read_manifest(manifest) if manifest is not None else None
    excluded = {Path(p).resolve() for p in exclude}
    if configs is None:
        folders = sorted(p for p in gallery_dir.iterdir()
                         if p.is_dir() and not p.name.startswith((".", "_")) and p.resolve() not in excluded)
    else:
        folders = [gallery_dir / c for c in configs]
        for folder in folders:
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder}: config folder not found in the gallery")
    result = {}
    for folder in folders:
        files = list_photos(folder)
        if not files:
            log.warning("%s: no images in this config folder; it is left out", folder)
            continue
        result[folder.name] = [GalleryEntry(folder.name, f, image_meta(f"{folder.name}/{f.name}", records))
                               for f in files]
    if not result:
        raise FileNotFoundError(f"{gallery_dir}: no config folder with images (expected "
                                "gallery/<config>/<NN>_<tag>[_<params>].png)")
    return result


def prompt_order(entries: Sequence[GalleryEntry]) -> list[str]:
    """Prompt tags by their smallest NN (names without NN last), then alphabetically."""
    first: dict[str, float] = {}
    for e in entries:
        index = e.meta.index if e.meta.index is not None else math.inf
        first[e.meta.prompt] = min(first.get(e.meta.prompt, math.inf), index)
    return sorted(first, key=lambda tag: (first[tag], tag))


def _display_key(image: ScoredImage):
    return (image.seed is None, image.seed if image.seed is not None else 0, image.file)


def _tile(cell: list[ScoredImage], thumbnails: dict[str, np.ndarray], keys: Sequence[str],
          thresholds: dict[str, float]) -> Tile:
    shown = min(cell, key=_display_key)
    primary = shown.scores[keys[0]]
    if not shown.scored:
        return Tile(None, f"unreadable\n{shown.file}", "noface")
    if len(keys) == 1:
        line1 = f"{primary.similarity:.3f}" if primary.face_found else "no face"
    else:
        line1 = " · ".join(f"{k} {shown.scores[k].similarity:.3f}" if shown.scores[k].face_found else f"{k} no face"
                           for k in keys)
    details = [f"seed {shown.seed}"] if shown.seed is not None else []
    if len(cell) > 1:
        found = [im.scores[keys[0]].similarity for im in cell if im.scores[keys[0]].face_found]
        mean = f"mean {np.mean(found):.3f}" if found else "mean -"
        details.append(f"{mean} ({len(found)}/{len(cell)} faces)")
    status = "noface" if not primary.face_found else ("pass" if passes(primary.similarity, thresholds[keys[0]])
                                                      else "fail")
    return Tile(thumbnails.get(f"{shown.config}/{shown.file}"), "\n".join([line1, " · ".join(details)]), status)


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """The image at most FULL_TILE_MAX on its long side (what the full grid shows)."""
    from PIL import Image

    if max(image.shape[:2]) <= FULL_TILE_MAX:
        return image
    picture = Image.fromarray(image)
    picture.thumbnail((FULL_TILE_MAX, FULL_TILE_MAX), Image.LANCZOS)
    return np.asarray(picture)


def score_gallery(gallery_dir, reference, out_dir, *, engines=("dlib",), options: EngineOptions | None = None,
                  thresholds=None, manifest=None, configs: Sequence[str] | None = None,
                  run: ScoringRun | None = None, regions=None) -> GalleryResult:
    """Score every config of ``gallery_dir`` against ``reference`` and write all reports to ``out_dir``.

    ``reference``: reference photo paths (or (name, RGB array) pairs); ``engines``: specs such as
    "dlib", "insightface", "insightface:buffalo_l", "arcface:<file.onnx>", or loaded ScoringEngines;
    ``thresholds``: None (each engine's default), a number, or {engine key: number};
    ``manifest``: a manifest file (default: gallery/manifest.json or manifest.csv if present).
    Pass an existing ``run`` to reuse loaded engines and reference centroids; ``regions`` (reference path ->
    FaceRegion) picks the face of a reference, else its ``.face.json`` sidecar does.
    """
    out_dir = Path(out_dir)
    gallery = discover_gallery(gallery_dir, manifest=manifest, configs=configs, exclude=[out_dir])
    run = run or ScoringRun.create(reference, engines, options=options, thresholds=thresholds, regions=regions)
    keys = run.keys
    all_entries = [e for entries in gallery.values() for e in entries]
    prompts = prompt_order(all_entries)
    # Only the image each grid cell shows is kept in memory (as a thumbnail).
    cells: dict[tuple[str, str], list[GalleryEntry]] = {}
    for e in all_entries:
        cells.setdefault((e.meta.prompt, e.config), []).append(e)
    shown = {min(es, key=lambda e: (e.meta.seed is None, e.meta.seed or 0, e.path.name)).relative
             for es in cells.values()}

    images: dict[str, list[ScoredImage]] = {}
    thumbnails: dict[str, np.ndarray] = {}
    total, done = len(all_entries), 0
    for config, entries in gallery.items():
        images[config] = []
        for e in entries:
            meta = dict(path=e.path, config=config, prompt=e.meta.prompt, seed=e.meta.seed, index=e.meta.index)
            try:
                array = load_rgb(e.path)
            except ImageReadError as exc:
                images[config].append(run.unreadable(e.path, exc, e.path.name, **{k: v for k, v in meta.items()
                                                                                  if k != "path"}))
                done += 1
                continue
            images[config].append(run.score(array, e.path.name, **meta))
            if e.relative in shown:
                thumbnails[e.relative] = _thumbnail(array)
            done += 1
            log.info("[%d/%d] %s scored", done, total, e.relative)

    summaries = {c: run.summarize(ims) for c, ims in images.items()}
    config_names = list(gallery)
    paths: dict = {"eval": {c: write_scores_csv(out_dir / EVAL_DIR / f"{c}.csv", ims, keys, gallery=True)
                            for c, ims in images.items()}}
    paths["summary_json"] = write_json(out_dir / FILES["summary_json"], summaries)
    paths["summary_csv"] = write_summary_csv(out_dir / FILES["summary_csv"], summaries,
                                             {c: len(ims) for c, ims in images.items()}, run.models)

    by_cell: dict[tuple[str, str], list[ScoredImage]] = {}
    for config, ims in images.items():
        for im in ims:
            by_cell.setdefault((im.prompt, config), []).append(im)
    tiles = {cell: _tile(ims, thumbnails, keys, run.thresholds) for cell, ims in by_cell.items()}
    full, layout = render_grid(tiles, prompts, config_names, tile=full_tile(list(thumbnails.values())))
    full.save(out_dir / FILES["grid"], quality=92)
    paths["grid"] = out_dir / FILES["grid"]
    small, small_layout = render_grid(tiles, prompts, config_names, tile=small_tile(len(config_names)))
    small.save(out_dir / FILES["grid_small"])
    paths["grid_small"] = out_dir / FILES["grid_small"]

    sims = {c: {k: [im.scores[k].similarity for im in ims if im.scored] for k in keys} for c, ims in images.items()}
    paths["plot"] = plot_similarities(out_dir / FILES["plot"], config_names, sims, summaries, keys, run.models)
    paths["run_info"] = write_json(out_dir / FILES["run_info"], {
        **run.info(), "gallery": str(gallery_dir), "configs": config_names, "prompts": prompts,
        "n_images": {c: len(ims) for c, ims in images.items()},
        "unreadable": [f"{c}/{im.file}" for c, ims in images.items() for im in ims if not im.scored],
        "grid": {"rows": "prompts", "columns": "configs",
                 "tile_shows": "the cell's image with the lowest seed (then file name)"}})
    log.info("gallery scores written to %s", out_dir)
    return GalleryResult(configs=config_names, prompts=prompts, images=images, summaries=summaries, layout=layout,
                         small_layout=small_layout, run=run, paths=paths)
