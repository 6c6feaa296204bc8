"""``pulid-studio dataset synthesize | canonicalize``: one portrait -> a training set, on ComfyUI servers.

* ``canonicalize PHOTO --out DIR``: N frontal, neutral, bare-face portraits on a plain background from
  the photo through PuLID; the best one whose identity to the photo passes (and whose head is
  frontal) becomes ``DIR/portrait.png``.
* ``synthesize PORTRAIT --out DIR``: every view of the view plan (``--views FILE``, else the shipped
  plan) N times through the ``07_synthesis`` workflow; the identity-and-pose filter keeps at most K per
  view in ``DIR/train/`` with captions; M grounding images of other people from the base model go to
  ``DIR/reg/``; then ``ai-toolkit.yaml``, ``coverage.csv``, ``report.md``, ``contact_sheet.jpg`` and
  ``sweep.yaml`` (the sample prompts as a spec the checkpoint sweep and the comparison can run).

The jobs come from the synthesis plan source (:mod:`.sources.synthesis`) and run on the execution
engine like every run (pipelined over ``--server`` URLs or a ``--launch``ed ComfyUI, resumable: a
re-run skips finished jobs and starts no server when nothing is left; one launched server serves
both the views and the grounding images). The filter runs here, with the chosen face engine.
``--tiny``: tiny random-weight models; the images hold no faces, so the filter records its decisions
and the first K candidates per view are written marked unverified.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from ..errors import OverrideError
from . import execution
from .commands import (EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, _add_run_arguments, _configure_logging,
                       _interruptible, _request)
from .errors import RunnerError
from .execution.shared_servers import Servers
from .plan import RunPlan
from .sources import RunRequest
from .sources.synthesis import (BASE_WORKFLOW, SYNTHESIS_WORKFLOW, WORKFLOWS_DIR, candidates_plan, grounding_plan,
                                run_info)

log = logging.getLogger("api_client.runner")

PORTRAIT_FILE = "portrait.png"
SWEEP_SPEC = "sweep.yaml"
TINY_DEFAULTS = {"candidates": 2, "keep": 1}
DEFAULTS = {"candidates": 4, "keep": 2}


# ----------------------------------------------------------------------------- arguments


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_common(parser: argparse.ArgumentParser, what: str) -> None:
    _add_run_arguments(parser)
    parser.add_argument("--candidates", type=_positive_int, default=None, metavar="N",
                        help=f"{what} generated per view (default {DEFAULTS['candidates']}, "
                             f"--tiny {TINY_DEFAULTS['candidates']})")
    parser.add_argument("--seed", type=int, default=1, help="first seed; candidates use seed, seed+1, ...")
    parser.add_argument("--trigger", default="ohwx man",
                        help='the trigger word(s) captions start with (default "ohwx man")')
    parser.add_argument("--class-phrase", default=None, metavar="TEXT",
                        help="what the subject is, for prompts and grounding captions (default from the trigger's "
                             "last word: 'ohwx man' -> 'a man')")
    parser.add_argument("--workflow", default=str(SYNTHESIS_WORKFLOW), metavar="FILE",
                        help="API-format workflow with PuLID, the pose ControlNet and a 'Head pose' node "
                             "(default workflows/07_synthesis_api.json)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="override a workflow input, e.g. --set PuLID.weight=0.9 (repeatable)")
    engine = parser.add_argument_group("local face engine (the filter)")
    engine.add_argument("--engine", choices=("dlib", "insightface"), default=None,
                        help="dlib (CPU; verifies views up to ~45 deg of yaw) or insightface (verifies profiles; "
                             "needs a pack). Default: insightface when its pack is found, else dlib")
    engine.add_argument("--insightface-root", default=None, metavar="DIR",
                        help="models/insightface folder (default <launch>/models/insightface)")
    engine.add_argument("--dlib-detector", choices=("hog", "cnn"), default="hog", help="dlib detector (default hog)")


def register(commands) -> None:
    """Add ``synthesize`` and ``canonicalize`` to the ``dataset`` command's sub-parsers."""
    from pulid_flux.dataset.cli import add_vlm_arguments

    synth = commands.add_parser(
        "synthesize", help="one portrait -> a multi-view training set (views, filter, captions, grounding)",
        description="Generate every view of the view plan (--views FILE, else the shipped plan) N times with PuLID "
                    "and the pose ControlNet, keep at most K per view that show the subject (identity) as asked "
                    "(head pose) in OUT/train/ with captions, add grounding images of other people from the base "
                    "model in OUT/reg/, and write OUT/ai-toolkit.yaml, coverage.csv, report.md, contact_sheet.jpg "
                    "and sweep.yaml. --reference adds photos of the subject to the identity check.")
    synth.add_argument("portrait", metavar="PORTRAIT", help="the subject's portrait (ideally from canonicalize)")
    _add_common(synth, "candidates")
    synth.add_argument("--views", default=None, metavar="FILE",
                       help="view plan (YAML: defaults + views of yaw, pitch, roll, distance, expression, lighting, "
                            "background); default the shipped 24-view plan (--tiny: 3 views)")
    synth.add_argument("--keep", type=_positive_int, default=None, metavar="K",
                       help=f"at most K kept per view (default {DEFAULTS['keep']}, --tiny {TINY_DEFAULTS['keep']})")
    synth.add_argument("--grounding", type=int, default=None, metavar="M",
                       help="grounding images of other people (default: as many as the training images; 0: none)")
    synth.add_argument("--base-workflow", default=str(BASE_WORKFLOW), metavar="FILE",
                       help="API workflow for grounding images: the base model, no LoRA, no PuLID (default 01_base)")
    synth.add_argument("--caption", default="", metavar="TEXT", help="text appended to every caption")
    add_vlm_arguments(synth)
    train = synth.add_argument_group("ai-toolkit config")
    train.add_argument("--steps", type=_positive_int, default=2500)
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--rank", type=_positive_int, default=32)
    train.add_argument("--save-every", type=_positive_int, default=250,
                       help="checkpoint interval: the checkpoint sweep compares these (default 250)")
    synth.set_defaults(func=_interruptible(_discarding(cmd_synthesize)))

    canon = commands.add_parser(
        "canonicalize", help="one photo -> a frontal, neutral, bare-face portrait (identity checked)",
        description="Generate N frontal, neutral, bare-face portraits on a plain background from PHOTO with PuLID; "
                    "the one most like PHOTO whose identity passes and whose head is frontal becomes "
                    "OUT/portrait.png (report in OUT/report.md).")
    canon.add_argument("photo", metavar="PHOTO", help="a photo of the subject")
    _add_common(canon, "portraits")
    canon.set_defaults(func=_interruptible(_discarding(cmd_canonicalize)))


