"""Reading a finished sweep back (what the "Load checkpoint sweep" node shows in the canvas).

A sweep folder (``pulid-studio sweep ... --out DIR``) holds ``report.md``, ``curve.png`` and
``strips/<tag>.png``. The strips come in the order the report lists them (prompt order).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PulidError
from ..images import load_rgb
from .report import CURVE, REPORT
from .strips import STRIPS_DIR

_STRIP_LINK = re.compile(r"\]\(strips/([^)]+\.png)\)")


class SweepResultError(PulidError):
    """The folder is not a finished sweep."""


@dataclass
class SweepView:
    folder: Path
    recommendation: str                 # "Recommended checkpoint: <file>" (or style strength) + why
    report: str                         # the whole report.md
    strips: list[tuple[str, np.ndarray]]  # (prompt tag, RGB uint8)
    curve: np.ndarray | None


def load_sweep_result(folder) -> SweepView:
    folder = Path(folder)
    report_path = folder / REPORT
    if not report_path.is_file():
        raise SweepResultError(f"{folder}: no {REPORT} here; pass the --out folder of a finished "
                               "`pulid-studio sweep` run")
    report = report_path.read_text(encoding="utf-8")
    lines = report.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("Recommended ")), None)
    if first is None:
        raise SweepResultError(f"{report_path}: no 'Recommended ...' line; is it a sweep report?")
    why = next((line for line in lines[first + 1:] if line.startswith("Why: ")), "")
    names = _STRIP_LINK.findall(report)
    listed = [folder / STRIPS_DIR / name for name in names]
    others = sorted(p for p in (folder / STRIPS_DIR).glob("*.png") if p not in listed) \
        if (folder / STRIPS_DIR).is_dir() else []
    strips = [(p.stem, load_rgb(p)) for p in listed + others if p.is_file()]
    curve = load_rgb(folder / CURVE) if (folder / CURVE).is_file() else None
    return SweepView(folder=folder, recommendation="\n".join(filter(None, [lines[first], why])), report=report,
                     strips=strips, curve=curve)


def pad_to_batch(images: list[np.ndarray], fill: int = 24) -> np.ndarray:
    """(N, H, W, 3) with every image top-left on a canvas of the largest height and width."""
    if not images:
        raise ValueError("no image to batch")
    height = max(im.shape[0] for im in images)
    width = max(im.shape[1] for im in images)
    batch = np.full((len(images), height, width, 3), fill, dtype=np.uint8)
    for i, im in enumerate(images):
        batch[i, :im.shape[0], :im.shape[1]] = im[..., :3]
    return batch
