"""``pulid-studio run | ablate | report``: the command-line side of the runner.

* ``run SPEC``: generate every job of the spec on the servers (resumable), no scoring.
* ``ablate SPEC``: ``run``, then score every config and write ``OUT/report.md``.
* ``report OUT``: score an existing output folder again and rewrite the report.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ComfyClientError, OverrideError
from ..progress import open_display
from .jobs import Job, Selection, expand_jobs
from .manifest import (
    RunManifest,
    write_atomic,
    write_gallery_manifest,
    write_json_atomic,
)
from .spec import Spec, SpecError, load_spec

log = logging.getLogger("api_client.runner")

RUN_INFO = "run.json"
REFERENCE_DIR = "reference"
# The reference goes to the input folder's top level: LoadImage's choices list only those files.
UPLOAD_SUBFOLDER = ""
EXIT_OK, EXIT_INCOMPLETE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


class RunnerError(ComfyClientError):
    """A problem with the command line or the environment (no server, no reference, ...)."""


# ----------------------------------------------------------------------------- argument parsing


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``run``, ``ablate`` and ``report`` on a ``pulid-studio`` sub-command parser."""
    run = subparsers.add_parser(
        "run", help="generate every job of an ablation spec (resumable)",
        description="Run every job (config x prompt x seed x sweep) of an ablation spec on one or more ComfyUI "
                    "servers; finished jobs are skipped on a re-run.")
    _add_run_arguments(run)
    run.set_defaults(func=_interruptible(cmd_run))

    ablate = subparsers.add_parser(
        "ablate", help="run an ablation spec, then score it and write OUT/report.md",
        description="Generate the spec's gallery (resumable, see `run`), score every config against the reference "
                    "and write CSVs, a grid, a plot and OUT/report.md.")
    _add_run_arguments(ablate)
    _add_score_arguments(ablate)
    ablate.add_argument("--no-report", action="store_true", help="stop after generating the images")
    ablate.set_defaults(func=_interruptible(cmd_ablate))

    report = subparsers.add_parser(
        "report", help="score an ablation output folder and (re)write its report",
        description="Score OUT/gallery against the reference and write OUT/report.md (settings from OUT/run.json).")
    report.add_argument("out", help="the output folder of a run/ablate command")
    report.add_argument("--reference", action="append", default=[], metavar="IMAGE",
                        help="reference photo(s) (default: the run's)")
    _add_score_arguments(report)
    report.set_defaults(func=_interruptible(cmd_report))


