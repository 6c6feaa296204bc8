"""The checkpoint sweep as a plan source: ``pulid-studio sweep CHECKPOINT_DIR``.

Finds the trainer's checkpoints (:mod:`pulid_flux.sweep.checkpoints`), takes prompts and seeds from
an ablation spec (the shipped one unless ``--spec``) and renders each checkpoint with one of its
configs (``02_lora``: the LoRA alone), in the order of :mod:`.jobs`. With ``--launch`` the
checkpoint folder is given to the launched ComfyUI as an extra LoRA path (``RunPlan.model_paths``:
no copy, no link); with ``--server`` each server's LoRA list must already hold the checkpoints (a
subfolder of ``models/loras`` is fine) and what is missing is named before anything is queued.

Everything the sweep's report needs (columns, the CLIP model, δ and ε, the style settings) goes
into ``RunInfo.details``; ``reporting.sweep`` reads it from there, after the run or in
``report OUT``. The CLIP model file is checked here, before anything is generated.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ....errors import ComfyClientError, OverrideError
from ....overrides import parse_override, resolve_node
from ...errors import RunnerError
from ...plan import Reference, RunInfo, RunPlan
from .. import RunRequest, parse_csv_ints, resolve_reference
from ..ablation.jobs import Selection
from ..ablation.spec import has_node, load_spec
from .jobs import (
    identity_columns,
    lora_strength,
    style_columns,
    sweep_config,
    sweep_jobs,
)

log = logging.getLogger("api_client.runner")

PACK_ROOT = Path(__file__).resolve().parents[4]
DEFAULT_SPEC = PACK_ROOT / "workflows" / "ablation.yaml"
DEFAULT_CONFIG = "02_lora"
DEFAULT_STRENGTHS = "0,0.25,0.5,0.75,1"
TINY_CLIP = "tiny"          # details' clip_model under --tiny: the tiny open_clip model, built when scoring


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pulid_flux.sweep.clip_score import DEFAULT_CLIP_MODEL
    from pulid_flux.sweep.recommend import DEFAULT_DELTA, DEFAULT_EPSILON

    parser.add_argument("checkpoint_dir", metavar="CHECKPOINT_DIR",
                        help="the training's output folder (ai-toolkit: <name>_000000250.safetensors, ..., "
                             "<name>.safetensors)")
    parser.add_argument("--spec", default=str(DEFAULT_SPEC), metavar="FILE",
                        help="ablation spec whose prompts, seeds and config are used (default: the shipped one)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, metavar="NAME",
                        help=f"the spec's config that renders each checkpoint (default {DEFAULT_CONFIG}: the LoRA "
                             "alone)")
    parser.add_argument("--lora-node", default="LoRA", metavar="TITLE",
                        help="title (or id) of the config's LoRA loader node (default LoRA)")
    parser.add_argument("--max-prompts", type=int, default=None, metavar="N", help="only the first N prompts")
    parser.add_argument("--seeds", default=None, metavar="S1,S2", help="seeds to use instead of the spec's")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="override an input of every job, e.g. --set Latent.width=512 (repeatable)")
    parser.add_argument("--step-pattern", default=None, metavar="REGEX",
                        help="file-name pattern of other trainers, with a named group 'step' (and 'name'), e.g. "
                             r"'(?P<name>.+)-(?P<step>\d+)\.safetensors'")
    parser.add_argument("--name", default=None, help="the training's name when CHECKPOINT_DIR holds several")
    parser.add_argument("--dataset", default=None, metavar="DIR",
                        help="the LoRA's training images: each image's memorization is its best CLIP match there")
    parser.add_argument("--clip-model", default=None, metavar="ARCH:FILE",
                        help=f"open_clip architecture and weights file for the CLIP score (default "
                             f"{DEFAULT_CLIP_MODEL}; FILE is looked up in models/clip_score/; never downloaded)")
    parser.add_argument("--models-dir", default=None, metavar="DIR",
                        help="ComfyUI models folder for scoring: insightface/models/<pack> and clip_score/ "
                             "(default: the --launch checkout's models, or $COMFYUI_PATH/models)")
    parser.add_argument("--delta", type=float, default=DEFAULT_DELTA,
                        help=f"identity tolerance of the recommendation rule (default {DEFAULT_DELTA})")
    parser.add_argument("--epsilon", type=float, default=DEFAULT_EPSILON,
                        help=f"CLIP-score tolerance of the recommendation rule (default {DEFAULT_EPSILON})")
    parser.add_argument("--style-lora", default=None, metavar="FILE",
                        help="sweep this style LoRA's strength stacked on one checkpoint instead of the checkpoints")
    parser.add_argument("--strengths", default=DEFAULT_STRENGTHS, metavar="S1,S2",
                        help=f"style strengths to sweep (default {DEFAULT_STRENGTHS})")
    parser.add_argument("--style-prompt", default=None, metavar="TEXT",
                        help="what the style looks like (e.g. 'a watercolor painting'): the style CLIP score's text")
    parser.add_argument("--checkpoint", default=None, metavar="FILE",
                        help="with --style-lora: the identity checkpoint to stack on (default: the last one)")
    parser.add_argument("--force-report", action="store_true", help="score again even if nothing changed")


def scoring_models_dir(models_dir: str | None, request: RunRequest) -> Path | None:
    """Where scoring finds insightface packs and clip_score/: --models-dir, the tiny models, the
    launched checkout's models, $COMFYUI_PATH/models."""
    if models_dir:
        return Path(models_dir).expanduser().resolve()
    if request.tiny and request.tiny_models:
        return request.tiny_models
    if request.launch:
        return (request.launch / "models").resolve()
    if os.environ.get("COMFYUI_PATH"):
        return Path(os.environ["COMFYUI_PATH"]) / "models"
    return None


