"""``report.html`` of a sweep: ``report.md``'s content as a page, with every image.

The page opens with the recommendation and its rule, then the per-checkpoint (or per-strength)
table, sortable; the curve; the grid of every image (rows: prompt and seed, columns: checkpoints in
step order, the chosen one marked), each tile carrying its identity and CLIP score (orange when no
face was found; the prompt's text on hover); the strips; every image's row; how the numbers were
made. Everything it links lies inside the sweep folder (see :mod:`pulid_flux.htmlreport`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..htmlreport import Badge, Figures, Grid, Notes, Page, Table, Tile, plain_text, write_page
from .recommend import Recommendation
from .report import (
    CURVE,
    REPORT,
    RULE,
    STYLE_RULE,
    TINY_NOTICE,
    SweepInfo,
    method_lines,
    recommendation_lines,
)
from .table import GroupSummary, SweepRow, column_headers

REPORT_HTML = "report.html"
_SCORES = (("identity ArcFace", "identity_arcface"), ("identity dlib", "identity_dlib"),
           ("CLIP score", "clip_score"), ("memorization", "memorization"))



def summary_table(summaries: Sequence[GroupSummary], recommendation: Recommendation, *, style: bool) -> Table:
    """One row per checkpoint (strength): counts, and each score's mean with its std beside it."""
    headers = column_headers(summaries, recommendation.name)
    columns = ["strength" if style else "step"] + ([] if style else ["checkpoint"]) + ["images", "no-face rate"]
    scores = list(_SCORES) + ([("style CLIP score", "style_clip_score")] if style else [])
    columns += [name for name, _ in scores]
    rows = []
    for order, s in enumerate(summaries):
        # The label sorts in step order, not as text ("final" last, "250" before "1000"); a score
        # shows mean ± std and sorts by the mean.
        row = [(headers[s.group], order)] + ([] if style else [s.group]) + [s.images, s.no_face_rate]
        row += [None if s.means[key] is None else (f"{s.means[key]:.3f} ± {s.stds[key]:.3f}", s.means[key])
                for _, key in scores]
        rows.append(row)
    note = ("Mean ± population std over the images where the score exists (identity: images with a face). "
            "Click a heading to sort.")
    return Table("Per strength" if style else "Per checkpoint", columns, rows, note=note,
                 percent=frozenset({"no-face rate"}))


def _tile(row: SweepRow, identity: str, hover: str, style: bool) -> Tile:
    value = getattr(row, identity)
    badges = [Badge(f"id {value:.3f}") if value is not None else Badge("no face", "noface")]
    if row.clip_score is not None:
        badges.append(Badge(f"clip {row.clip_score:.3f}"))
    if style and row.style_clip_score is not None:
        badges.append(Badge(f"style {row.style_clip_score:.3f}"))
    return Tile(image=row.file, badges=badges, status="neutral" if value is not None else "noface",
                caption=Path(row.file).stem, hover=hover)


def image_grid(rows: Sequence[SweepRow], summaries: Sequence[GroupSummary], recommendation: Recommendation, *,
               identity: str, style: bool, texts) -> Grid:
    headers = column_headers(summaries, recommendation.name)
    row_names, cells, row_hover = [], {}, {}
    for row in sorted(rows, key=lambda r: (list(dict.fromkeys(x.prompt for x in rows)).index(r.prompt), r.seed)):
        if row.group(style) not in headers:
            continue
        name = f"{row.prompt} · seed {row.seed}"
        if name not in row_names:
            row_names.append(name)
        text = texts.get(row.prompt, row.prompt)
        row_hover[name] = text
        cells.setdefault((name, headers[row.group(style)]), []).append(
            _tile(row, identity, f"{text}\n{row.file}", style))
    what = "style strengths" if style else "checkpoints in step order"
    return Grid("Images", row_names, [headers[s.group] for s in summaries], cells, row_hover=row_hover,
                note=f"Rows are prompt and seed (hover for the prompt's text), columns the {what}; every image "
                     "carries its identity and CLIP score, orange when no face was found.")


def rows_table(rows: Sequence[SweepRow], *, style: bool) -> Table:
    columns = ["step", "checkpoint", "prompt", "seed", "file"] + [name for name, _ in _SCORES]
    columns += ["style strength", "style CLIP score"] if style else []
    body = []
    for r in rows:
        line = [r.step, r.checkpoint, r.prompt, r.seed, r.file] + [getattr(r, key) for _, key in _SCORES]
        body.append(line + ([r.style_strength, r.style_clip_score] if style else []))
    return Table("Every image", columns, body, note="Empty identity: no face found. Click a heading to sort.")


def write_report_html(out_dir, *, rows: Sequence[SweepRow], summaries: Sequence[GroupSummary],
                      recommendation: Recommendation, info: SweepInfo, strips: Sequence[Path],
                      ablation_spec: Path | None) -> Path:
    """Write ``out_dir/report.html`` (the files it shows are the sweep's own, inside ``out_dir``)."""
    out_dir = Path(out_dir)
    style = bool(info.style)
    title = "Style-LoRA strength sweep" if style else "Checkpoint sweep"
    top = [plain_text(line) for line in recommendation_lines(recommendation, info) if line]
    top.append(plain_text(STYLE_RULE if style else RULE) + f" In force: δ = {recommendation.delta:g}"
               + ("" if style else f", ε = {recommendation.epsilon:g}") + f"; identity = {info.identity_column}.")
    if ablation_spec is not None:
        top.append((f"Ready ablation spec for this choice: {ablation_spec.name}", ablation_spec.name))
    top += [("Markdown report (report.md)", REPORT), ("sweep.csv", "sweep.csv")]
    page = Page(f"{title}: {Path(info.checkpoint_dir).name}", notices=[plain_text(TINY_NOTICE)] if info.tiny else [],
                parts=[Notes("Recommendation", top), summary_table(summaries, recommendation, style=style)])
    if (out_dir / CURVE).is_file():
        page.parts.append(Figures("Curve", [(CURVE, f"Scores against the {'strength' if style else 'step'}")]))
    page.parts.append(image_grid(rows, summaries, recommendation, identity=info.identity_column, style=style,
                                 texts=info.prompt_texts))
    if strips:
        page.parts.append(Figures("Strips", [(f"strips/{p.name}", p.stem) for p in strips],
                                  note="One strip per prompt: the same seeds at every column, side by side."))
    page.parts.append(rows_table(rows, style=style))
    page.parts.append(Notes("How the numbers were made", [plain_text(line) for line in method_lines(info)]))
    if info.run_lines:
        page.parts.append(Notes("Run", list(info.run_lines)))
    return write_page(out_dir / REPORT_HTML, page)
