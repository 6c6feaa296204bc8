"""``curve.png``: each score against the step (or style strength): the mean as a line, ± one
population std as a band, every image as a dot; the recommended column is marked.

The x axis is ordinal (one slot per checkpoint, labelled with its step) so a final checkpoint with
an unknown step still has its place, last. Panels: identity (ArcFace), identity (dlib), CLIP score
(and the style CLIP score in a style sweep), memorization, and the face rate. A panel without any
value says so instead of plotting nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .table import GroupSummary, SweepRow

PANELS = (
    ("identity_arcface", "identity (ArcFace)", "cosine to reference"),
    ("identity_dlib", "identity (dlib, second opinion)", "cosine to reference"),
    ("clip_score", "prompt adherence (CLIP score)", "image-text cosine"),
    ("style_clip_score", "style (CLIP score to the style prompt)", "image-text cosine"),
    ("memorization", "memorization (best CLIP cosine to a dataset image)", "image-image cosine"),
)


def plot_curves(path, rows: Sequence[SweepRow], summaries: Sequence[GroupSummary], *, style: bool = False,
                recommended: str | None = None, x_label: str = "checkpoint step") -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not summaries:
        raise ValueError("nothing to plot: no checkpoint has a scored image")
    panels = [p for p in PANELS if style or p[0] != "style_clip_score"] + [("face_rate", "images with a face", "rate")]
    figure = Figure(figsize=(max(7.0, 0.9 * len(summaries) + 3.0), 2.4 * len(panels)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    x = np.arange(len(summaries))
    labels = [s.label for s in summaries]
    rng = np.random.default_rng(0)                 # fixed jitter: the same PNG for the same numbers
    marked = next((i for i, s in enumerate(summaries) if s.group == recommended), None)
    for ax, (key, title, unit) in zip(axes, panels):
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(unit, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        if marked is not None:
            ax.axvline(marked, color="tab:green", linewidth=1.5, alpha=0.6)
        if key == "face_rate":
            ax.plot(x, [1.0 - s.no_face_rate for s in summaries], marker="o", color="tab:gray")
            ax.set_ylim(-0.05, 1.05)
            continue
        means = [s.means[key] for s in summaries]
        if all(m is None for m in means):
            ax.text(0.5, 0.5, "no value (see the report)", transform=ax.transAxes, ha="center", va="center",
                    color="tab:gray")
            continue
        for i, s in enumerate(summaries):
            values = [getattr(r, key) for r in rows if r.group(style) == s.group and getattr(r, key) is not None]
            if values:
                ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=10, alpha=0.5, color="tab:blue")
        present = [(i, s.means[key], s.stds[key]) for i, s in enumerate(summaries) if s.means[key] is not None]
        xs, ms, sds = (np.array(v, dtype=float) for v in zip(*present))
        ax.plot(xs, ms, marker="o", color="black", linewidth=1.5, label="mean")
        ax.fill_between(xs, ms - sds, ms + sds, color="tab:blue", alpha=0.15, label="± std")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=7)
            break
    axes[-1].set_xticks(x)
    axes[-1].set_xticklabels([f"{label} ★" if i == marked else label for i, label in enumerate(labels)], fontsize=8)
    axes[-1].set_xlabel(x_label + ("  (★ recommended)" if marked is not None else ""))
    axes[-1].set_xlim(-0.5, len(summaries) - 0.5)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
