"""``pulid-studio sweep CHECKPOINT_DIR``: pick the identity-LoRA checkpoint by measurement.

The sweep is a plan source of the run engine: it finds the trainer's checkpoints
(:mod:`pulid_flux.sweep.checkpoints`), renders every checkpoint x prompt x seed with the spec's
LoRA config (prompts and seeds of the shipped ablation spec unless ``--spec``) in the order of
:mod:`.sweep_jobs`, through the same scheduler, manifest, resume and lock as ``ablate``; then it
scores every image (ArcFace + dlib identity, CLIP score, memorization) and writes ``sweep.csv``,
``curve.png``, ``strips/<tag>.png``, ``report.md`` (``Recommended checkpoint: <file>``) and a
ready ablation spec for the chosen checkpoint.

Where the checkpoints come from: with ``--launch`` the folder is added to the launched ComfyUI's
LoRA paths in place (no copy, no link); with ``--server`` each server's LoRA list must already
hold them (a subfolder of ``models/loras`` is fine), and the sweep names what is missing.

``--style-lora FILE --strengths 0,0.25,...`` sweeps a style LoRA's strength stacked on one
checkpoint (``--checkpoint``, default the last) and reports identity retention against the style
CLIP score (``--style-prompt``).

Nothing here imports torch; scoring imports ``pulid_flux.sweep`` (open_clip, face engines) when it runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ComfyClientError, OverrideError
from .commands import (
    EXIT_OK,
    Plan,
    Reference,
    RunnerError,
    _add_run_arguments,
    _generate,
    _interruptible,
    _parse_csv_ints,
)
from .jobs import Selection
from .manifest import write_json_atomic
from .spec import load_spec
from .sweep_jobs import (
    SweepColumn,
    identity_columns,
    lora_strength,
    style_columns,
    sweep_config,
    sweep_jobs,
)

log = logging.getLogger("api_client.runner")

PACK_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = PACK_ROOT / "workflows" / "ablation.yaml"
DEFAULT_CONFIG = "02_lora"
DEFAULT_STRENGTHS = "0,0.25,0.5,0.75,1"
SWEEP_STATE = "sweep_state.json"
TINY_CLIP = "tiny"                 # settings' clip_model under --tiny: the tiny open_clip model, built when scoring


# ----------------------------------------------------------------------------- command line


def add_sweep_parser(subparsers) -> None:
    from pulid_flux.sweep.clip_score import DEFAULT_CLIP_MODEL
    from pulid_flux.sweep.recommend import DEFAULT_DELTA, DEFAULT_EPSILON

    parser = subparsers.add_parser(
        "sweep", help="render every checkpoint of an identity-LoRA training, score them, recommend one",
        description="Find the trainer's checkpoints in CHECKPOINT_DIR, render every checkpoint x prompt x seed "
                    "(resumable, over one or more servers, each LoRA loaded once per server), score identity, "
                    "prompt adherence and memorization, and write OUT/sweep.csv, curve.png, strips/ and report.md "
                    "with the recommended checkpoint.")
    parser.add_argument("checkpoint_dir", metavar="CHECKPOINT_DIR",
                        help="the training's output folder (ai-toolkit: <name>_000000250.safetensors, ..., "
                             "<name>.safetensors)")
    _add_run_arguments(parser, spec=False, several_references=True)
    parser.add_argument("--spec", default=str(DEFAULT_SPEC), metavar="FILE",
                        help="ablation spec whose prompts, seeds and config are used (default: the shipped one)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, metavar="NAME",
                        help=f"the spec's config that renders each checkpoint (default {DEFAULT_CONFIG}: the LoRA "
                             "alone)")
    parser.add_argument("--lora-node", default="LoRA", metavar="TITLE",
                        help="title (or id) of the config's LoRA loader node (default LoRA)")
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
    parser.set_defaults(func=_interruptible(cmd_sweep))


def cmd_sweep(args) -> int:
    return _generate(args, report=True, build=build_sweep_plan, after=sweep_report)


# ----------------------------------------------------------------------------- the plan


@dataclass
class SweepPlan(Plan):
    columns: list[SweepColumn] = field(default_factory=list)
    lora_node: str = "LoRA"


def _float_list(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RunnerError(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if not values or len(set(values)) != len(values):
        raise RunnerError(f"{what}: expected distinct numbers, got {text!r}")
    return sorted(values)


def scoring_models_dir(args, tiny_models: Path | None) -> Path | None:
    """Where scoring finds insightface packs and clip_score/: --models-dir, the tiny models, the
    launched checkout's models, $COMFYUI_PATH/models."""
    import os

    if args.models_dir:
        return Path(args.models_dir).expanduser()
    if tiny_models is not None:
        return tiny_models
    if args.launch:
        return Path(args.launch) / "models"
    if os.environ.get("COMFYUI_PATH"):
        return Path(os.environ["COMFYUI_PATH"]) / "models"
    return None