def _discarding(handler):
    """An error before any job ran leaves no half-created ``--out`` behind (as for every run)."""
    def run(args) -> int:
        with execution.discard_if_nothing_done(Path(args.out)):
            return handler(args)
    run.__name__ = handler.__name__
    return run


def _dry_run(plan: RunPlan) -> int:
    finished = execution.finished_jobs(plan.out)
    for job in plan.jobs:
        sys.stdout.write(f"{'done' if job.job_id in finished else 'todo':4} {job.job_id} {job.file}\n")
    sys.stdout.write(f"{len(plan.jobs)} jobs, {sum(j.job_id in finished for j in plan.jobs)} done\n")
    return EXIT_OK


def _overrides(args):
    from ..overrides import parse_override

    try:
        return tuple(parse_override(text) for text in args.overrides)
    except OverrideError as exc:
        raise RunnerError(f"--set: {exc}") from None


def _prepared(args, source: str) -> tuple[RunRequest, Path]:
    """The request (the portrait first among the references) and the portrait's path."""
    _configure_logging(args.quiet)
    photo = Path(getattr(args, source)).resolve()
    if not photo.is_file():
        raise RunnerError(f"{photo} not found")
    args.reference = [str(photo), *args.reference]
    return _request(args), photo


def _counts(args) -> tuple[int, int]:
    defaults = TINY_DEFAULTS if args.tiny else DEFAULTS
    return args.candidates or defaults["candidates"], getattr(args, "keep", None) or defaults["keep"]


def _local_engine(args):
    """The filter's face engine (see --engine)."""
    from pulid_flux.face import load_engine

    root = args.insightface_root or (Path(args.launch) / "models" / "insightface" if args.launch else None)
    engine = args.engine
    if engine is None:
        # The tiny pack's recognizer is random: --tiny filters with dlib.
        engine = "insightface" if root and (Path(root) / "models" / "antelopev2").is_dir() and not args.tiny else "dlib"
        log.info("filter face engine: %s (choose with --engine)", engine)
    if engine == "dlib":
        return load_engine("dlib", detector=args.dlib_detector)
    if not root:
        raise RunnerError("--engine insightface needs --insightface-root (ComfyUI's models/insightface) or --launch")
    return load_engine("insightface", root=root)


