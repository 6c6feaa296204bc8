"""``report.html`` of scored images (see :mod:`pulid_flux.htmlreport` for the page itself).

* :func:`gallery_parts`: the prompts x configs grid, every image a tile with its scores (green
  pass, red fail, orange "no face"; the prompt text on hover), the summary per config and engine,
  every image's row, and the plot, as page parts a run report can add to;
* :func:`write_gallery_report` / :func:`write_folder_report`: the pages of ``pulid-studio score``.

Images inside the page's folder are linked where they are; images elsewhere (a folder scored in
place, a reference photo) get a small JPEG copy in ``thumbs/`` so the folder stays self-contained.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..htmlreport import Badge, Figures, Grid, Notes, Page, Table, Tile, relative, score_badges, write_page
from .score import ScoredImage

log = logging.getLogger(__name__)

REPORT_HTML = "report.html"
THUMBS = "thumbs"
THUMB_SIDE = 384
SUMMARY_COLUMNS = ("images", "faces", "mean", "median", "std", "min", "max", "no-face rate", "pass rate")
RATE_COLUMNS = frozenset({"no-face rate", "pass rate"})


def image_ref(path, page_dir) -> str:
    """``path`` relative to ``page_dir`` when inside it, else a thumbnail written to ``thumbs/``."""
    path, page_dir = Path(path).resolve(), Path(page_dir).resolve()
    if page_dir in path.parents:
        return relative(path, page_dir)
    from PIL import Image

    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    target = page_dir / THUMBS / f"{path.stem}_{digest}.jpg"
    if not target.is_file() or target.stat().st_mtime < path.stat().st_mtime:
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as picture:
            picture = picture.convert("RGB")
            picture.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.LANCZOS)
            picture.save(target, quality=88)
    return relative(target, page_dir)


def prompt_texts(gallery_dir) -> dict[str, str]:
    """{``config/file``: prompt text} from the runner's ``gallery/manifest.json`` (empty without one)."""
    path = Path(gallery_dir) / "manifest.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(rows, list):
        return {}
    return {f"{r['config']}/{r['file'].rsplit('/', 1)[-1]}": str(r["text"]) for r in rows
            if isinstance(r, dict) and r.get("text") and r.get("config") and r.get("file")}


def _caption(image: ScoredImage) -> str:
    """The file name without what the grid's row already says (``NN_tag_``)."""
    stem = Path(image.file).stem
    prefix = f"{image.index:02d}_{image.prompt}_" if image.index is not None else None
    return stem[len(prefix):] if prefix and stem.startswith(prefix) else stem


def _tile(image: ScoredImage, page_dir, thresholds, hover: str) -> Tile:
    if not image.scored:        # unreadable: listed with its reason, nothing to show
        return Tile(image=None, badges=[Badge("unreadable")], caption=_caption(image), hover=f"{hover}\n{image.error}")
    badges, status = score_badges(image.scores, thresholds)
    return Tile(image=image_ref(image.path, page_dir) if image.path else None, badges=badges, status=status,
                caption=_caption(image), hover=hover)


def summary_table(summaries: Mapping[str, Mapping[str, dict]], counts: Mapping[str, int], key: str, *,
                  first: str = "config", model: str = "") -> Table:
    rows = []
    for name, per_engine in summaries.items():
        s = per_engine[key]
        rows.append([name, counts[name], s["count"], s["mean"], s["median"], s["std"], s["min"], s["max"],
                     s["no_face_rate"], s["pass_rate"]])
    threshold = next(iter(summaries.values()))[key]["threshold"] if summaries else None
    note = (f"Cosine similarity of the best face to the reference centroid ({model or key}); mean to max are over "
            f"the images with a face; pass = similarity >= {threshold:g}, no face counts as a fail. Click a heading "
            "to sort.") if threshold is not None else ""
    return Table(f"Identity similarity ({key})", [first, *SUMMARY_COLUMNS], rows, note=note, percent=RATE_COLUMNS)


