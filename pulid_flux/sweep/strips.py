"""``strips/<tag>.png``: one strip per prompt, the same prompt and seed at every checkpoint side by side.

Columns are the checkpoints in step order, headed by the step (the recommended one marked
"(chosen)": PIL's default font has no star); rows are the seeds. Each tile's label gives its
identity and CLIP score (orange when no face was found). Drawn with the scoring grid renderer, so
strips and report grids look alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..images import load_rgb
from ..scoring.grid import FULL_TILE_MAX, Tile, render_grid
from .table import GroupSummary, SweepRow, column_headers

STRIPS_DIR = "strips"
STRIP_TILE_MAX = 512


def _label(row: SweepRow, identity: str, style: bool) -> str:
    value = getattr(row, identity)
    first = f"id {value:.3f}" if value is not None else "no face"
    second = f"clip {row.clip_score:.3f}" if row.clip_score is not None else ""
    if style and row.style_clip_score is not None:
        second += f" · style {row.style_clip_score:.3f}"
    return f"{first}\n{second}"


def write_strips(out_dir, rows: Sequence[SweepRow], summaries: Sequence[GroupSummary], *, identity: str,
                 style: bool = False, recommended: str | None = None) -> list[Path]:
    """Write one strip per prompt tag under ``out_dir/strips``; return their paths (prompt order)."""
    out_dir = Path(out_dir)
    headers = column_headers(summaries, recommended)
    columns = [headers[s.group] for s in summaries]
    tags = list(dict.fromkeys(r.prompt for r in rows))
    written = []
    for tag in tags:
        mine = [r for r in rows if r.prompt == tag and r.group(style) in headers]
        seeds = sorted({r.seed for r in mine})
        tiles, sides = {}, []
        for row in mine:
            image = load_rgb(out_dir / row.file)
            sides.append(max(image.shape[:2]))
            tiles[(f"seed {row.seed}", headers[row.group(style)])] = Tile(
                image, _label(row, identity, style), "neutral" if getattr(row, identity) is not None else "noface")
        tile = min(max(sides, default=256), STRIP_TILE_MAX, FULL_TILE_MAX)
        picture, _ = render_grid(tiles, [f"seed {s}" for s in seeds], columns, tile=tile)
        path = out_dir / STRIPS_DIR / f"{tag}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
        written.append(path)
    return written
