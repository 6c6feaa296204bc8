"""``sweep.csv``: one row per image, and each checkpoint's (or style strength's) summary.

Columns: ``step`` (the checkpoint's step, or ``final``), ``checkpoint`` (its file name), ``prompt``
(the prompt's tag), ``seed``, ``file`` (relative to the sweep folder), ``identity_arcface`` and
``identity_dlib`` (cosine similarity of the best face to the reference centroid; empty without a
face), ``clip_score`` (image vs. its prompt), ``memorization`` (best CLIP cosine to a dataset
image; empty without ``--dataset``) and ``face_found`` (1/0, by the identity engine the rule
uses). A style sweep adds ``style_lora``, ``style_strength`` and ``style_clip_score`` (image vs.
the style prompt).

A summary takes each score's mean and population std over the rows where it is present, and
the no-face rate over all rows; values are read back from the CSV exactly as they were written.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

COLUMNS = ("step", "checkpoint", "prompt", "seed", "file", "identity_arcface", "identity_dlib", "clip_score",
           "memorization", "face_found")
STYLE_COLUMNS = ("style_lora", "style_strength", "style_clip_score")
SCORES = ("identity_arcface", "identity_dlib", "clip_score", "memorization", "style_clip_score")


@dataclass(frozen=True)
class SweepRow:
    step: str
    checkpoint: str
    prompt: str
    seed: int
    file: str
    identity_arcface: float | None = None
    identity_dlib: float | None = None
    clip_score: float | None = None
    memorization: float | None = None
    face_found: bool = False
    style_lora: str | None = None
    style_strength: float | None = None
    style_clip_score: float | None = None

    def group(self, style: bool) -> str:
        """The column this row belongs to: its checkpoint, or its style strength."""
        return format_strength(self.style_strength) if style else self.checkpoint


def format_strength(value: float | None) -> str:
    return "-" if value is None else format(float(value), "g")


def _cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    return value


def write_sweep_csv(path, rows: Iterable[SweepRow], *, style: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = COLUMNS + (STYLE_COLUMNS if style else ())
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(getattr(row, c)) for c in columns])
    tmp.replace(path)
    return path


def read_sweep_csv(path) -> tuple[list[SweepRow], bool]:
    """(rows, is a style sweep) of a ``sweep.csv``."""
    types = {f.name: f.type for f in fields(SweepRow)}
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: not a sweep.csv (missing columns {', '.join(missing)})")
        style = all(c in reader.fieldnames for c in STYLE_COLUMNS)
        for record in reader:
            values = {}
            for name, text in record.items():
                if name not in types:
                    continue
                kind = types[name]
                if text in ("", None):
                    values[name] = False if name == "face_found" else None
                elif name == "face_found":
                    values[name] = text == "1"
                elif name == "seed":
                    values[name] = int(text)
                elif "float" in str(kind):
                    values[name] = float(text)
                else:
                    values[name] = text
            rows.append(SweepRow(**values))
    return rows, style


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


@dataclass(frozen=True)
class GroupSummary:
    group: str                      # checkpoint file, or the style strength as text
    label: str                      # what tables and strips show (the step, or the strength)
    images: int
    faces: int
    means: dict                     # score -> mean over the rows where present (None if none)
    stds: dict

    @property
    def no_face_rate(self) -> float:
        return 1.0 - self.faces / self.images if self.images else 1.0


def column_headers(summaries: Sequence[GroupSummary], recommended: str | None) -> dict[str, str]:
    """{group: the column's heading}: its label, the recommended one marked "(chosen)" (PIL's
    default font, which draws the strips, has no star)."""
    return {s.group: (f"{s.label} (chosen)" if s.group == recommended else s.label) for s in summaries}


def summarize(rows: Sequence[SweepRow], order: Sequence[tuple[str, str]], *, style: bool = False) -> list[GroupSummary]:
    """One summary per (group, label) of ``order`` that has rows, in that order."""
    result = []
    for group, label in order:
        mine = [r for r in rows if r.group(style) == group]
        if not mine:
            continue
        means, stds = {}, {}
        for score in SCORES:
            means[score], stds[score] = _mean_std([getattr(r, score) for r in mine if getattr(r, score) is not None])
        result.append(GroupSummary(group=group, label=label, images=len(mine), faces=sum(r.face_found for r in mine),
                                   means=means, stds=stds))
    return result
