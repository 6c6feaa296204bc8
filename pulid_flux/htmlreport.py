"""``report.html``: one self-contained page beside a run's results, readable from a file:// URL.

The page is built from a few parts (a :class:`Page` holding :class:`Grid`, :class:`Table`,
:class:`Figures` and :class:`Notes`) and written by :func:`write_page`: CSS and the small script
that sorts tables are inline, images are linked by paths relative to the page (they live in the
same folder tree), and nothing is fetched from the network. Standard library only, so the client
(``api_client``, no torch) can write pages too.

The writers that use it: the ablation report (``api_client.runner.report_html``), ``score``
(``pulid_flux.scoring.report_html``) and the dataset contact sheet. A new run type builds a
:class:`Page` and calls :func:`write_page`; :func:`score_badges` turns identity scores into the
badges a tile shows.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Tile and badge states (CSS classes): a face at or over the threshold, under it, no face, other.
STATUSES = ("pass", "fail", "noface", "neutral")


@dataclass
class Badge:
    text: str
    status: str = "neutral"


@dataclass
class Tile:
    """One image with its scores drawn on it; ``hover`` is the tooltip (e.g. the prompt)."""

    image: str | None                 # path relative to the page's folder (None: an empty cell)
    badges: list[Badge] = field(default_factory=list)
    status: str = "neutral"
    caption: str = ""
    hover: str = ""
    link: str | None = None           # defaults to the image itself


@dataclass
class Grid:
    """Tiles in rows and columns (e.g. prompts x configs); a cell may hold several tiles (seeds)."""

    title: str
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], list[Tile]]
    row_hover: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass
class Table:
    """A table sortable by clicking a column heading. Cells are numbers (sorted as numbers; None
    shows as –, sorted last), text, or ``(text, sort value)`` pairs."""

    title: str
    columns: list[str]
    rows: list[list]
    note: str = ""
    digits: int = 3
    percent: frozenset = frozenset()  # columns (names) holding rates in 0..1, shown as percentages
    decimals: dict = field(default_factory=dict)   # column name -> digits, where not ``digits``


@dataclass
class Figures:
    """Pictures (plots, strips, full grids), each ``(path relative to the page, caption)``;
    ``small`` draws them as thumbnails (e.g. reference photos)."""

    title: str
    items: list[tuple[str, str]]
    note: str = ""
    small: bool = False


@dataclass
class Notes:
    """A list of text lines (facts about the run, rules, links); ``(text, href)`` pairs become links."""

    title: str
    lines: list


@dataclass
class Page:
    title: str
    notices: list[str] = field(default_factory=list)   # shown in a warning box at the top
    parts: list = field(default_factory=list)


def score_badges(scores: Mapping[str, object], thresholds: Mapping[str, float], *,
                 label_engines: bool | None = None) -> tuple[list[Badge], str]:
    """Badges for one image's ``{engine: EngineScore-like}`` (``similarity`` None = no face) and
    the tile status, taken from the first engine."""
    label_engines = len(scores) > 1 if label_engines is None else label_engines
    badges, status = [], "neutral"
    for i, (key, score) in enumerate(scores.items()):
        similarity = getattr(score, "similarity", None)
        prefix = f"{key} " if label_engines else ""
        if similarity is None:
            badge = Badge(f"{prefix}no face", "noface")
        else:
            badge = Badge(f"{prefix}{similarity:.3f}", "pass" if similarity >= thresholds[key] else "fail")
        badges.append(badge)
        if i == 0:
            status = badge.status
    return badges, status


# ----------------------------------------------------------------------------- rendering

_CSS = """
:root{--pass:#1e8e3e;--fail:#c5221f;--noface:#e37400;--neutral:#5f6368}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:20px;background:#f6f6f6;color:#202124}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:28px 0 8px}
.notice{background:#fff4e5;border-left:4px solid var(--noface);padding:8px 12px;margin:0 0 12px;max-width:1100px}
.note{color:#555;font-size:13px;max-width:1100px}
ul.notes{margin:4px 0;padding-left:20px}ul.notes li{margin:2px 0}
table.grid{border-collapse:collapse}
table.grid th{font-size:13px;padding:4px 8px;text-align:center;background:#e8eaed}
table.grid th.row{text-align:right;max-width:160px;cursor:help}
table.grid td{vertical-align:top;padding:4px;background:#fff;border:1px solid #ddd}
.cell{display:flex;gap:4px;flex-wrap:wrap;align-items:flex-start}
figure.tile{position:relative;margin:0;width:200px;border:3px solid var(--neutral);border-radius:4px;
  background:#fff}
figure.tile.pass{border-color:var(--pass)}figure.tile.fail{border-color:var(--fail)}
figure.tile.noface{border-color:var(--noface)}
figure.tile img{display:block;width:100%;height:auto}
.badges{position:absolute;left:4px;top:4px;display:flex;flex-direction:column;gap:2px;align-items:flex-start}
.badge{color:#fff;font-size:12px;font-weight:600;padding:1px 6px;border-radius:9px;background:var(--neutral)}
.badge.pass{background:var(--pass)}.badge.fail{background:var(--fail)}.badge.noface{background:var(--noface)}
figure.tile figcaption{font-size:11px;color:#444;padding:2px 4px;word-break:break-all}
.empty{width:200px;height:60px;display:flex;align-items:center;justify-content:center;color:#999}
table.sortable{border-collapse:collapse;background:#fff;font-size:13px}
table.sortable th,table.sortable td{border:1px solid #ddd;padding:3px 8px}
table.sortable th{background:#e8eaed;cursor:pointer;user-select:none;white-space:nowrap}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
table.sortable td.num{text-align:right;font-variant-numeric:tabular-nums}
.figures{display:flex;flex-wrap:wrap;gap:16px}.figures figure{margin:0;background:#fff;padding:6px}
.figures img{max-width:1100px;width:100%;height:auto}.figures figcaption{font-size:12px;color:#555}
.figures.small img{max-width:200px}
"""

# Sorts a table.sortable on a click (or Enter) on its heading; blanks stay last either way.
_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.tabIndex = 0;
    function sort() {
      var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir);
      var body = table.tBodies[0], numeric = th.dataset.type === "number";
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var c = row.cells[col];
        return c.hasAttribute("data-sort") ? c.dataset.sort : c.textContent.trim();
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === "" || y === "") { return x === y ? 0 : (x === "" ? 1 : -1); }
        var c = numeric ? Number(x) - Number(y) : x.localeCompare(y, undefined, {numeric: true});
        return dir === "ascending" ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
  });
});
"""

_e = html.escape


def _href(path: str) -> str:
    """A relative path as a URL path (forward slashes, each segment escaped)."""
    from urllib.parse import quote

    return quote(str(path).replace(os.sep, "/"), safe="/._-~")


def _tile(tile: Tile) -> str:
    if tile.image is None and not (tile.badges or tile.caption):
        return '<div class="empty">–</div>'
    badges = "".join(f'<span class="badge {_e(b.status)}">{_e(b.text)}</span>' for b in tile.badges)
    if tile.image is None:      # an image that could not be read: its badges and caption, no picture
        picture = '<div class="empty"></div>'
    else:
        src = _href(tile.image)
        link = _href(tile.link) if tile.link else src
        picture = f'<a href="{link}"><img src="{src}" alt="{_e(tile.caption or tile.image)}"></a>'
    caption = f"<figcaption>{_e(tile.caption)}</figcaption>" if tile.caption else ""
    return (f'<figure class="tile {_e(tile.status)}" title="{_e(tile.hover)}">{picture}'
            f'<div class="badges">{badges}</div>{caption}</figure>')


def _grid(grid: Grid) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in grid.columns)
    body = []
    for r in grid.rows:
        cells = "".join('<td><div class="cell">' + "".join(_tile(t) for t in grid.cells.get((r, c)) or [Tile(None)])
                        + "</div></td>" for c in grid.columns)
        body.append(f'<tr><th class="row" title="{_e(grid.row_hover.get(r, r))}">{_e(r)}</th>{cells}</tr>')
    note = f'<p class="note">{_e(grid.note)}</p>' if grid.note else ""
    return (f"<h2>{_e(grid.title)}</h2>{note}<table class=\"grid\"><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _table_cell(value, name: str, table: Table) -> str:
    if isinstance(value, tuple):
        text, key = value
        return f'<td data-sort="{_e(str(key))}">{_e(str(text))}</td>'
    if value is None:
        return '<td class="num" data-sort="">–</td>'
    if _is_number(value):
        if value != value:  # NaN: no value
            return '<td class="num" data-sort="">–</td>'
        digits = table.decimals.get(name, table.digits)
        text = (f"{100 * value:.0f}%" if name in table.percent
                else (f"{value:.{digits}f}" if isinstance(value, float) else str(value)))
        return f'<td class="num" data-sort="{value!r}">{text}</td>'
    return f"<td>{_e(str(value))}</td>"


def render_table(table: Table) -> str:
    """One sortable table as HTML (for pages built elsewhere; add :data:`TABLE_CSS` and :data:`SORT_SCRIPT`)."""
    return _table(table)


def _table(table: Table) -> str:
    numeric = [all(v is None or _is_number(v) or (isinstance(v, tuple) and _is_number(v[1])) for v in column)
               and any(v is not None for v in column)
               for column in zip(*table.rows)] if table.rows else [False] * len(table.columns)
    head = "".join(f'<th{" data-type=number" if n else ""}>{_e(c)}</th>' for c, n in zip(table.columns, numeric))
    body = "".join("<tr>" + "".join(_table_cell(v, c, table) for v, c in zip(row, table.columns)) + "</tr>"
                   for row in table.rows)
    note = f'<p class="note">{_e(table.note)}</p>' if table.note else ""
    return (f"<h2>{_e(table.title)}</h2><table class=\"sortable\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{note}")


def _figures(figures: Figures) -> str:
    items = "".join(f'<figure><a href="{_href(p)}"><img src="{_href(p)}" alt="{_e(c)}"></a>'
                    f"<figcaption>{_e(c)}</figcaption></figure>" for p, c in figures.items)
    note = f'<p class="note">{_e(figures.note)}</p>' if figures.note else ""
    size = " small" if figures.small else ""
    return f'<h2>{_e(figures.title)}</h2>{note}<div class="figures{size}">{items}</div>'


def _notes(notes: Notes) -> str:
    lines = []
    for line in notes.lines:
        if isinstance(line, tuple):
            text, href = line
            lines.append(f'<li><a href="{_href(href)}">{_e(text)}</a></li>')
        else:
            lines.append(f"<li>{_e(str(line))}</li>")
    title = f"<h2>{_e(notes.title)}</h2>" if notes.title else ""
    return f'{title}<ul class="notes">{"".join(lines)}</ul>'


#: What a page needs around :func:`render_table` output: its style and the sorting script.
TABLE_CSS = "\n".join(line for line in _CSS.splitlines() if line.startswith(("table.sortable", ".note")))
SORT_SCRIPT = f"<script>{_SCRIPT}</script>"

_RENDER = {Grid: _grid, Table: _table, Figures: _figures, Notes: _notes}


def render_page(page: Page) -> str:
    notices = "".join(f'<div class="notice">{_e(n)}</div>' for n in page.notices)
    parts = "".join(_RENDER[type(part)](part) for part in page.parts)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{_e(page.title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{_e(page.title)}</h1>{notices}{parts}"
            f"<script>{_SCRIPT}</script></body></html>\n")


def write_page(path, page: Page) -> Path:
    """Write ``page`` to ``path`` (atomically: a reader never sees half a page)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_page(page), encoding="utf-8")
    os.replace(tmp, path)
    return path


def plain_text(markdown: str) -> str:
    """A line of a ``report.md`` as page text: without its Markdown emphasis, code marks and quote."""
    import re

    return re.sub(r"[*`]|^> ?", "", markdown)


def relative(path, start) -> str:
    """``path`` relative to the folder ``start``, with forward slashes (for links in a page)."""
    return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()


def links(page_html: str) -> list[str]:
    """Every ``src``/``href`` of a rendered page (for checks that links stay inside the folder)."""
    import re

    return re.findall(r'(?:src|href)="([^"]*)"', page_html)


__all__ = ["SORT_SCRIPT", "STATUSES", "TABLE_CSS", "Badge", "Figures", "Grid", "Notes", "Page", "Table", "Tile",
           "links", "plain_text", "relative", "render_page", "render_table", "score_badges", "write_page"]
