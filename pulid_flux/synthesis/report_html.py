"""``report.html`` of a synthesis run: ``report.md``'s content as a page, with every candidate.

The page holds the summary and the engine's limits, the coverage table (sortable), the candidates
one row per view (green kept, red rejected with the reason, grey unverified; similarity and
estimated head pose on each tile, the caption on hover), the grounding images and every decision as
a sortable table. Images are linked where they lie in the output folder (see
:mod:`pulid_flux.htmlreport`); a candidate whose file is gone shows its badges without a picture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..htmlreport import Badge, Figures, Grid, Notes, Page, Table, Tile, plain_text, write_page
from .grounding import GroundingImage
from .keep_filter import KEPT, REASONS, UNVERIFIED, Candidate
from .report import verdict
from .views import View

REPORT_HTML = "report.html"
UNVERIFIED_NOTICE = ("Unverified run (--tiny): the images come from random-weight models and show no faces. The "
                     "filter ran on every candidate and its decisions are below; the first K candidates of each view "
                     "were written anyway, marked unverified. Nothing here passed the identity or pose check.")


def _image(out: Path, relative: str | None) -> str | None:
    return relative if relative and (out / relative).is_file() else None


def _status(status: str | None) -> str:
    return "pass" if status == KEPT else "neutral" if status == UNVERIFIED else "fail"


def candidate_tile(out: Path, c: Candidate) -> Tile:
    badges = [Badge(verdict(c), _status(c.status))]
    if c.similarity is not None:
        badges.append(Badge(f"id {c.similarity:.2f}"))
    if c.pose is not None:
        badges.append(Badge(f"yaw {c.pose.yaw:+.0f} pitch {c.pose.pitch:+.0f}"))
    hover = "\n".join(x for x in (f"{c.view.name}, seed {c.seed}", c.extra.get("caption", ""), c.detail) if x)
    return Tile(image=_image(out, c.path), badges=badges, status=_status(c.status), caption=f"seed {c.seed}",
                hover=hover)


def candidates_grid(out: Path, views: Sequence[View], candidates: Sequence[Candidate]) -> Grid:
    cells, hover = {}, {}
    for view in views:
        hover[view.name] = f"yaw {view.yaw:+.0f}, pitch {view.pitch:+.0f}, {view.distance}, {view.expression}"
        mine = sorted((c for c in candidates if c.view.name == view.name), key=lambda c: c.seed)
        cells[(view.name, "candidates")] = [candidate_tile(out, c) for c in mine]
    return Grid("Candidates", [v.name for v in views], ["candidates"], cells, row_hover=hover,
                note="One row per view (hover for its angles): green kept, grey unverified, red rejected with the "
                     "filter's reason; the caption is on hover.")


def coverage_table(rows: Sequence[Mapping], per_view: int) -> Table:
    columns = ["view", "yaw", "pitch", "distance", "expression", "tried", "kept", "unverified", "short of K",
               *REASONS]
    body = [[r["view"], r["yaw"], r["pitch"], r["distance"], r["expression"], r["tried"], r["kept"], r["unverified"],
             r["short"], *(r[reason] for reason in REASONS)] for r in rows]
    return Table("Coverage", columns, body, digits=0,
                 note=f"Per view: candidates tried, kept, short of K = {per_view}, and each rejection reason counted. "
                      "Click a heading to sort.")


def decisions_table(candidates: Sequence[Candidate]) -> Table:
    columns = ["view", "seed", "status", "reason", "similarity", "threshold", "yaw", "pitch", "faces", "file",
               "caption"]
    body = [[c.view.name, c.seed, c.status or "", c.reason or c.filter_reason or "", c.similarity, c.threshold,
             c.pose.yaw if c.pose else None, c.pose.pitch if c.pose else None, c.faces,
             c.extra.get("output") or c.path or "", c.extra.get("caption", "")] for c in candidates]
    return Table("Every candidate", columns, body, decimals={"yaw": 0, "pitch": 0, "seed": 0, "faces": 0},
                 note="Empty similarity: no face found. Click a heading to sort.")


def grounding_figures(out: Path, grounding: Sequence[GroundingImage]) -> Grid:
    tiles = []
    for g in grounding:
        badges = [Badge("written to reg/" if g.output else (g.status or "dropped"), "pass" if g.output else "fail")]
        badges.append(Badge("no face", "noface") if g.similarity is None else Badge(f"id {g.similarity:.2f}"))
        tiles.append(Tile(image=_image(out, g.output) or _image(out, g.path), badges=badges,
                          status="pass" if g.output else "fail", caption=g.name, hover=g.caption or g.prompt))
    return Grid("Grounding images", [""], ["base model, no LoRA, no PuLID"], {("", "base model, no LoRA, no PuLID"): tiles},
                note="Other people for the regularization set (captions without the trigger); none may score as "
                     "the subject: a look-alike is dropped.")


def write_report_html(path, *, title: str, summary: str, verified: bool, engine_lines: Sequence[str],
                      views: Sequence[View], candidates: Sequence[Candidate], rows: Sequence[Mapping], per_view: int,
                      grounding: Sequence[GroundingImage] = (), files: Mapping[str, str] | None = None,
                      notes: Sequence[str] = ()) -> Path:
    """Write ``path`` (``OUT/report.html``); ``files``: {name in OUT: what it holds}, linked when they exist."""
    path = Path(path)
    out = path.parent
    facts = [plain_text(summary), *(plain_text(line) for line in engine_lines), *notes]
    facts += [(f"{name}: {what}", name) if (out / name.rstrip("/")).is_file() else f"{name}: {what}"
              for name, what in (files or {}).items()]
    facts.append(("Markdown report (report.md)", "report.md"))
    page = Page(title, notices=[] if verified else [UNVERIFIED_NOTICE],
                parts=[Notes("", facts), coverage_table(rows, per_view), candidates_grid(out, views, candidates)])
    if grounding:
        page.parts.append(grounding_figures(out, grounding))
    if (out / "contact_sheet.jpg").is_file():
        page.parts.append(Figures("Contact sheet", [("contact_sheet.jpg", "every candidate with its decision")]))
    page.parts.append(decisions_table(candidates))
    return write_page(path, page)