def images_table(images: Sequence[ScoredImage], keys: Sequence[str], *, gallery: bool) -> Table:
    columns = (["config", "prompt", "seed"] if gallery else []) + ["file"]
    columns += [f"similarity {k}" for k in keys] + ["faces", "face px"]
    errors = any(im.error for im in images)
    columns += ["error"] if errors else []
    rows = []
    for im in images:
        row = [im.config, im.prompt, im.seed] if gallery else []
        row += [im.file] + [im.scores[k].similarity for k in keys]
        row += [im.scores[keys[0]].n_faces, im.scores[keys[0]].face_px]
        rows.append(row + ([im.error or ""] if errors else []))
    return Table("Every image", columns, rows, note="Empty similarity: no face found. Click a heading to sort.",
                 decimals={"face px": 1})


def gallery_parts(result, page_dir, *, texts: Mapping[str, str] | None = None) -> list:
    """Grid, summary tables, image table and plot of a ``GalleryResult`` whose files are in ``page_dir``."""
    page_dir = Path(page_dir)
    texts = texts or {}
    thresholds = result.run.thresholds
    keys = result.run.keys
    cells: dict[tuple[str, str], list[Tile]] = {}
    row_hover: dict[str, str] = {}
    for config, images in result.images.items():
        for im in sorted(images, key=lambda i: (i.seed is None, i.seed or 0, i.file)):
            text = texts.get(f"{config}/{im.file}")
            if text:
                row_hover.setdefault(im.prompt, text)
            hover = f"{text or im.prompt}\n{config}/{im.file}"
            cells.setdefault((im.prompt, config), []).append(_tile(im, page_dir, thresholds, hover))
    counts = {c: len(ims) for c, ims in result.images.items()}
    parts: list = [summary_table(result.summaries, counts, key, model=result.run.models.get(key, "")) for key in keys]
    parts.append(Grid("Images", list(result.prompts), list(result.configs), cells, row_hover=row_hover,
                      note="Rows are prompts (hover a row or an image for its text), columns are configs; every "
                           "image carries its identity score: green pass, red fail, orange no face."))
    if (page_dir / "summary_plot.png").is_file():
        parts.append(Figures("Plot", [("summary_plot.png", "Similarity per config: box and points, threshold line, "
                                                           "no-face and pass rates")]))
    parts.append(images_table([im for ims in result.images.values() for im in ims], keys, gallery=True))
    return parts


def _engine_notes(run) -> list[str]:
    return [f"Scoring: {k} ({run.models.get(k, '?')}), pass threshold {run.thresholds[k]:g}" for k in run.keys]


def reference_figures(reference: Sequence, page_dir) -> Figures | None:
    paths = [Path(p) for p in reference if isinstance(p, (str, Path)) and Path(p).is_file()]
    if not paths:
        return None
    return Figures("Reference", [(image_ref(p, page_dir), p.name) for p in paths], small=True)


def write_gallery_report(result, out_dir, *, reference: Sequence = (), gallery_dir=None) -> Path:
    """``out_dir/report.html`` for ``score --gallery``."""
    out_dir = Path(out_dir)
    texts = prompt_texts(gallery_dir) if gallery_dir else {}
    page = Page("Identity scores", parts=[Notes("", _engine_notes(result.run)
                                                + [("summary.csv", "summary.csv"),
                                                   ("full-size grid (grid.jpg)", "grid.jpg")])])
    figures = reference_figures(reference, out_dir)
    if figures:
        page.parts.append(figures)
    page.parts += gallery_parts(result, out_dir, texts=texts)
    return write_page(out_dir / REPORT_HTML, page)


def write_folder_report(result, out_dir, *, reference: Sequence = ()) -> Path:
    """``out_dir/report.html`` for ``score --images``: every image with its scores, sortable tables."""
    out_dir = Path(out_dir)
    run, keys = result.run, result.run.keys
    # One cell whose tiles wrap (a flat folder has no rows or columns).
    grid = Grid("Images", [""], ["scored images"],
                {("", "scored images"): [_tile(im, out_dir, run.thresholds, im.file) for im in result.images]},
                note="Every image with its identity score: green pass, red fail, orange no face.")
    page = Page("Identity scores", parts=[Notes("", _engine_notes(run) + [("scores.csv", "scores.csv"),
                                                                         ("summary.json", "summary.json")])])
    figures = reference_figures(reference, out_dir)
    if figures:
        page.parts.append(figures)
    page.parts += [grid] + [summary_table({"images": result.summary}, {"images": len(result.images)}, key,
                                          first="set", model=run.models.get(key, "")) for key in keys]
    page.parts.append(images_table(result.images, keys, gallery=False))
    return write_page(out_dir / REPORT_HTML, page)
