"""Summary plot (matplotlib, Agg canvas, no pyplot state): per config, a box and the individual
similarities as a strip, the pass threshold as a dashed line, and each config's no-face and pass
rates written under its name. One panel per engine (their scales differ)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_similarities(path, configs: Sequence[str], similarities: dict[str, dict[str, list[float | None]]],
                      summaries: dict[str, dict[str, dict]], engines: Sequence[str], models: dict[str, str]) -> Path:
    """Write the plot to ``path`` (PNG).

    ``similarities[config][engine]`` holds every image's value (None = no face);
    ``summaries[config][engine]`` the matching summary (for the rates and threshold).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    configs = list(configs)
    if not configs or not engines:
        raise ValueError("nothing to plot: no config or no engine")
    width = max(6.0, 1.3 * len(configs) + 2.0)
    figure = Figure(figsize=(width, 3.8 * len(engines)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(engines), 1, squeeze=False)[:, 0]
    # A fixed seed keeps the strip jitter (and so the PNG) identical between runs.
    rng = np.random.default_rng(0)
    for ax, key in zip(axes, engines):
        positions = np.arange(1, len(configs) + 1)
        values = [np.array([v for v in similarities[c][key] if v is not None], dtype=float) for c in configs]
        present = [(p, v) for p, v in zip(positions, values) if v.size]
        if present:
            ax.boxplot([v for _, v in present], positions=[p for p, _ in present], widths=0.5,
                       showfliers=False, medianprops={"color": "black"})
            for p, v in present:
                ax.scatter(p + rng.uniform(-0.18, 0.18, v.size), v, s=14, alpha=0.75, color="tab:blue", zorder=3)
        threshold = summaries[configs[0]][key]["threshold"]
        ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1.2, label=f"threshold {threshold:g}")
        labels = []
        for c in configs:
            s = summaries[c][key]
            labels.append(f"{c}\nno face {s['no_face_rate']:.0%} · pass {s['pass_rate']:.0%}")
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_xlim(0.4, len(configs) + 0.6)
        ax.set_ylabel("cosine similarity")
        ax.set_title(f"{key} ({models.get(key, key)}): similarity to the reference", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
