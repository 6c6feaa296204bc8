"""``report.md`` of a sweep, and the ready ablation spec for the chosen checkpoint.

The report opens with ``Recommended checkpoint: <file>`` (a style sweep: ``Recommended style
strength: <s>``) and the reason, states the rule with the δ / ε in force, then the per-checkpoint
table, the curve, the strips and how the run went.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .recommend import CLIP_ONLY, Recommendation
from .table import GroupSummary

REPORT = "report.md"
CURVE = "curve.png"
TINY_NOTICE = (
    "> **Tiny smoke-test run: these images are NOT real results.** Random-weight tiny models made them "
    "(`--tiny`), the CLIP score comes from a random-weight tiny open_clip model, and the synthetic tiny face "
    "detector only \"sees\" a face in a red test patch, so neither the scores nor the recommendation mean "
    "anything. This run only proves that discovery, generation, caching, resume, scoring and the report work "
    "end to end."
)
RULE = (
    "The rule: the earliest checkpoint whose mean identity is within δ of the best checkpoint's mean identity "
    "and whose mean CLIP score is within ε of the best mean CLIP score; if none qualifies, the checkpoint with "
    "the best mean identity; ties go to the earlier step. When no image holds a face, the earliest checkpoint "
    "whose mean CLIP score is within ε of the best. Change δ and ε with `--delta` and `--epsilon`."
)
STYLE_RULE = (
    "The rule: among the style strengths whose mean identity stays within δ of the weakest strength's "
    "(no style at strength 0), the one with the best mean style CLIP score; ties go to the weaker strength. "
    "Without faces, the best style CLIP score alone. Change δ with `--delta`."
)


@dataclass
class SweepInfo:
    """What the report says about how the numbers were made."""

    checkpoint_dir: str
    spec: str
    config: str
    reference: Sequence[str]
    clip_model: str
    identity_column: str                        # the column the rule reads
    engines: Mapping[str, str]                  # score column -> engine description or why it is empty
    tiny: bool = False
    dataset: str | None = None
    style: Mapping | None = None                # {lora, prompt, checkpoint, strengths}
    notes: Sequence[str] = field(default_factory=list)
    run_lines: Sequence[str] = field(default_factory=list)
    prompt_texts: Mapping[str, str] = field(default_factory=dict)   # prompt tag -> its text (report.html's hover)


def _num(value, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _mean_std(summary: GroupSummary, key: str) -> str:
    mean, std = summary.means[key], summary.stds[key]
    return "–" if mean is None else f"{mean:.3f} ± {std:.3f}"


def recommendation_lines(recommendation: Recommendation, info: SweepInfo) -> list[str]:
    if info.style:
        first = (f"Recommended style strength: {recommendation.label} "
                 f"(style LoRA `{info.style['lora']}` on `{info.style['checkpoint']}`)")
    else:
        first = f"Recommended checkpoint: {recommendation.name}"
    lines = [first, "", f"Why: {recommendation.reason}"]
    if recommendation.mode == CLIP_ONLY:
        lines += ["", "**No image holds a face: this recommendation is by CLIP score alone.**"]
    return lines


def write_report(out_dir, *, summaries: Sequence[GroupSummary], recommendation: Recommendation, info: SweepInfo,
                 strips: Sequence[Path], ablation_spec: Path | None) -> Path:
    out_dir = Path(out_dir)
    style = bool(info.style)
    title = "Style-LoRA strength sweep" if style else "Checkpoint sweep"
    lines = [f"# {title}: {Path(info.checkpoint_dir).name}", ""]
    if info.tiny:
        lines += [TINY_NOTICE, ""]
    lines += recommendation_lines(recommendation, info) + [""]
    lines += [(STYLE_RULE if style else RULE) + f" In force: δ = {recommendation.delta:g}"
              + ("" if style else f", ε = {recommendation.epsilon:g}") + f"; identity = `{info.identity_column}`.", ""]
    if ablation_spec is not None:
        run = f"pulid-studio ablate {ablation_spec.name} --lora-dir {info.checkpoint_dir} ..."
        lines += [f"Ready ablation spec for this choice: [`{ablation_spec.name}`]({ablation_spec.name}) (`{run}`).", ""]
    lines += _table(summaries, recommendation, style)
    lines += ["", f"![scores against the {'strength' if style else 'step'}]({CURVE})", "", "## Strips", ""]
    lines += [f"- [{p.stem}](strips/{p.name})" for p in strips]
    lines += ["", "## How the numbers were made", ""] + [f"- {line}" for line in method_lines(info)]
    if info.run_lines:
        lines += ["", "## Run", ""] + [f"- {line}" for line in info.run_lines]
    path = out_dir / REPORT
    tmp = path.with_name(f".{REPORT}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def method_lines(info: SweepInfo) -> list[str]:
    """How the numbers were made (Markdown), for ``report.md`` and ``report.html``."""
    lines = [f"Checkpoints: `{info.checkpoint_dir}`; prompts and seeds from `{info.spec}`, config `{info.config}`",
             f"Reference: {', '.join(f'`{r}`' for r in info.reference)}",
             f"CLIP score: open_clip `{info.clip_model}`, cosine of the image and prompt embeddings",
             "Memorization: " + (f"highest CLIP image-image cosine to the images of `{info.dataset}`"
                                 if info.dataset else "not measured (no `--dataset`)")]
    lines += [f"`{column}`: {text}" for column, text in info.engines.items()]
    if info.style:
        lines.append(f"Style: `{info.style['lora']}` at strengths {', '.join(map(str, info.style['strengths']))}; "
                     f"style CLIP score against {info.style['prompt']!r}; identity retention = mean identity / "
                     f"the weakest strength's")
    return lines + list(info.notes)


def _table(summaries: Sequence[GroupSummary], recommendation: Recommendation, style: bool) -> list[str]:
    first = "strength" if style else "step"
    head = [first, "checkpoint" if not style else "", "images", "no-face rate", "identity ArcFace", "identity dlib",
            "CLIP score", "memorization"]
    if style:
        head[1:2] = []
        head += ["style CLIP score", "identity retention"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    baseline = next((s.means["identity_arcface"] or s.means["identity_dlib"] for s in summaries
                     if (s.means["identity_arcface"] or s.means["identity_dlib"]) is not None), None)
    for s in summaries:
        marker = " ★" if s.group == recommendation.name else ""
        cells = [f"{s.label}{marker}"] + ([] if style else [f"`{s.group}`"])
        cells += [str(s.images), f"{100 * s.no_face_rate:.0f}%", _mean_std(s, "identity_arcface"),
                  _mean_std(s, "identity_dlib"), _mean_std(s, "clip_score"), _mean_std(s, "memorization")]
        if style:
            identity = s.means["identity_arcface"] or s.means["identity_dlib"]
            retention = identity / baseline if identity is not None and baseline else None
            cells += [_mean_std(s, "style_clip_score"), _num(retention)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Means ± population std over the images where the score exists (identity: images with a face)."]
    return lines


def ablation_spec_data(source: Mapping, *, source_path: Path, checkpoint: str, lora_node: str,
                       lora_configs: Sequence[str], reference: Sequence[str],
                       style: Mapping | None = None) -> dict:
    """The source ablation spec (parsed YAML) running the chosen checkpoint: every config in
    ``lora_configs`` gets its LoRA node's file set (a style sweep: a ``loras:`` list with the
    identity LoRA at 1.0 and the style LoRA at the chosen strength)."""
    import copy

    data = copy.deepcopy(dict(source))
    workflows_dir = (source_path.parent / str(data.get("workflows_dir", "."))).resolve()
    data["workflows_dir"] = str(workflows_dir)
    data["name"] = f"{data.get('name', source_path.stem)}_{Path(checkpoint).stem}"
    if reference:
        data["reference"] = [str(Path(r).resolve()) for r in reference]
    for config in data.get("configs") or []:
        if config.get("name") not in lora_configs:
            continue
        if style:
            config["loras"] = [{"name": checkpoint, "strength": 1.0},
                               {"name": style["lora"], "strength": float(style["strength"])}]
            continue
        overrides = config.get("overrides")
        key = f"{lora_node}.lora_name"
        if isinstance(overrides, list):
            config["overrides"] = [o for o in overrides if not str(o).startswith(key + "=")] + [f"{key}={checkpoint}"]
        else:
            config["overrides"] = {**(overrides or {}), key: checkpoint}
    return data


def write_ablation_spec(path, data: Mapping, *, header: Sequence[str]) -> Path:
    import yaml

    path = Path(path)
    text = "".join(f"# {line}\n" for line in header) + "\n" + yaml.safe_dump(dict(data), sort_keys=False,
                                                                              allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path
