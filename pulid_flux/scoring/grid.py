"""Contact-sheet grids with PIL: rows x columns of tiles, each with a coloured score label.

The gallery grid has one row per prompt and one column per config; the node's preview wraps a
batch into rows. :func:`render_grid` returns the picture and its :class:`GridLayout` (where each
tile's image square is), so callers and tests can find every tile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

BACKGROUND = (24, 24, 24)
TILE_BACKGROUND = (40, 40, 40)
HEADER_TEXT = (235, 235, 235)
STATUS_COLOURS = {
    "pass": (80, 200, 100),
    "fail": (235, 80, 70),
    "noface": (245, 170, 40),
    "missing": (140, 140, 140),
    "neutral": (235, 235, 235),
}
SMALL_WIDTH = 1100
FULL_TILE_MAX = 1024


@dataclass
class Tile:
    image: np.ndarray | None          # RGB uint8 (H, W, 3); None = nothing to show
    label: str = ""                   # up to two lines
    status: str = "neutral"           # a STATUS_COLOURS key


@dataclass
class GridLayout:
    rows: list[str]
    columns: list[str]
    tile: int                                                     # side of each tile's image square
    size: tuple[int, int]                                         # (width, height) of the picture
    boxes: dict[tuple[str, str], tuple[int, int, int, int]] = field(default_factory=dict)   # (x0, y0, x1, y1)

    def order(self) -> list[tuple[str, str]]:
        """Tiles in reading order (row by row, left to right)."""
        return [(r, c) for r in self.rows for c in self.columns]


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _fit_text(draw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _fit_image(image: np.ndarray, side: int):
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image[..., :3].astype(np.uint8)))
    scale = side / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.LANCZOS) if size != picture.size else picture


def metrics(tile: int, *, row_header: bool, n_label_lines: int = 2) -> dict:
    font = max(10, min(40, tile // 14))
    line = round(font * 1.3)
    pad = max(2, tile // 64)
    return {"font": font, "line": line, "pad": pad, "label_h": n_label_lines * line + pad,
            "header_h": line + 2 * pad, "row_header_w": max(90, min(320, tile // 2)) if row_header else 0}


def render_grid(tiles: dict[tuple[str, str], Tile], rows: Sequence[str], columns: Sequence[str], *, tile: int,
                row_header: bool = True, column_header: bool = True):
    """(PIL image, GridLayout). Missing (row, column) pairs are drawn as empty 'missing' tiles."""
    from PIL import Image, ImageDraw

    rows, columns = [str(r) for r in rows], [str(c) for c in columns]
    if not rows or not columns:
        raise ValueError("a grid needs at least one row and one column")
    tile = int(tile)
    if tile < 16:
        raise ValueError(f"tile size {tile} px is too small to show a face")
    m = metrics(tile, row_header=row_header)
    pad, label_h = m["pad"], m["label_h"]
    top = m["header_h"] if column_header else 0
    left = m["row_header_w"]
    cell_w, cell_h = tile + pad, tile + label_h + pad
    width, height = left + len(columns) * cell_w + pad, top + len(rows) * cell_h + pad
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = _font(m["font"])
    layout = GridLayout(rows=list(rows), columns=list(columns), tile=tile, size=(width, height))
    if column_header:
        for j, name in enumerate(columns):
            x = left + pad + j * cell_w
            draw.text((x, pad), _fit_text(draw, name, font, tile), fill=HEADER_TEXT, font=font)
    for i, row_name in enumerate(rows):
        y = top + pad + i * cell_h
        if row_header:
            words = _fit_text(draw, row_name, font, left - 2 * pad)
            draw.text((pad, y + tile // 2 - m["line"] // 2), words, fill=HEADER_TEXT, font=font)
        for j, col_name in enumerate(columns):
            x = left + pad + j * cell_w
            cell = tiles.get((row_name, col_name)) or Tile(None, "missing", "missing")
            draw.rectangle((x, y, x + tile - 1, y + tile - 1), fill=TILE_BACKGROUND)
            if cell.image is not None:
                picture = _fit_image(cell.image, tile)
                canvas.paste(picture, (x + (tile - picture.width) // 2, y + (tile - picture.height) // 2))
            colour = STATUS_COLOURS.get(cell.status, STATUS_COLOURS["neutral"])
            for k, text in enumerate(cell.label.split("\n")[:2]):
                draw.text((x, y + tile + pad // 2 + k * m["line"]), _fit_text(draw, text, font, tile),
                          fill=colour, font=font)
            layout.boxes[(row_name, col_name)] = (x, y, x + tile, y + tile)
    return canvas, layout


def small_tile(n_columns: int, *, width: int = SMALL_WIDTH, row_header: bool = True) -> int:
    """Tile side that makes a grid of ``n_columns`` about ``width`` pixels wide (at least 48)."""
    best = 48
    for side in range(48, 1025):
        m = metrics(side, row_header=row_header)
        if m["row_header_w"] + n_columns * (side + m["pad"]) + m["pad"] > width:
            break
        best = side
    return best


def full_tile(images: Sequence[np.ndarray | None]) -> int:
    """Tile side for the full grid: the largest image side, at most FULL_TILE_MAX."""
    sides = [max(im.shape[:2]) for im in images if im is not None]
    return min(max(sides, default=256), FULL_TILE_MAX)