def _clip_model(args, models_dir: Path | None, tiny_models: Path | None) -> str:
    """The CLIP model as ARCH:absolute file, checked now (before anything is generated)."""
    from pulid_flux.sweep.clip_score import (
        CLIP_SCORE_FOLDER,
        DEFAULT_CLIP_MODEL,
        ClipModelError,
        parse_clip_model,
    )

    if args.tiny and not args.clip_model:
        # Built when the images are scored (building imports torch; a finished sweep never needs it).
        return TINY_CLIP
    folders = [models_dir / CLIP_SCORE_FOLDER] if models_dir else []
    try:
        return str(parse_clip_model(args.clip_model or DEFAULT_CLIP_MODEL, folders))
    except ClipModelError as exc:
        raise RunnerError(str(exc)) from None


def server_lora_names(urls: Sequence[str], files: Sequence[str]) -> dict[str, str]:
    """{file: the name every server lists it under} (top level or a subfolder of its loras);
    RunnerError naming each server's missing files otherwise."""
    from ..client import ComfyClient

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
    return names


def build_sweep_plan(args) -> SweepPlan:
    from pulid_flux.sweep.checkpoints import CheckpointError, discover_checkpoints

    from .commands import _resolve_reference, tiny_models_dir

    if args.max_prompts is not None and args.max_prompts < 1:
        raise RunnerError(f"--max-prompts must be >= 1, got {args.max_prompts}")
    checkpoint_dir = Path(args.checkpoint_dir).expanduser().resolve()
    try:
        checkpoints = discover_checkpoints(checkpoint_dir, step_pattern=args.step_pattern, name=args.name)
    except CheckpointError as exc:
        raise RunnerError(str(exc)) from None
    spec = load_spec(args.spec)
    out = Path(args.out)
    config = sweep_config(spec, args.config, args.lora_node)
    tiny_models = tiny_models_dir(args)
    reference = _resolve_reference(args, spec, out)
    if not reference.files:
        raise RunnerError("scoring needs reference photo(s) of the person: pass --reference IMAGE [IMAGE ...]")
    if args.dataset and not Path(args.dataset).is_dir():
        raise RunnerError(f"--dataset {args.dataset}: not a folder")
    models_dir = scoring_models_dir(args, tiny_models)
    clip_model = _clip_model(args, models_dir, tiny_models)
    files = [c.file for c in checkpoints]
    style = None
    if args.style_lora:
        style = _style(args, checkpoints)
        files = [style["checkpoint"].file, style["path"].name]
    names = server_lora_names(args.server, files) if args.server else {f: f for f in files}
    strength = lora_strength(spec, config, args.lora_node)
    if style:
        columns = style_columns(style["checkpoint"], names, strength, names[style["path"].name], style["strengths"])
    else:
        columns = identity_columns(checkpoints, names, strength)
    try:
        overrides = tuple(_overrides(args))
    except OverrideError as exc:
        raise RunnerError(f"--set: {exc}") from None
    selection = Selection(max_prompts=args.max_prompts, seeds=_parse_csv_ints(args.seeds, "--seeds"),
                          overrides=overrides, tiny=args.tiny, reference_image=None)
    try:
        jobs = sweep_jobs(spec, config, columns, lora_node=args.lora_node, selection=selection)
    except OverrideError as exc:
        raise RunnerError(f"--set does not fit the {config.name} workflow: {exc}") from None
    extra = {"loras": sorted({checkpoint_dir} | ({style["path"].parent} if style else set()))}
    for folder in getattr(args, "lora_dir", []):
        extra["loras"].append(Path(folder).expanduser())
    settings = {"kind": "sweep", "spec": str(Path(args.spec).resolve()), "spec_name": spec.name, "config": config.name,
                "checkpoint_dir": str(checkpoint_dir), "tiny": bool(args.tiny),
                "tiny_models": str(tiny_models) if tiny_models else None,
                "reference": [str(p) for p in reference.files],
                "launch": str(Path(args.launch).resolve()) if args.launch else None,
                "models_dir": str(models_dir) if models_dir else None, "clip_model": clip_model,
                "dataset": str(Path(args.dataset).resolve()) if args.dataset else None,
                "lora_node": args.lora_node, "delta": args.delta, "epsilon": args.epsilon,
                "style": ({"lora": names[style["path"].name], "prompt": style["prompt"],
                           "checkpoint": names[style["checkpoint"].file], "strengths": style["strengths"]}
                          if style else None),
                "columns": [c.group for c in columns], "configs": [c.folder for c in columns]}
    log.info("%d checkpoint(s) in %s: %s", len(checkpoints), checkpoint_dir, ", ".join(c.label for c in checkpoints))
    return SweepPlan(spec=spec, out=out, selection=selection, jobs=jobs, all_jobs=jobs,
                     reference=Reference(files=reference.files), tiny_models=tiny_models, settings=settings,
                     extra_paths=extra, columns=columns, lora_node=args.lora_node)


