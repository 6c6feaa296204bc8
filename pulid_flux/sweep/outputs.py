"""From scored rows to every output of a sweep: ``sweep.csv``, ``curve.png``, ``strips/``, ``report.md``
and ``report.html``.

:func:`write_sweep_outputs` needs only the rows (so a finished sweep can be re-reported from its
CSV); the ready ablation spec is written by the caller's ``write_spec`` callback, which knows the
source spec and the LoRA node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .curve import plot_curves
from .recommend import Recommendation, StepScores, recommend, recommend_style
from .report import CURVE, SweepInfo, write_report
from .report_html import write_report_html
from .strips import write_strips
from .table import GroupSummary, SweepRow, summarize, write_sweep_csv

SWEEP_CSV = "sweep.csv"


@dataclass
class SweepResult:
    rows: list[SweepRow]
    summaries: list[GroupSummary]
    recommendation: Recommendation
    paths: dict = field(default_factory=dict)


def step_scores(summaries: Sequence[GroupSummary], identity_column: str) -> list[StepScores]:
    return [StepScores(name=s.group, label=s.label, identity=s.means[identity_column], clip=s.means["clip_score"],
                       style_clip=s.means["style_clip_score"]) for s in summaries]


def write_sweep_outputs(out_dir, rows: Sequence[SweepRow], order: Sequence[tuple[str, str]], *, info: SweepInfo,
                        delta: float, epsilon: float,
                        write_spec: Callable[[Recommendation], Path | None] | None = None) -> SweepResult:
    """``order``: (group, label) in step (or strength) order: checkpoint file and step label, or the
    strength as text twice."""
    out_dir = Path(out_dir)
    style = bool(info.style)
    rows = list(rows)
    summaries = summarize(rows, order, style=style)
    scores = step_scores(summaries, info.identity_column)
    recommendation = (recommend_style(scores, delta=delta) if style
                      else recommend(scores, delta=delta, epsilon=epsilon))
    paths: dict = {"csv": write_sweep_csv(out_dir / SWEEP_CSV, rows, style=style)}
    paths["curve"] = plot_curves(out_dir / CURVE, rows, summaries, style=style, recommended=recommendation.name,
                                 x_label="style LoRA strength" if style else "checkpoint step")
    paths["strips"] = write_strips(out_dir, rows, summaries, identity=info.identity_column, style=style,
                                   recommended=recommendation.name)
    paths["ablation_spec"] = write_spec(recommendation) if write_spec else None
    paths["report"] = write_report(out_dir, summaries=summaries, recommendation=recommendation, info=info,
                                   strips=paths["strips"], ablation_spec=paths["ablation_spec"])
    paths["html"] = write_report_html(out_dir, rows=rows, summaries=summaries, recommendation=recommendation,
                                      info=info, strips=paths["strips"], ablation_spec=paths["ablation_spec"])
    return SweepResult(rows=rows, summaries=summaries, recommendation=recommendation, paths=paths)