def _subject(request: RunRequest, engine, required: bool):
    """The subject: the centroid of the references' faces (the portrait first, then --reference)."""
    from pulid_flux.images import load_rgb
    from pulid_flux.synthesis import references_subject

    return references_subject([(p.name, load_rgb(p)) for p in request.references], engine, required=required)


def _tiny_notes(args) -> list[str]:
    if not args.tiny:
        return []
    return ["With `--tiny`, PuLID was given the synthetic tiny reference face (the tiny face pack sees only "
            "it); the filter compared the candidates with the portrait itself."]


# ----------------------------------------------------------------------------- synthesize


def cmd_synthesize(args) -> int:
    from pulid_flux.dataset.aitoolkit import TrainingConfig
    from pulid_flux.dataset.caption import check_trigger
    from pulid_flux.dataset.cli import build_vlm
    from pulid_flux.images import load_rgb
    from pulid_flux.synthesis import (KEPT, SAMPLE_VIEWS, UNVERIFIED, FilterSettings, candidate_file, class_phrase,
                                      default_view_plan, finish_set, grounding_file, judge_candidates,
                                      load_view_plan, plan_candidates, tiny_view_plan, write_grounding_images,
                                      write_training_images)
    from pulid_flux.synthesis import grounding_plan as grounding_items

    request, portrait = _prepared(args, "portrait")
    out = request.out
    trigger = check_trigger(args.trigger)
    phrase = class_phrase(trigger, args.class_phrase)
    views = load_view_plan(args.views) if args.views else (tiny_view_plan() if args.tiny else default_view_plan())
    n, k = _counts(args)
    seeds = list(range(args.seed, args.seed + n))
    overrides = _overrides(args)
    info = run_info(request, what="dataset synthesize", source_file=portrait,
                    selection={"views": args.views, "candidates": n, "keep": k, "seed": args.seed,
                               "overrides": list(args.overrides)})
    plan = candidates_plan(request, views, seeds, phrase, workflow_path=args.workflow, overrides=overrides, info=info,
                           file_for=candidate_file)
    if args.dry_run:
        return _dry_run(plan)
    vlm = build_vlm(args)
    engine = _local_engine(args)
    subject = _subject(request, engine, required=not args.tiny)
    filter_settings = FilterSettings(per_view=k, verify=not args.tiny)
    candidates = plan_candidates(views, seeds)
    with execution.exclusive(out), Servers(args) as servers:
        result = servers.run(plan, "views")
        if result.interrupted:
            return EXIT_INTERRUPTED
        judge_candidates(out, candidates, engine, subject, filter_settings)
        written = write_training_images(out, candidates, trigger, text=args.caption, vlm=vlm,
                                        portrait=load_rgb(portrait))
        captions = [c.extra["caption"] for c in candidates if c.status in (KEPT, UNVERIFIED)]
        items = grounding_items(captions, len(captions) if args.grounding is None else args.grounding, trigger, phrase)
        for item in items:
            item.path = grounding_file(item.name)
        grounding = grounding_plan(request, items, workflow_path=args.base_workflow, overrides=overrides, before=plan)
        grounded = servers.run(grounding, "grounding") if items else None
        if grounded is not None and grounded.interrupted:
            return EXIT_INTERRUPTED
        written += write_grounding_images(out, items, engine, subject)
        training = TrainingConfig(steps=args.steps, lr=args.lr, rank=args.rank, alpha=args.rank,
                                  save_every=args.save_every, sample_every=args.save_every)
        summary = finish_set(out, trigger=trigger, views=views, candidates=candidates, grounding=items,
                             engine_name=engine.name, settings=filter_settings, written=written, training=training,
                             sample_prompts=[v.prompt(trigger) for v in SAMPLE_VIEWS],
                             extra_record={"portrait": str(portrait), "tiny": args.tiny, "seeds": seeds,
                                           "class_phrase": phrase},
                             notes=_tiny_notes(args))
        write_sweep_spec(out / SWEEP_SPEC, trigger=trigger, portrait=portrait, views=SAMPLE_VIEWS)
    log.info("%d kept, %d unverified, %d grounding image(s); report: %s", summary.kept, summary.unverified,
             summary.grounding, out / "report.md")
    if result.missing or (grounded is not None and grounded.missing):
        log.warning("some jobs did not finish; run the same command again to complete the set")
        return EXIT_INCOMPLETE
    if not summary.trained:
        log.error("no candidate passed the filter; see %s for each one's reason", out / "report.md")
        return EXIT_INCOMPLETE
    return EXIT_OK