def clip_model(text: str | None, models_dir: Path | None, tiny: bool) -> str:
    """The CLIP model as ARCH:absolute file, checked now (before anything is generated)."""
    from pulid_flux.sweep.clip_score import (
        CLIP_SCORE_FOLDER,
        DEFAULT_CLIP_MODEL,
        ClipModelError,
        parse_clip_model,
    )

    if tiny and not text:
        return TINY_CLIP        # built when the images are scored (building imports torch)
    folders = [models_dir / CLIP_SCORE_FOLDER] if models_dir else []
    try:
        return str(parse_clip_model(text or DEFAULT_CLIP_MODEL, folders))
    except ClipModelError as exc:
        raise RunnerError(str(exc)) from None


def server_lora_names(urls: Sequence[str], files: Sequence[str]) -> dict[str, str]:
    """{file: the name every server lists it under} (top level or a subfolder of its loras);
    RunnerError naming each server's missing files otherwise."""
    from ....client import ComfyClient

    names: dict[str, str] = {}
    problems = []
    for url in urls:
        try:
            with ComfyClient(url) as client:
                listing = [str(n) for n in client.http.get_json("/models/loras")]
        except ComfyClientError as exc:
            log.warning("cannot list the LoRAs of %s (%s); the run will check it again", url, exc)
            continue
        missing, ambiguous = [], []
        for file in files:
            matches = [n for n in listing if n == file] or \
                      [n for n in listing if n.replace("\\", "/").rsplit("/", 1)[-1] == file]
            if not matches:
                missing.append(file)
            elif len(matches) > 1:
                ambiguous.append(f"{file} ({', '.join(matches)})")
            elif names.setdefault(file, matches[0]) != matches[0]:
                ambiguous.append(f"{file} ({names[file]} on one server, {matches[0]} on {url})")
        if missing:
            problems.append(f"{url} lacks {len(missing)} of the LoRA files: {', '.join(missing)}")
        if ambiguous:
            problems.append(f"{url}: ambiguous LoRA names, keep one copy: {'; '.join(ambiguous)}")
    if problems:
        raise RunnerError("the servers cannot see every checkpoint:\n  " + "\n  ".join(problems) + "\nAdd the "
                          "checkpoint folder to each server's extra_model_paths.yaml (loras: <folder>) or its "
                          "models/loras, or use --launch (the folder is then added for you)")
    # A server that could not be listed is checked again by the run's preflight, under the plain names.
    return {file: names.get(file, file) for file in files}


