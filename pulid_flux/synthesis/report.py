"""What a synthesis run reports: ``coverage.csv``, ``report.md`` and the contact sheet
(``report.html`` is :mod:`.report_html`).

The coverage table has one row per view: kept (and unverified) over tried, how many short of K, and
each rejection reason counted (the filter's verdict, also for unverified candidates). The contact
sheet shows every candidate, one row per view, framed green (kept), amber (unverified) or red
(rejected, with the reason under it).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .grounding import GroundingImage
from .keep_filter import (ENGINE_VIEW_LIMITS, IDENTITY_THRESHOLDS, KEPT, REASONS, UNVERIFIED, Candidate,
                          engine_family, view_limit)
from .views import View

COVERAGE_COLUMNS = ("view", "yaw", "pitch", "distance", "expression", "tried", "kept", "unverified", "short",
                    *REASONS)
TILE = 160
LABEL_HEIGHT = 30
STATUS_COLORS = {KEPT: (42, 157, 75), UNVERIFIED: (230, 160, 20)}
REJECTED_COLOR = (192, 57, 43)


def coverage_rows(candidates: Sequence[Candidate], views: Sequence[View], per_view: int) -> list[dict]:
    """One row per view (see the module docstring)."""
    rows = []
    for view in views:
        mine = [c for c in candidates if c.view.name == view.name]
        kept = sum(c.status == KEPT for c in mine)
        unverified = sum(c.status == UNVERIFIED for c in mine)
        rows.append({"view": view.name, "yaw": view.yaw, "pitch": view.pitch, "distance": view.distance,
                     "expression": view.expression, "tried": len(mine), "kept": kept, "unverified": unverified,
                     "short": max(0, per_view - kept - unverified),
                     **{r: sum(c.filter_reason == r for c in mine) for r in REASONS}})
    return rows


def write_coverage_csv(path, rows: Sequence[dict]) -> Path:
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COVERAGE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in COVERAGE_COLUMNS})
    return path


def verdict(candidate: Candidate) -> str:
    """What a tile says of a candidate: kept, unverified (with the filter's own reason), or why it
    was rejected."""
    label = candidate.status if candidate.status in (KEPT, UNVERIFIED) else (candidate.reason or "rejected")
    if candidate.status == UNVERIFIED and candidate.filter_reason:
        label += f" ({candidate.filter_reason})"
    return label


def _tile(candidate: Candidate) -> np.ndarray:
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (TILE, TILE + LABEL_HEIGHT), (245, 245, 245))
    if candidate.thumbnail is not None:
        thumb = Image.fromarray(candidate.thumbnail)
        thumb.thumbnail((TILE - 8, TILE - 8))
        canvas.paste(thumb, ((TILE - thumb.width) // 2, (TILE - thumb.height) // 2))
    color = STATUS_COLORS.get(candidate.status, REJECTED_COLOR)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([1, 1, TILE - 2, TILE - 2], outline=color, width=4)
    label = verdict(candidate)
    sim = "" if candidate.similarity is None else f" {candidate.similarity:.2f}"
    draw.text((4, TILE + 2), f"s{candidate.seed} {label}{sim}", fill=color)
    if candidate.pose is not None:
        draw.text((4, TILE + 15), f"yaw {candidate.pose.yaw:+.0f} pitch {candidate.pose.pitch:+.0f}", fill=(60, 60, 60))
    return np.asarray(canvas)


def write_contact_sheet(path, candidates: Sequence[Candidate], views: Sequence[View]) -> Path:
    """One row per view: its name, then every candidate's tile."""
    from PIL import Image, ImageDraw

    name_width = 190
    columns = max([sum(c.view.name == v.name for c in candidates) for v in views] + [1])
    row_height = TILE + LABEL_HEIGHT
    sheet = Image.new("RGB", (name_width + columns * TILE, max(1, len(views)) * row_height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, view in enumerate(views):
        y = r * row_height
        draw.text((6, y + 8), view.name, fill=(0, 0, 0))
        draw.text((6, y + 24), f"yaw {view.yaw:+.0f} pitch {view.pitch:+.0f}", fill=(80, 80, 80))
        draw.text((6, y + 40), view.distance, fill=(80, 80, 80))
        mine = sorted((c for c in candidates if c.view.name == view.name), key=lambda c: c.seed)
        for col, candidate in enumerate(mine):
            sheet.paste(Image.fromarray(_tile(candidate)), (name_width + col * TILE, y))
    path = Path(path)
    sheet.save(path, quality=88)
    return path


def _table(headers: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return lines


def engine_notes(engine_name: str, views: Sequence[View]) -> list[str]:
    """Which of the plan's views this engine can verify, and the thresholds it uses."""
    limit = view_limit(engine_name)
    beyond = [v.name for v in views if abs(v.yaw) > limit]
    family = engine_family(engine_name)
    thresholds = IDENTITY_THRESHOLDS.get(family, {})
    lines = [f"Face engine: **{engine_name}**. Its detector finds faces up to about {limit:.0f} degrees of yaw "
             f"(dlib HOG {ENGINE_VIEW_LIMITS['dlib:hog']:.0f}, dlib CNN {ENGINE_VIEW_LIMITS['dlib:cnn']:.0f}, "
             f"insightface {ENGINE_VIEW_LIMITS['insightface']:.0f})."]
    if beyond:
        lines.append(f"Views it cannot verify (rejected as `unverifiable`; use `--engine insightface` for them): "
                     f"{', '.join(beyond)}.")
    if thresholds:
        lines.append("Identity thresholds (cosine similarity to the portrait): "
                     + ", ".join(f"{band} {value:.2f}" for band, value in thresholds.items())
                     + " (lower for turned heads, where recognizers are weak).")
    return lines


def summary_line(trigger: str, views: Sequence[View], candidates: Sequence[Candidate], per_view: int) -> str:
    """The run in one line (Markdown): views, candidates, kept and unverified."""
    kept = sum(c.status == KEPT for c in candidates)
    unverified = sum(c.status == UNVERIFIED for c in candidates)
    return (f"Trigger: `{trigger}`. {len(views)} view(s), {len(candidates)} candidate(s), at most K = {per_view} per "
            f"view: **{kept} kept**" + (f", **{unverified} unverified**" if unverified else "") + ".")


def write_report_md(path, *, title: str, trigger: str, engine_name: str, views: Sequence[View],
                    candidates: Sequence[Candidate], rows: Sequence[dict], per_view: int, verified: bool,
                    grounding: Sequence[GroundingImage] = (), files: dict | None = None,
                    notes: Sequence[str] = ()) -> Path:
    lines = [f"# {title}", "", summary_line(trigger, views, candidates, per_view)]
    if not verified:
        lines += ["", "**Unverified run (`--tiny`)**: the images come from random-weight models and show no "
                      "faces. The filter ran on every candidate and its decisions are in the table below (column "
                      "per reason); the first K candidates of each view were written anyway, marked "
                      "`unverified`. Nothing here passed the identity or pose check."]
    lines += ["", *engine_notes(engine_name, views), ""]
    lines += list(notes) + ([""] if notes else [])
    lines += ["## Coverage (view: kept / tried)", ""]
    table_rows = []
    for row in rows:
        reasons = ", ".join(f"{r} {row[r]}" for r in REASONS if row[r]) or "-"
        got = f"{row['kept']}" + (f" (+{row['unverified']} unverified)" if row["unverified"] else "")
        table_rows.append([row["view"], f"{row['yaw']:+.0f}", f"{row['pitch']:+.0f}", row["distance"],
                           f"{got} / {row['tried']}", row["short"] or "", reasons])
    lines += _table(["view", "yaw", "pitch", "distance", "kept / tried", "short of K", "filter rejections"], table_rows)
    short = [r["view"] for r in rows if r["short"]]
    lines += ["", f"Views short of K = {per_view}: {', '.join(short)}." if short else f"Every view has K = {per_view}."]
    if grounding:
        dropped = [g for g in grounding if g.status != KEPT]
        scored = [g.similarity for g in grounding if g.similarity is not None]
        lines += ["", "## Grounding images", "",
                  f"{len(grounding) - len(dropped)} of {len(grounding)} grounding images written to `reg/` (base model, "
                  "no LoRA, no PuLID; captions without the trigger). None of them scores as the subject: "
                  + (f"the highest similarity to the portrait is {max(scored):.3f} (threshold "
                     f"{grounding[0].threshold:.2f})" if scored else "no face was found in any of them")
                  + (f"; {len(dropped)} look-alike(s) dropped." if dropped else ".")]
    if files:
        lines += ["", "## Files", ""] + [f"- `{name}`: {what}" for name, what in files.items()]
    examples = [c for c in candidates if c.status in (KEPT, UNVERIFIED) and c.extra.get("caption")][:3]
    if examples:
        lines += ["", "## Caption examples", ""] + [f"- `{c.extra['output']}`: {c.extra['caption']}" for c in examples]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