def write_sweep_spec(path: Path, *, trigger: str, portrait: Path, views) -> Path:
    """An ablation spec whose prompts are the sample prompts (the checkpoint sweep's ``--spec``; also
    runnable by ``ablate``): the shipped spec's configs, this subject's portrait."""
    import yaml

    spec = yaml.safe_load((WORKFLOWS_DIR / "ablation.yaml").read_text(encoding="utf-8"))
    slug = "".join(ch if ch.isalnum() else "_" for ch in trigger).strip("_").lower() or "identity"
    spec.update(name=f"{slug}_samples", description=f"The sample prompts of the {trigger!r} training set.",
                workflows_dir=str(WORKFLOWS_DIR), reference=str(portrait),
                prompts=[{"tag": v.name, "text": v.prompt(trigger), "composition": v.framing} for v in views])
    path.write_text("# Written by pulid-studio dataset synthesize: the training set's sample prompts.\n"
                    + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- canonicalize


def cmd_canonicalize(args) -> int:
    from pulid_flux.synthesis import (KEPT, UNVERIFIED, FilterSettings, candidate_file, canonical_view, class_phrase,
                                      finish_set, judge_candidates, plan_candidates)

    request, photo = _prepared(args, "photo")
    out = request.out
    phrase = class_phrase(args.trigger, args.class_phrase)
    view = canonical_view()
    n, _ = _counts(args)
    seeds = list(range(args.seed, args.seed + n))
    info = run_info(request, what="dataset canonicalize", source_file=photo,
                    selection={"candidates": n, "seed": args.seed, "overrides": list(args.overrides)})
    plan = candidates_plan(request, [view], seeds, phrase, workflow_path=args.workflow, overrides=_overrides(args),
                           info=info, file_for=candidate_file)
    if args.dry_run:
        return _dry_run(plan)
    engine = _local_engine(args)
    subject = _subject(request, engine, required=not args.tiny)
    filter_settings = FilterSettings(per_view=1, verify=not args.tiny)
    candidates = plan_candidates([view], seeds)
    with execution.exclusive(out), Servers(args) as servers:
        result = servers.run(plan, "portraits")
        if result.interrupted:
            return EXIT_INTERRUPTED
        judge_candidates(out, candidates, engine, subject, filter_settings)
        chosen = next((c for c in candidates if c.status in (KEPT, UNVERIFIED)), None)
        target = out / PORTRAIT_FILE
        if target.is_file():
            target.unlink()
        if chosen is not None:
            shutil.copyfile(out / chosen.path, target)
            chosen.extra.update(output=PORTRAIT_FILE)
        finish_set(out, trigger=args.trigger, views=[view], candidates=candidates, grounding=[],
                   engine_name=engine.name, settings=filter_settings, written=[], title="Canonical portrait",
                   training_config=False, extra_record={"photo": str(photo), "tiny": args.tiny,
                                                        "portrait": PORTRAIT_FILE if chosen else None},
                   notes=_canonical_notes(chosen, args))
    if chosen is None:
        log.error("no portrait passed the identity and pose check; see %s", out / "report.md")
        return EXIT_INCOMPLETE
    log.info("portrait: %s (%s); report: %s", target, chosen.status, out / "report.md")
    return EXIT_INCOMPLETE if result.missing else EXIT_OK


def _canonical_notes(chosen, args) -> list[str]:
    notes = _tiny_notes(args)
    if chosen is None:
        notes.append("No candidate passed: no `portrait.png` was written. Try more `--candidates` or another photo.")
    else:
        notes.append(f"`{PORTRAIT_FILE}` is `{chosen.path}` ({chosen.status}"
                     + (f", identity {chosen.similarity:.3f}" if chosen.similarity is not None else "") + ").")
    return notes

