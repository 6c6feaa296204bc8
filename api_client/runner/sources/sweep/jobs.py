"""The checkpoint sweep's jobs: every checkpoint (or style strength) x prompt x seed, in cache order.

A *column* is what changes between strips: one checkpoint of the identity LoRA (``--style-lora``:
one strength of the style LoRA stacked on the chosen checkpoint). Each column is a LoRA chain
(:mod:`api_client.loras`) set on the workflow's LoRA node.

Order (what keeps ComfyUI's cache warm and loads each LoRA once): column-major. All jobs of one
column run back to back, so the LoRA loader executes once per column and every other job of the
column finds it cached; within a column the prompts go forward for even columns and backward for
odd ones ("snake"), so the last prompt of a column is the first of the next and its text encoding
is reused; seeds are innermost. Each column is one scheduling block: with several servers a server
keeps to its column, and the scheduler never sends a server back to a column it left (see
:class:`~api_client.runner.execution.scheduler.JobPool`), so each server loads each LoRA at most once.

:func:`naive_order` gives the same jobs prompt-major (every column of a prompt back to back, the
ablation's order), the baseline of ``benchmarks/sweep_order.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ....loras import LoraEntry, apply_lora_chain
from ....overrides import apply_overrides, get_input
from ...plan import Job
from ..ablation.jobs import Selection, make_job, pose_for
from ..ablation.spec import Config, Spec, SpecError, has_node


@dataclass(frozen=True)
class SweepColumn:
    group: str                      # the checkpoint (as the servers name it), or the style strength as text
    label: str                      # what strips and tables show: the step, or the strength
    folder: str                     # gallery sub-folder of its images
    checkpoint: str                 # the identity LoRA file (as the servers name it)
    step: str                       # the identity checkpoint's step label
    loras: tuple[LoraEntry, ...]
    style_lora: str | None = None
    style_strength: float | None = None


def format_strength(value: float) -> str:
    return format(float(value), "g")


def identity_columns(checkpoints: Sequence, names: Mapping[str, str], strength: float) -> list[SweepColumn]:
    """One column per checkpoint (``pulid_flux.sweep.checkpoints.Checkpoint``, in step order);
    ``names`` maps each checkpoint file to the LoRA name the servers list it under."""
    return [SweepColumn(group=names[c.file], label=c.label, folder=c.tag, checkpoint=names[c.file], step=c.label,
                        loras=(LoraEntry(names[c.file], strength),)) for c in checkpoints]


def style_columns(checkpoint, names: Mapping[str, str], identity_strength: float, style: str,
                  strengths: Sequence[float]) -> list[SweepColumn]:
    """One column per style strength, the style LoRA stacked on ``checkpoint``."""
    columns = []
    for value in strengths:
        text = format_strength(value)
        columns.append(SweepColumn(group=text, label=text, folder=f"style-{text}", checkpoint=names[checkpoint.file],
                                   step=checkpoint.label,
                                   loras=(LoraEntry(names[checkpoint.file], identity_strength),
                                          LoraEntry(style, float(value))),
                                   style_lora=style, style_strength=float(value)))
    return columns


def lora_strength(spec: Spec, config: Config, lora_node: str) -> float:
    """The strength the config's workflow gives its LoRA node (after the config's overrides)."""
    graph = apply_overrides(config.graph, config.overrides)
    value = get_input(graph, lora_node, "strength_model")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(spec.path, f"configs ({config.name})", f"{lora_node}.strength_model is {value!r}, "
                                                              "expected a number")
    return float(value)


def sweep_config(spec: Spec, name: str, lora_node: str) -> Config:
    """The spec's config that renders each column; it must have the LoRA node."""
    try:
        config = spec.config(name)
    except KeyError:
        raise SpecError(spec.path, "configs", f"no config named {name!r} (the sweep renders each checkpoint with it); "
                                              f"the spec has {', '.join(c.name for c in spec.configs)}") from None
    if not has_node(config.graph, lora_node):
        raise SpecError(spec.path, f"configs ({name})", f"its workflow {config.workflow.name} has no node "
                                                        f"{lora_node!r}; the sweep sets the checkpoint there "
                                                        "(choose it with --lora-node)")
    return config


def sweep_jobs(spec: Spec, config: Config, columns: Sequence[SweepColumn], *, lora_node: str,
               selection: Selection | None = None) -> list[Job]:
    """Every column x prompt x seed in the module docstring's order (one block per column)."""
    selection = selection or Selection()
    prompts = spec.prompts[:selection.max_prompts] if selection.max_prompts else spec.prompts
    seeds = list(selection.seeds) if selection.seeds else spec.seeds
    base = apply_overrides(config.graph, config.overrides)
    jobs: list[Job] = []
    for index, column in enumerate(columns):
        column_config = replace(config, name=column.folder, graph=apply_lora_chain(base, lora_node, column.loras),
                                overrides=(), rule=None, sweeps=())
        params = (("checkpoint", column.checkpoint),) + (
            (("style_strength", column.style_strength),) if column.style_lora else ())
        for prompt in (prompts if index % 2 == 0 else prompts[::-1]):
            pose = pose_for(prompt)
            for seed in seeds:
                job = make_job(spec, column_config, prompt, seed, (), pose, pose in spec.full_body, "as-is",
                                selection, index)
                jobs.append(replace(job, params=params, block=index, order=len(jobs)))
    return jobs


def naive_order(jobs: Sequence[Job]) -> list[Job]:
    """The same jobs prompt-major (prompt, then column, then seed), blocks by prompt."""
    ordered = sorted(jobs, key=lambda j: (j.prompt.index, j.config_rank, j.seed))
    return [replace(job, block=job.prompt.index, order=i) for i, job in enumerate(ordered)]
