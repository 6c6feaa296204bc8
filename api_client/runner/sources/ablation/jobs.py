"""The ablation spec's jobs: one image each (config x prompt x seed x sweep variant), their file names
and order.

The job id (:func:`..plan.job_id_for`) hashes everything that decides the image: the config name,
the prompt (index, tag, text), the seed, the swept parameters and the final API prompt (workflow
content after every override, without titles and without the output file prefix). Re-running a
spec therefore finds its finished jobs again, and any change to a workflow, override or prompt
makes new jobs.

Order (what keeps ComfyUI's cache warm): prompts first (every config of a prompt reuses that
prompt's text encoding), then the configs in a chain where each shares the most graph with the
previous one (same model / LoRA / identity branch back to back), then sweep variants and seeds.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ....loras import apply_lora_chain
from ....overrides import Override, apply_overrides, resolve_node, set_input
from ...plan import GALLERY, Job, Prompt, job_id_for
from .spec import Config, Param, Spec, SpecError, has_node

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """Which part of a spec to run (the command line's filters and additions)."""

    max_prompts: int | None = None
    seeds: tuple[int, ...] | None = None
    configs: tuple[str, ...] | None = None
    sweeps: tuple[str, ...] = ()            # enable these (named) sweeps even if disabled in the spec
    no_sweeps: bool = False
    overrides: tuple[Override, ...] = ()    # applied to every config, after everything else
    tiny: bool = False
    reference_image: str | None = None      # LoadImage value of the uploaded reference
    face_region: str | None = None          # Encode identity's face_region value for that reference


def format_value(value: Any) -> str:
    """A parameter value as a file-name token (0.4 -> '0.4', True -> '1', 'dpmpp_2m' -> 'dpmpp-2m')."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, int):
        return str(value)
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(value)).strip("-") or "x"


def file_name(prompt: Prompt, seed: int, variant: Sequence[tuple[Param, Any]] = ()) -> str:
    """``<NN>_<tag>_s<seed>[_<alias><value>...].png``."""
    parts = [f"{prompt.index:02d}", prompt.tag, f"s{seed}"]
    parts += [f"{param.alias}{format_value(value)}" for param, value in variant]
    return "_".join(parts) + ".png"


Variant = tuple  # of (Param, value) pairs


def sweep_variants(config: Config, selection: Selection) -> list[Variant]:
    """The (param, value) assignments of a config's enabled sweeps (cartesian product or zip within
    a sweep, union over sweeps); [()] when no sweep is enabled."""
    if selection.no_sweeps:
        return [()]
    variants: list[Variant] = []
    for sweep in config.sweeps:
        if not (sweep.enabled or sweep.name in selection.sweeps):
            continue
        columns = [[(p, v) for v in p.values] for p in sweep.params]
        combos = zip(*columns) if sweep.mode == "zip" else itertools.product(*columns)
        for combo in combos:
            if combo not in variants:
                variants.append(tuple(combo))
    return variants or [()]


def bypass_nodes(graph: Mapping[str, Any], bypass: Mapping[str, Mapping[int, str]]) -> dict:
    """A copy of ``graph`` without the ``bypass`` nodes: each consumer of output slot k of a
    bypassed node is linked to what fed that node's input ``bypass[node][k]``; nodes that only
    fed the removed ones are removed too."""
    result = copy.deepcopy(dict(graph))
    consumers_before = _consumer_counts(result)
    for node_ref, slots in bypass.items():
        node_id = resolve_node(result, node_ref)
        inputs = result[node_id].get("inputs") or {}
        for other_id, other in result.items():
            for name, value in (other.get("inputs") or {}).items():
                if _is_link(value) and value[0] == node_id:
                    slot = int(value[1])
                    if slot not in slots:
                        raise SpecError("(rule)", f"bypass[{node_ref!r}]",
                                        f"node {other_id} input {name!r} uses output {slot}, which has no "
                                        f"pass-through input; map it in bypass")
                    other["inputs"][name] = copy.deepcopy(inputs[slots[slot]])
        del result[node_id]
    # Drop nodes that fed something before and now feed nothing (the bypassed node's private inputs).
    while True:
        counts = _consumer_counts(result)
        orphans = [n for n in result if consumers_before.get(n, 0) and not counts.get(n, 0)]
        if not orphans:
            return result
        for node_id in orphans:
            del result[node_id]


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _consumer_counts(graph: Mapping[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph.values():
        for value in (node.get("inputs") or {}).values():
            if _is_link(value):
                counts[value[0]] = counts.get(value[0], 0) + 1
    return counts


def node_signatures(graph: Mapping[str, Any]) -> set[str]:
    """Each node's content hash including everything upstream of it (what ComfyUI's cache keys on)."""
    memo: dict[str, str] = {}

    def signature(node_id: str, trail: tuple = ()) -> str:
        if node_id in memo:
            return memo[node_id]
        node = graph.get(node_id)
        if node is None or node_id in trail:
            return f"missing:{node_id}"
        inputs = {}
        for name, value in sorted((node.get("inputs") or {}).items()):
            inputs[name] = ["link", signature(value[0], trail + (node_id,)), value[1]] if _is_link(value) else value
        text = json.dumps([node.get("class_type"), inputs], sort_keys=True, default=str)
        memo[node_id] = hashlib.sha256(text.encode()).hexdigest()
        return memo[node_id]

    return {signature(str(n)) for n in graph}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / max(1, len(a | b))


def config_chain(configs: Sequence[Config]) -> list[str]:
    """Config names ordered so that each shares the most cacheable graph (same nodes with the same
    upstream) with the previous one (Jaccard similarity; spec order breaks ties), starting with the
    first config of the spec."""
    if not configs:
        return []
    signatures = {c.name: node_signatures(c.graph) for c in configs}
    remaining = [c.name for c in configs]
    chain = [remaining.pop(0)]
    while remaining:
        best = max(remaining, key=lambda name: (_jaccard(signatures[chain[-1]], signatures[name]),
                                                -remaining.index(name)))
        remaining.remove(best)
        chain.append(best)
    return chain


def pose_for(prompt: Prompt) -> str:
    from pulid_flux.pose.composition import choose_composition

    return choose_composition(prompt.text, prompt.composition)


def expand_jobs(spec: Spec, selection: Selection = Selection()) -> list[Job]:
    """Every job of ``spec`` under ``selection``, in run order (see the module docstring)."""
    configs = spec.configs
    if selection.configs is not None:
        known = {c.name for c in configs}
        unknown = [c for c in selection.configs if c not in known]
        if unknown:
            raise SpecError(spec.path, "configs", f"no config named {unknown[0]!r}; the spec has {', '.join(sorted(known))}")
        configs = [c for c in configs if c.name in selection.configs]
    known_sweeps = set(spec.sweep_names)
    for name in selection.sweeps:
        if name not in known_sweeps:
            raise SpecError(spec.path, "sweeps", f"no sweep named {name!r}; the spec defines "
                                                 f"{', '.join(sorted(known_sweeps)) or 'none'}")
    prompts = spec.prompts[:selection.max_prompts] if selection.max_prompts else spec.prompts
    seeds = list(selection.seeds) if selection.seeds else spec.seeds
    rank = {name: i for i, name in enumerate(config_chain(configs))}
    jobs: list[Job] = []
    for prompt in prompts:
        pose = pose_for(prompt)
        full_body = pose in spec.full_body
        for config in sorted(configs, key=lambda c: rank[c.name]):
            rule = "as-is"
            if config.rule is not None and pose not in config.rule.only_for:
                if config.rule.otherwise == "skip":
                    log.debug("%s skipped for prompt %s (%s)", config.name, prompt.tag, pose)
                    continue
                rule = config.rule.otherwise
            seen_variants = []
            kept = set(bypass_nodes(config.graph, config.rule.bypass)) if rule == "bypass" else None
            for variant in sweep_variants(config, selection):
                if kept is not None:
                    # A swept input of a bypassed (or thereby removed) node changes nothing: drop it,
                    # and the repeats that leaves.
                    variant = tuple((p, v) for p, v in variant if resolve_node(config.graph, p.target.node) in kept)
                if variant in seen_variants:
                    continue
                seen_variants.append(variant)
                for seed in seeds:
                    jobs.append(make_job(spec, config, prompt, seed, variant, pose, full_body, rule, selection,
                                          rank[config.name]))
    jobs = [_with_order(job, i) for i, job in enumerate(jobs)]
    _check_unique(spec, jobs)
    return jobs


def make_job(spec: Spec, config: Config, prompt: Prompt, seed: int, variant, pose: str, full_body: bool, rule: str,
              selection: Selection, config_rank: int) -> Job:
    """One job of ``config``: its overrides, LoRA stack and sweep values applied, the prompt, seed,
    pose and reference set, the tiny profile and --set overrides last, then its id and file (the
    checkpoint sweep builds its jobs with it too)."""
    graph = apply_overrides(config.graph, config.overrides)
    if config.loras:
        graph = apply_lora_chain(graph, spec.inputs["lora"].node, config.loras)
    if variant:
        graph = apply_overrides(graph, [Override(param.target.node, param.target.input, value, None)
                                        for param, value in variant])
    if rule == "bypass":
        graph = bypass_nodes(graph, config.rule.bypass)
    inputs = spec.inputs
    set_input(graph, inputs["prompt"].node, inputs["prompt"].input, prompt.text, in_place=True)
    set_input(graph, inputs["seed"].node, inputs["seed"].input, seed, in_place=True)
    if has_node(graph, inputs["pose"].node):
        set_input(graph, inputs["pose"].node, inputs["pose"].input, pose, in_place=True)
    if selection.reference_image is not None and has_node(graph, inputs["reference"].node):
        set_input(graph, inputs["reference"].node, inputs["reference"].input, selection.reference_image, in_place=True)
    if selection.face_region is not None and has_node(graph, inputs["face_region"].node):
        set_input(graph, inputs["face_region"].node, inputs["face_region"].input, selection.face_region, in_place=True)
    if selection.tiny:
        from ....tiny_profile import adapt_for_tiny

        graph = adapt_for_tiny(graph)
    if selection.overrides:
        graph = apply_overrides(graph, selection.overrides)
    save_node = resolve_node(graph, inputs["save"].node) if has_node(graph, inputs["save"].node) else None
    params = tuple((param.key, value) for param, value in variant)
    job_id = job_id_for(config.name, prompt, seed, params, graph, save_node)
    if save_node is not None:
        set_input(graph, save_node, inputs["save"].input, f"pulid_studio_runner/{config.name}/{job_id}", in_place=True)
    return Job(job_id=job_id, config=config.name, prompt=prompt, seed=seed, params=params, pose=pose,
               full_body=full_body, rule=rule, graph=graph, save_node=save_node,
               file=f"{GALLERY}/{config.name}/{file_name(prompt, seed, variant)}", block=prompt.index,
               config_rank=config_rank)


def _with_order(job: Job, order: int) -> Job:
    from dataclasses import replace

    return replace(job, order=order)


def _check_unique(spec: Spec, jobs: Iterable[Job]) -> None:
    files: dict[str, Job] = {}
    for job in jobs:
        other = files.get(job.file)
        if other is not None:
            raise SpecError(spec.path, f"configs ({job.config})",
                            f"two jobs would write {job.file} (params {dict(other.params)} and {dict(job.params)}); "
                            "give the swept parameters distinct aliases or values")
        files[job.file] = job