def _interruptible(handler):
    """Ctrl-C outside the scheduler (launching, scoring) ends the command with 130, not a traceback;
    SIGTERM is handled like Ctrl-C, so a terminated run still cancels its prompts, records them and
    stops the server it launched."""
    def run(args) -> int:
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            return handler(args)
        except KeyboardInterrupt:
            log.warning("interrupted")
            return EXIT_INTERRUPTED
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    run.__name__ = handler.__name__
    return run


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="ablation spec (YAML), e.g. workflows/ablation.yaml")
    parser.add_argument("--out", required=True, help="output folder (gallery/, manifest.jsonl, report.md)")
    parser.add_argument("--server", action="append", default=[], metavar="URL",
                        help="ComfyUI server to use (repeatable; jobs are spread over all of them)")
    parser.add_argument("--launch", metavar="COMFYUI_PATH",
                        help="start a local ComfyUI from this checkout for the run (stopped afterwards)")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke test: tiny random-weight models, a synthetic reference face; images are noise")
    parser.add_argument("--tiny-models", metavar="DIR", default=None,
                        help="where --tiny builds its models (default ~/.cache/pulid_studio/tiny_models)")
    parser.add_argument("--reference", action="append", default=[], metavar="IMAGE",
                        help="reference photo(s): the first feeds PuLID, all are used for scoring "
                             "(default: the spec's reference)")
    parser.add_argument("--max-prompts", type=int, default=None, metavar="N", help="only the first N prompts")
    parser.add_argument("--seeds", default=None, metavar="S1,S2", help="seeds to use instead of the spec's")
    parser.add_argument("--configs", default=None, metavar="A,B", help="only these configs")
    parser.add_argument("--sweep", action="append", default=[], metavar="NAME",
                        help="enable a sweep the spec defines (repeatable)")
    parser.add_argument("--no-sweeps", action="store_true", help="ignore every sweep (one job per config x prompt x seed)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="override an input in every config, e.g. --set Latent.width=512 (repeatable)")
    parser.add_argument("--depth", type=int, default=2, help="prompts kept queued per server (default 2)")
    parser.add_argument("--dry-run", action="store_true", help="list the jobs and their state, run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def _add_score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", action="append", default=[], metavar="SPEC",
                        help="scoring engine: dlib, insightface[:pack], arcface:<file.onnx> (repeatable; default "
                             "insightface when a models folder is known, else dlib)")
    parser.add_argument("--models-dir", default=None, metavar="DIR",
                        help="ComfyUI models folder holding insightface/models/<pack> for scoring")
    parser.add_argument("--force-report", action="store_true", help="score again even if nothing changed")


# ----------------------------------------------------------------------------- settings


@dataclass
class Reference:
    files: list[Path]                 # for scoring
    data: bytes | None = None         # the image PuLID gets
    upload_name: str | None = None    # content-addressed name on the servers
    tiny: bool = False

    @property
    def image_value(self) -> str | None:
        if not self.upload_name:
            return None
        return f"{UPLOAD_SUBFOLDER}/{self.upload_name}" if UPLOAD_SUBFOLDER else self.upload_name


@dataclass
class Plan:
    spec: Spec
    out: Path
    selection: Selection
    jobs: list[Job]
    all_jobs: list[Job]               # the selection without --max-prompts (what the gallery may hold)
    reference: Reference
    tiny_models: Path | None
    settings: dict = field(default_factory=dict)


def _parse_csv_ints(text: str | None, what: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise RunnerError(f"{what}: expected comma-separated integers, got {text!r}") from None
    if not values:
        raise RunnerError(f"{what}: expected at least one integer")
    return values


def _resolve_reference(args, spec: Spec, out: Path) -> Reference:
    from .launch import tiny_reference_png, upload_name

    if args.reference:
        files = [Path(p) for p in args.reference]
    elif spec.reference:
        files = list(spec.reference)
    elif args.tiny:
        path = out / REFERENCE_DIR / "tiny_reference.png"
        # Painting it imports pulid_flux.tiny (and torch): reuse the copy of an earlier run.
        data = path.read_bytes() if path.is_file() else None
        if not data:
            data = tiny_reference_png()
            write_atomic(path, data)
        return Reference(files=[path.resolve()], data=data, upload_name=upload_name(data, ".png"), tiny=True)
    else:
        return Reference(files=[])
    for path in files:
        if not path.is_file():
            raise RunnerError(f"reference image {path} not found")
    data = files[0].read_bytes()
    return Reference(files=[p.resolve() for p in files], data=data, upload_name=upload_name(data, files[0].suffix or ".png"))


def build_plan(args) -> Plan:
    from ..overrides import parse_override

    spec = load_spec(args.spec)
    out = Path(args.out)
    if args.max_prompts is not None and args.max_prompts < 1:
        raise RunnerError(f"--max-prompts must be >= 1, got {args.max_prompts}")
    try:
        overrides = tuple(parse_override(text) for text in args.overrides)
    except OverrideError as exc:
        raise RunnerError(f"--set: {exc}") from None
    reference = _resolve_reference(args, spec, out)
    configs = tuple(c.strip() for c in args.configs.split(",") if c.strip()) if args.configs else None
    selection = Selection(max_prompts=args.max_prompts, seeds=_parse_csv_ints(args.seeds, "--seeds"), configs=configs,
                          sweeps=tuple(args.sweep), no_sweeps=args.no_sweeps, overrides=overrides, tiny=args.tiny,
                          reference_image=reference.image_value)
    try:
        jobs = expand_jobs(spec, selection)
        all_jobs = expand_jobs(spec, Selection(**{**selection.__dict__, "max_prompts": None}))
    except OverrideError as exc:
        raise RunnerError(f"--set does not fit every config: {exc}") from None
    needs_reference = [j for j in jobs if _uses_reference(spec, j)]
    if needs_reference and reference.data is None:
        raise RunnerError(f"config {needs_reference[0].config} needs a reference photo (node "
                          f"{spec.inputs['reference']}): pass --reference IMAGE or set 'reference:' in {spec.path}")
    tiny_models = None
    if args.tiny:
        from .launch import DEFAULT_TINY_MODELS

        tiny_models = Path(args.tiny_models).expanduser().resolve() if args.tiny_models else DEFAULT_TINY_MODELS
    settings = {"spec": str(Path(args.spec).resolve()), "spec_name": spec.name, "tiny": bool(args.tiny),
                "tiny_models": str(tiny_models) if tiny_models else None,
                "reference": [str(p) for p in reference.files],
                "launch": str(Path(args.launch).resolve()) if args.launch else None,
                "selection": {"max_prompts": args.max_prompts, "seeds": selection.seeds, "configs": configs,
                              "sweeps": list(args.sweep), "no_sweeps": args.no_sweeps, "overrides": list(args.overrides)},
                "configs": sorted({j.config for j in all_jobs}, key=[c.name for c in spec.configs].index),
                "rules": _rule_notes(spec, jobs)}
    return Plan(spec=spec, out=out, selection=selection, jobs=jobs, all_jobs=all_jobs, reference=reference,
                tiny_models=tiny_models, settings=settings)


def _uses_reference(spec: Spec, job: Job) -> bool:
    from .spec import has_node

    return has_node(job.graph, spec.inputs["reference"].node)


def _rule_notes(spec: Spec, jobs: Sequence[Job]) -> list[str]:
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


# ----------------------------------------------------------------------------- commands


def cmd_run(args) -> int:
    return _generate(args, report=False)


def cmd_ablate(args) -> int:
    return _generate(args, report=not args.no_report)


def _configure_logging(quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO
    for name in ("api_client.runner", "api_client.runner.progress"):
        logging.getLogger(name).setLevel(level)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@contextlib.contextmanager
def _exclusive(out: Path):
    """One runner per output folder at a time (two would duplicate jobs)."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".runner.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunnerError(f"another run is writing to {out} (lock {out / '.runner.lock'}); wait for it "
                              "or use another --out") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _generate(args, *, report: bool) -> int:
    _configure_logging(args.quiet)
    started = time.monotonic()
    plan = build_plan(args)
    manifest = RunManifest(plan.out)
    if args.dry_run:
        return _dry_run(plan, manifest)
    with _exclusive(plan.out):
        finished = manifest.finished()
        todo = [j for j in plan.jobs if j.job_id not in finished]
        log.info("%d job(s) in %s: %d already done, %d to run", len(plan.jobs), plan.spec.path,
                 len(plan.jobs) - len(todo), len(todo))
        _move_strays(plan)
        write_json_atomic(plan.out / RUN_INFO, {**plan.settings, "engines": getattr(args, "engine", [])})
        code = EXIT_OK
        # Live bars on a terminal (log lines otherwise); closed before the closing summary line.
        with open_display(quiet=args.quiet) as display:
            try:
                if todo:
                    code = _run_jobs(args, plan, manifest, todo, display)
            finally:
                finished = manifest.finished()
                write_gallery_manifest(plan.out, plan.all_jobs, finished)
            missing = [j for j in plan.jobs if j.job_id not in finished]
            if missing and code == EXIT_OK:
                code = EXIT_INCOMPLETE
            if report and code != EXIT_INTERRUPTED:
                _report_after_run(args, plan, finished, display)
    log.info("finished in %.1fs: %d of %d job(s) done%s", time.monotonic() - started,
             len(plan.jobs) - len(missing), len(plan.jobs),
             f"; {len(missing)} not done (run the same command again to finish them)" if missing else "")
    return code


def _dry_run(plan: Plan, manifest: RunManifest) -> int:
    finished = manifest.finished() if manifest.path.is_file() else {}
    for job in plan.jobs:
        state = "done" if job.job_id in finished else "todo"
        params = " ".join(f"{k}={v}" for k, v in job.params)
        sys.stdout.write(f"{state:4} {job.job_id} {job.label} [{job.pose}, {job.rule}] {params}\n")
    sys.stdout.write(f"{len(plan.jobs)} jobs, {sum(j.job_id in finished for j in plan.jobs)} done\n")
    return EXIT_OK


def _move_strays(plan: Plan) -> None:
    """Images in the gallery that no job of this spec produces (an older spec's) would skew the
    scores: they are moved to OUT/stale/."""
    gallery = plan.out / "gallery"
    if not gallery.is_dir():
        return
    known = {j.file for j in plan.all_jobs}
    known_stems = {f[:-len(".png")] for f in known}
    moved = 0
    for path in gallery.glob("*/*"):
        relative = path.relative_to(plan.out).as_posix()
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            path.unlink()  # a half-written image of a killed run (never renamed into place)
            continue
        if path.name.startswith(".") or not path.is_file() or relative in known or path.name == "manifest.json":
            continue
        if relative.rsplit("_i", 1)[0] in known_stems:
            continue  # extra image of a batch
        target = plan.out / "stale" / path.relative_to(gallery)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
        moved += 1
    if moved:
        log.warning("moved %d image(s) that this spec does not produce to %s", moved, plan.out / "stale")


def _run_jobs(args, plan: Plan, manifest: RunManifest, todo: list[Job], display) -> int:
    from .comfy_backend import ComfyBackend
    from .launch import launch, prepare_tiny_models
    from .results import ResultWriter
    from .scheduler import Scheduler, ServerGone

    urls = list(args.server)
    if not urls and not args.launch:
        raise RunnerError("no server: pass --server URL (repeatable) or --launch COMFYUI_PATH")
    with contextlib.ExitStack() as stack:
        if args.launch:
            models_dirs = [prepare_tiny_models(plan.tiny_models)] if args.tiny else [Path(args.launch) / "models"]
            logs = plan.out / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            server = launch(args.launch, models_dirs=models_dirs, single_thread=args.tiny,
                            log_path=logs / f"comfyui-{time.strftime('%Y%m%d-%H%M%S')}.log")
            stack.callback(server.stop)
            urls.insert(0, server.url)
        backends = []
        for url in urls:
            backend = ComfyBackend(url)
            try:
                backend.open()
            except ServerGone as exc:
                log.error("skipping server %s: %s", url, exc)
                continue
            stack.callback(backend.close)
            backends.append(backend)
        if not backends:
            raise RunnerError("none of the servers answers: " + ", ".join(urls))
        backends = _prepare_servers(backends, plan, todo)
        progress = None if args.quiet else display.jobs(len(plan.jobs), [b.name for b in backends],
                                                        already_done=len(plan.jobs) - len(todo),
                                                        title=getattr(args, "command", None) or "jobs")
        scheduler = Scheduler(backends, ResultWriter(manifest), depth=args.depth, progress=progress)
        outcome = scheduler.run(todo)
        log.info("submitted per server: %s", ", ".join(f"{k}: {v}" for k, v in outcome.submissions.items()))
        if outcome.was_interrupted:
            log.warning("interrupted: %d job(s) cancelled; run the same command again to resume", len(outcome.interrupted))
            return EXIT_INTERRUPTED
        return EXIT_OK if outcome.complete else EXIT_INCOMPLETE


def _prepare_servers(backends: list, plan: Plan, todo: list[Job]) -> list:
    """Upload the reference to each server and check it has every node and model file; servers that
    fail the check are dropped (all failing is an error listing what is missing)."""
    from .preflight import PreflightError, check_face_packs, check_graphs

    usable, errors = [], []
    for backend in backends:
        if plan.reference.data is not None:
            answer = backend.client.upload_image(plan.reference.data, filename=plan.reference.upload_name,
                                                 subfolder=UPLOAD_SUBFOLDER, overwrite=True)
            if answer.get("name") != plan.reference.upload_name:
                raise RunnerError(f"{backend.name} stored the reference as {answer.get('name')!r}, expected "
                                  f"{plan.reference.upload_name!r}")
        object_info = backend.client.object_info(refresh=True)
        problems = check_graphs(((job.config, job.graph) for job in todo), object_info)
        listing = _model_listing(backend, "insightface")
        if listing is not None:
            problems += check_face_packs(((job.config, job.graph) for job in todo), listing)
        if problems:
            errors.append(PreflightError(backend.name, problems))
            continue
        usable.append(backend)
    if not usable:
        raise errors[0]
    for error in errors:
        log.error("%s\n(this server is left out)", error)
    return usable


def _model_listing(backend, folder: str) -> list[str] | None:
    """``GET /models/<folder>`` (None when the server cannot list it)."""
    from ..errors import ComfyHTTPError

    try:
        listing = backend.client.http.get_json(f"/models/{folder}")
    except ComfyHTTPError:
        return None
    return [str(f) for f in listing] if isinstance(listing, list) else None


def _report_after_run(args, plan: Plan, finished: dict, display) -> None:
    rows = [j for j in plan.all_jobs if j.job_id in finished]
    if not rows:
        log.warning("no finished image to score; no report written")
        return
    engines, models_dir = _scoring_engines(args, plan.settings)
    records = [finished[j.job_id] for j in rows]
    make_report(plan.out, settings=plan.settings, engines=engines, models_dir=models_dir, records=records,
                reference=plan.reference.files, force=args.force_report, total_jobs=len(plan.all_jobs),
                selected_jobs=len(plan.jobs), progress=display.callback(unit="image") if display.live else None)


def _scoring_engines(args, settings: dict) -> tuple[list[str], Path | None]:
    models_dir = None
    if getattr(args, "models_dir", None):
        models_dir = Path(args.models_dir)
    elif settings.get("tiny") and settings.get("tiny_models"):
        models_dir = Path(settings["tiny_models"])
    elif settings.get("launch"):
        models_dir = Path(settings["launch"]) / "models"
    engines = list(args.engine) or (["insightface"] if models_dir else ["dlib"])
    if settings.get("tiny") and models_dir is not None and not (models_dir / "insightface").is_dir():
        # A --tiny run on remote servers built no models here: the scorer still needs the synthetic pack.
        from pulid_flux.tiny import build_tiny_models

        build_tiny_models(models_dir, include=["insightface"])
    return engines, models_dir


def make_report(out: Path, *, settings: dict, engines: list[str], models_dir: Path | None,
                records: list[dict], reference: list[Path], force: bool, total_jobs: int | None,
                selected_jobs: int | None = None, progress=None) -> Path | None:
    from .report import report_fingerprint, report_is_current, score, write_report
    from .report_html import REPORT_HTML, write_report_html

    if not reference:
        raise RunnerError("scoring needs reference photo(s): pass --reference IMAGE")
    fingerprint = report_fingerprint({r["job_id"]: r for r in records},
                                     {"engines": engines, "models_dir": str(models_dir), "reference": list(map(str, reference))})
    if not force and report_is_current(out, fingerprint) and (out / REPORT_HTML).is_file():
        log.info("report %s is up to date (same images, same scoring settings)", out / "report.md")
        return out / "report.md"
    configs = [c for c in settings.get("configs", []) if (out / "gallery" / c).is_dir()]
    log.info("scoring %d image(s) in %d config(s) with %s", len(records), len(configs), ", ".join(engines))
    try:
        result = score(out, reference=reference, engines=engines, models_dir=models_dir, configs=configs,
                       progress=progress)
    except ImportError:
        raise
    except Exception as exc:  # engines and images raise their own error types; the run itself is intact
        raise RunnerError(f"scoring failed: {type(exc).__name__}: {exc}. The images and manifest are complete; "
                          f"fix this and run `report {out}` (options --engine, --reference, --models-dir)") from exc
    path = write_report(out, result=result, spec_name=settings.get("spec_name", "?"), spec_path=settings.get("spec", "?"),
                        tiny=bool(settings.get("tiny")), reference=reference, records=records,
                        rules=settings.get("rules", []), fingerprint=fingerprint, total_jobs=total_jobs,
                        selected_jobs=selected_jobs)
    write_report_html(out, result=result, spec_name=settings.get("spec_name", "?"), spec_path=settings.get("spec", "?"),
                      tiny=bool(settings.get("tiny")), reference=reference, records=records,
                      rules=settings.get("rules", []))
    log.info("report written: %s (and %s)", path, out / REPORT_HTML)
    return path


def cmd_report(args) -> int:
    import json

    from .manifest import GALLERY_MANIFEST

    _configure_logging(False)
    out = Path(args.out)
    try:
        settings = json.loads((out / RUN_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunnerError(f"{out / RUN_INFO} is missing or unreadable ({exc}); is {out} the --out of a run?") from None
    gallery_manifest = out / "gallery" / GALLERY_MANIFEST
    try:
        rows = json.loads(gallery_manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunnerError(f"{gallery_manifest} is missing or unreadable ({exc})") from None
    finished = RunManifest(out).finished()
    records = [finished[r["job_id"]] for r in rows if r.get("job_id") in finished]
    engines, models_dir = _scoring_engines(args, settings)
    reference = [Path(p) for p in (args.reference or settings.get("reference") or [])]
    with _exclusive(out), open_display() as display:
        make_report(out, settings=settings, engines=engines, models_dir=models_dir, records=records,
                    reference=reference, force=bool(args.force_report or args.reference or args.engine),
                    total_jobs=None, progress=display.callback(unit="image") if display.live else None)
    return EXIT_OK


def run_command(args) -> int:
    """Dispatch with the runner's errors turned into exit codes and messages."""
    try:
        return int(args.func(args) or 0)
    except (SpecError, RunnerError) as exc:
        log.error("%s", exc)
        return EXIT_ERROR
    except ComfyClientError as exc:
        log.error("%s", exc)
        return EXIT_ERROR
    except KeyboardInterrupt:
        log.warning("interrupted")
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api_client.runner",
                                     description="Run ablation specs on ComfyUI servers and report on them.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    add_parsers(subparsers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    return run_command(args)