def _overrides(args):
    from ..overrides import parse_override

    return [parse_override(text) for text in args.overrides]


def _style(args, checkpoints) -> dict:
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


# ----------------------------------------------------------------------------- scoring and report


def _fingerprint(plan: SweepPlan, finished: Mapping[str, Mapping]) -> str:
    keys = ("reference", "clip_model", "dataset", "models_dir", "delta", "epsilon", "style", "columns")
    payload = {"jobs": sorted(j.job_id for j in plan.jobs if j.job_id in finished),
               "settings": {k: plan.settings.get(k) for k in keys}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def sweep_report(args, plan: SweepPlan, finished: Mapping[str, Mapping]) -> Path | None:
    """Score the finished images and write every output (skipped when nothing changed)."""
    from pulid_flux.sweep.report import REPORT

    done = [j for j in plan.jobs if j.job_id in finished]
    if not done:
        log.warning("no finished image to score; no report written")
        return None
    fingerprint = _fingerprint(plan, finished)
    state = plan.out / SWEEP_STATE
    if not args.force_report and (plan.out / REPORT).is_file() and state.is_file():
        try:
            current = json.loads(state.read_text(encoding="utf-8")).get("fingerprint") == fingerprint
        except ValueError:
            current = False
        if current:
            log.info("report %s is up to date (same images, same scoring settings)", plan.out / REPORT)
            return plan.out / REPORT
    try:
        path = _score_and_write(plan, done, finished)
    except (ImportError, RunnerError):
        raise
    except Exception as exc:  # engines and images raise their own types; the images and manifest are intact
        raise RunnerError(f"scoring failed: {type(exc).__name__}: {exc}. The images and manifest are complete; fix "
                          "this and run the same command again (nothing is generated twice)") from exc
    write_json_atomic(state, {"fingerprint": fingerprint})
    log.info("report written: %s", path)
    return path


def _score_and_write(plan: SweepPlan, done, finished) -> Path:
    from pulid_flux.sweep.clip_score import load_clip_scorer, parse_clip_model
    from pulid_flux.sweep.outputs import write_sweep_outputs
    from pulid_flux.sweep.report import SweepInfo
    from pulid_flux.sweep.scoring import (
        SweepImage,
        dataset_features,
        load_identity_engines,
        score_images,
    )

    settings = plan.settings
    columns = {c.folder: c for c in plan.columns}
    images = []
    for job in done:
        column = columns[job.config]
        images.append(SweepImage(step=column.step, checkpoint=column.checkpoint, prompt=job.prompt.tag,
                                 prompt_text=job.prompt.text, seed=job.seed, file=finished[job.job_id]["files"][0],
                                 style_lora=column.style_lora, style_strength=column.style_strength))
    models_dir = Path(settings["models_dir"]) if settings.get("models_dir") else None
    if settings.get("tiny") and models_dir is not None and not (models_dir / "insightface").is_dir():
        from pulid_flux.tiny import build_tiny_models

        build_tiny_models(models_dir, include=["insightface"])
    engines = load_identity_engines(plan.reference.files, models_dir=models_dir)
    clip_model = settings["clip_model"]
    if clip_model == TINY_CLIP:
        from pulid_flux.sweep.clip_score import CLIP_SCORE_FOLDER
        from pulid_flux.tiny.open_clip_tiny import write_tiny_open_clip

        # Built (or reused) and its architecture registered with open_clip in this process.
        arch, weights = write_tiny_open_clip(Path(settings["tiny_models"]) / CLIP_SCORE_FOLDER)
        clip_model = f"{arch}:{weights}"
    arch, _, file = clip_model.partition(":")
    clip = load_clip_scorer(parse_clip_model(clip_model))
    dataset = dataset_features(clip, Path(settings["dataset"])) if settings.get("dataset") else None
    style = settings.get("style")
    log.info("scoring %d image(s): identity (%s), CLIP score (%s)%s", len(images), ", ".join(
        k for k, run in engines.runs.items() if run is not None), arch, ", memorization" if dataset is not None else "")
    rows = score_images(plan.out, images, engines=engines, clip=clip, dataset=dataset,
                        style_prompt=style["prompt"] if style else None)
    info = SweepInfo(checkpoint_dir=settings["checkpoint_dir"], spec=settings["spec"], config=settings["config"],
                     reference=settings["reference"], clip_model=f"{arch} ({Path(file).name})",
                     identity_column=engines.identity_column, engines=engines.notes, tiny=bool(settings.get("tiny")),
                     dataset=settings.get("dataset"), style=style, run_lines=lora_load_lines(plan, finished))
    order = [(c.group, c.label) for c in plan.columns]
    result = write_sweep_outputs(plan.out, rows, order, info=info, delta=settings["delta"],
                                 epsilon=settings["epsilon"], write_spec=lambda rec: _write_spec(plan, rec))
    return result.paths["report"]


def _write_spec(plan: SweepPlan, recommendation) -> Path:
    import yaml

    from pulid_flux.sweep.report import ablation_spec_data, write_ablation_spec

    from .spec import has_node

    settings = plan.settings
    style = settings.get("style")
    checkpoint = style["checkpoint"] if style else recommendation.name
    source_path = Path(settings["spec"])
    data = ablation_spec_data(yaml.safe_load(source_path.read_text(encoding="utf-8")), source_path=source_path,
                              checkpoint=checkpoint, lora_node=plan.lora_node,
                              lora_configs=[c.name for c in plan.spec.configs if has_node(c.graph, plan.lora_node)],
                              reference=[] if settings.get("tiny") else settings["reference"],
                              style={"lora": style["lora"], "strength": recommendation.label} if style else None)
    tag = Path(checkpoint).stem + (f"_style{recommendation.label}" if style else "")
    header = [f"The 4-config comparison with {checkpoint}" + (f" + {style['lora']} at {recommendation.label}"
                                                              if style else "") + ", written by pulid-studio sweep.",
              (f"pulid-studio ablate {plan.out / f'ablation_{tag}.yaml'} --lora-dir {settings['checkpoint_dir']} "
              "--launch COMFYUI_PATH --reference IMAGE --out OUT")]
    return write_ablation_spec(plan.out / f"ablation_{tag}.yaml", data, header=header)


def lora_load_lines(plan: SweepPlan, finished: Mapping[str, Mapping]) -> list[str]:
    """How often the LoRA loader executed, per server and column (from the jobs' observed events)."""
    from collections import Counter

    from ..overrides import resolve_node

    if not plan.jobs:
        return []
    node = resolve_node(plan.jobs[0].graph, plan.lora_node)
    loads: Counter = Counter()
    observed = 0
    for job in plan.jobs:
        record = finished.get(job.job_id)
        if not record or record.get("executed") is None:
            continue
        observed += 1
        if node in record["executed"]:
            loads[(record.get("server", "?"), job.config)] += 1
    if not observed:
        return []
    servers = sorted({s for s, _ in loads})
    per_pair = max(loads.values(), default=0)
    return [(f"LoRA loader (node {node}) executed {sum(loads.values())} time(s) over {observed} observed job(s) for "
            f"{len({c for _, c in loads})} column(s) on {len(servers)} server(s); at most {per_pair} time(s) per "
            "column and server (ComfyUI's cache served the rest)")]


__all__ = ["EXIT_OK", "add_sweep_parser", "build_sweep_plan", "cmd_sweep", "server_lora_names", "sweep_report"]