def _float_list(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RunnerError(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if not values or len(set(values)) != len(values):
        raise RunnerError(f"{what}: expected distinct numbers, got {text!r}")
    return sorted(values)


def _style(args, checkpoints) -> dict | None:
    if not args.style_lora:
        return None
    path = Path(args.style_lora).expanduser().resolve()
    if not path.is_file():
        raise RunnerError(f"--style-lora {args.style_lora}: file not found")
    if not args.style_prompt:
        raise RunnerError("--style-lora needs --style-prompt TEXT: what the style looks like (the style CLIP score "
                          "compares each image with it)")
    chosen = checkpoints[-1]
    if args.checkpoint:
        chosen = next((c for c in checkpoints if c.file == Path(args.checkpoint).name), None)
        if chosen is None:
            raise RunnerError(f"--checkpoint {args.checkpoint}: not among the checkpoints "
                              f"({', '.join(c.file for c in checkpoints)})")
    return {"path": path, "prompt": args.style_prompt, "checkpoint": chosen,
            "strengths": _float_list(args.strengths, "--strengths")}


def build_plan(args: argparse.Namespace, request: RunRequest) -> RunPlan:
    from pulid_flux.sweep.checkpoints import CheckpointError, discover_checkpoints

    if args.max_prompts is not None and args.max_prompts < 1:
        raise RunnerError(f"--max-prompts must be >= 1, got {args.max_prompts}")
    checkpoint_dir = Path(args.checkpoint_dir).expanduser().resolve()
    try:
        checkpoints = discover_checkpoints(checkpoint_dir, step_pattern=args.step_pattern, name=args.name)
    except CheckpointError as exc:
        raise RunnerError(str(exc)) from None
    spec = load_spec(args.spec)
    config = sweep_config(spec, args.config, args.lora_node)
    reference = resolve_reference(request)
    if not reference.files:
        raise RunnerError("scoring needs reference photo(s) of the person: pass --reference IMAGE [IMAGE ...]")
    if args.dataset and not Path(args.dataset).is_dir():
        raise RunnerError(f"--dataset {args.dataset}: not a folder")
    models_dir = scoring_models_dir(args.models_dir, request)
    clip = clip_model(args.clip_model, models_dir, request.tiny)
    style = _style(args, checkpoints)
    files = [style["checkpoint"].file, style["path"].name] if style else [c.file for c in checkpoints]
    names = server_lora_names(args.server, files) if args.server else {f: f for f in files}
    strength = lora_strength(spec, config, args.lora_node)
    if style:
        columns = style_columns(style["checkpoint"], names, strength, names[style["path"].name], style["strengths"])
    else:
        columns = identity_columns(checkpoints, names, strength)
    try:
        overrides = tuple(parse_override(text) for text in args.overrides)
    except OverrideError as exc:
        raise RunnerError(f"--set: {exc}") from None
    selection = Selection(max_prompts=args.max_prompts, seeds=parse_csv_ints(args.seeds, "--seeds"),
                          overrides=overrides, tiny=request.tiny)
    try:
        jobs = sweep_jobs(spec, config, columns, lora_node=args.lora_node, selection=selection)
    except OverrideError as exc:
        raise RunnerError(f"--set does not fit the {config.name} workflow: {exc}") from None
    log.info("%d checkpoint(s) in %s: %s", len(checkpoints), checkpoint_dir, ", ".join(c.label for c in checkpoints))
    details = {
        "checkpoint_dir": str(checkpoint_dir), "config": config.name, "lora_node": args.lora_node,
        "lora_node_id": resolve_node(jobs[0].graph, args.lora_node),
        "lora_configs": [c.name for c in spec.configs if has_node(c.graph, args.lora_node)],
        "clip_model": clip, "models_dir": str(models_dir) if models_dir else None,
        "dataset": str(Path(args.dataset).resolve()) if args.dataset else None,
        "delta": args.delta, "epsilon": args.epsilon,
        "style": ({"lora": names[style["path"].name], "prompt": style["prompt"],
                   "checkpoint": names[style["checkpoint"].file], "strengths": style["strengths"]} if style else None),
        "columns": [asdict(c) | {"loras": [asdict(e) for e in c.loras]} for c in columns]}
    info = RunInfo(source="sweep", spec=str(Path(args.spec).resolve()), spec_name=spec.name, tiny=request.tiny,
                   tiny_models=str(request.tiny_models) if request.tiny and request.tiny_models else None,
                   reference=tuple(str(p) for p in reference.files),
                   launch=str(request.launch.resolve()) if request.launch else None,
                   selection={"max_prompts": args.max_prompts, "seeds": selection.seeds,
                              "overrides": list(args.overrides)},
                   configs=tuple(c.folder for c in columns), details=details)
    folders = [checkpoint_dir] + ([style["path"].parent] if style and style["path"].parent != checkpoint_dir else [])
    # The sweep's jobs need no upload: the LoRA config has no reference image (it is only scored against).
    return RunPlan(out=request.out, jobs=tuple(jobs), all_jobs=tuple(jobs), reference=Reference(files=reference.files),
                   info=info, model_paths={"loras": tuple(folders)})
