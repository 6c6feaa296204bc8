"""The ablation spec as a plan source: ``run SPEC`` (generate) and ``ablate SPEC`` (generate, then report).

Reads the spec (:mod:`.spec`), applies the command line's selection (prompts, seeds, configs,
sweeps, ``--set`` overrides), expands the jobs (:mod:`.jobs`) and checks that a reference photo is
there for every config that needs one.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ....errors import OverrideError
from ....overrides import parse_override
from ...errors import RunnerError
from ...plan import Job, RunInfo, RunPlan
from .. import PlanSource, RunRequest, parse_csv_ints, resolve_reference
from .jobs import Selection, expand_jobs
from .spec import Spec, has_node, load_spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="ablation spec (YAML), e.g. workflows/ablation.yaml")
    parser.add_argument("--max-prompts", type=int, default=None, metavar="N", help="only the first N prompts")
    parser.add_argument("--seeds", default=None, metavar="S1,S2", help="seeds to use instead of the spec's")
    parser.add_argument("--configs", default=None, metavar="A,B", help="only these configs")
    parser.add_argument("--sweep", action="append", default=[], metavar="NAME",
                        help="enable a sweep the spec defines (repeatable)")
    parser.add_argument("--no-sweeps", action="store_true", help="ignore every sweep (one job per config x prompt x seed)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="override an input in every config, e.g. --set Latent.width=512 (repeatable)")


def build_plan(args: argparse.Namespace, request: RunRequest) -> RunPlan:
    spec = load_spec(args.spec)
    if args.max_prompts is not None and args.max_prompts < 1:
        raise RunnerError(f"--max-prompts must be >= 1, got {args.max_prompts}")
    try:
        overrides = tuple(parse_override(text) for text in args.overrides)
    except OverrideError as exc:
        raise RunnerError(f"--set: {exc}") from None
    reference = resolve_reference(request, spec.reference, spec.reference_region)
    configs = tuple(c.strip() for c in args.configs.split(",") if c.strip()) if args.configs else None
    selection = Selection(max_prompts=args.max_prompts, seeds=parse_csv_ints(args.seeds, "--seeds"), configs=configs,
                          sweeps=tuple(args.sweep), no_sweeps=args.no_sweeps, overrides=overrides, tiny=request.tiny,
                          reference_image=reference.image_value, face_region=reference.region_value)
    try:
        jobs = expand_jobs(spec, selection)
        all_jobs = expand_jobs(spec, replace(selection, max_prompts=None))
    except OverrideError as exc:
        raise RunnerError(f"--set does not fit every config: {exc}") from None
    needs_reference = [j for j in jobs if has_node(j.graph, spec.inputs["reference"].node)]
    if needs_reference and reference.data is None:
        raise RunnerError(f"config {needs_reference[0].config} needs a reference photo (node "
                          f"{spec.inputs['reference']}): pass --reference IMAGE or set 'reference:' in {spec.path}")
    order = [c.name for c in spec.configs]
    info = RunInfo(
        source="ablation", spec=str(Path(args.spec).resolve()), spec_name=spec.name, tiny=request.tiny,
        tiny_models=str(request.tiny_models) if request.tiny and request.tiny_models else None,
        reference=tuple(str(p) for p in reference.files), reference_region=reference.region,
        launch=str(request.launch.resolve()) if request.launch else None,
        selection={"max_prompts": args.max_prompts, "seeds": selection.seeds, "configs": configs,
                   "sweeps": list(args.sweep), "no_sweeps": args.no_sweeps, "overrides": list(args.overrides)},
        configs=tuple(sorted({j.config for j in all_jobs}, key=order.index)), rules=tuple(rule_notes(spec, jobs)))
    return RunPlan(out=request.out, jobs=tuple(jobs), all_jobs=tuple(all_jobs), reference=reference, info=info)


def rule_notes(spec: Spec, jobs: Sequence[Job]) -> list[str]:
    """What the per-prompt rules did, in words for the report."""
    notes = []
    for config in spec.configs:
        if config.rule is None:
            continue
        mine = [j for j in jobs if j.config == config.name]
        changed = sorted({j.prompt.tag for j in mine if j.rule != "as-is"})
        action = {"skip": "are skipped", "run": "run it unchanged (pose from the bank)",
                  "bypass": "run it without " + ", ".join(repr(n) for n in config.rule.bypass)}[config.rule.otherwise]
        notes.append(f"{config.name} runs as shipped only for prompts whose pose-bank entry is "
                     f"{' or '.join(config.rule.only_for)}; other prompts {action}"
                     + (f" (here: {', '.join(changed)})" if changed else ""))
        if config.rule.otherwise == "bypass":
            notes.append(f"With the ControlNet bypassed, {config.name} has the same graph as the config without "
                         "it, so those cells repeat that config's image (ComfyUI serves it from its cache).")
    return notes


RUN = PlanSource(
    command="run", help="generate every job of an ablation spec (resumable)",
    description="Run every job (config x prompt x seed x sweep) of an ablation spec on one or more ComfyUI "
                "servers; finished jobs are skipped on a re-run.",
    add_arguments=add_arguments, build=build_plan)

ABLATE = PlanSource(
    command="ablate", help="run an ablation spec, then score it and write OUT/report.md",
    description="Generate the spec's gallery (resumable, see `run`), score every config against the reference "
                "and write CSVs, a grid, a plot and OUT/report.md.",
    add_arguments=add_arguments, build=build_plan, report=True)
