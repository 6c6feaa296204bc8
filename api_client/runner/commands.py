"""``pulid-studio run | ablate | report``: the runner's command line (arguments, printing, exit codes).

Every plan source in :data:`SOURCES` becomes a sub-command: its own arguments, then the options
every run shares (``--out``, ``--server``, ``--launch``, ``--tiny``, ...), and for sources that
report, the scoring options. The handler builds the plan with the source, hands it to the execution
engine and, for reporting sources, to the report writers. ``report OUT`` scores a finished folder
again, whatever source produced it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..cli_errors import EXIT_INCOMPLETE, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK
from ..progress import Display, open_display
from ..transport import DEFAULT_CONNECT_TIMEOUT
from . import execution, reporting
from .errors import RunnerError
from .plan import RunPlan
from .reporting.sweep import report_sweep
from .sources import PlanSource, RunRequest
from .sources.ablation import ABLATE, RUN
from .sources.sweep import SWEEP

log = logging.getLogger("api_client.runner")

#: The plan sources offered on the command line, one sub-command each.
SOURCES: tuple[PlanSource, ...] = (RUN, ABLATE, SWEEP)
#: The report writers of sources with their own report (``PlanSource.report_kind`` and
#: ``RunInfo.source``); every other reporting source gets the gallery report.
REPORT_WRITERS = {"sweep": report_sweep}
EXIT_ERROR = EXIT_INPUT  # the name earlier versions exported (see api_client.cli_errors for every code)

__all__ = ["EXIT_ERROR", "EXIT_INCOMPLETE", "EXIT_INTERRUPTED", "EXIT_OK", "SOURCES", "RunnerError", "add_parsers",
           "main"]


# ----------------------------------------------------------------------------- argument parsing


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register one sub-command per plan source, and ``report``, on a ``pulid-studio`` parser."""
    for source in SOURCES:
        parser = subparsers.add_parser(source.command, help=source.help, description=source.description)
        source.add_arguments(parser)
        _add_run_arguments(parser, several_references=source.several_references)
        if source.report:
            if source.report_kind == "gallery":
                _add_score_arguments(parser)
            parser.add_argument("--no-report", action="store_true", help="stop after generating the images")
        parser.set_defaults(func=_interruptible(_generate_command(source)))

    report = subparsers.add_parser(
        "report", help="score an ablation output folder and (re)write its report",
        description="Score OUT/gallery against the reference and write OUT/report.md (settings from OUT/run.json).")
    report.add_argument("out", help="the output folder of a run/ablate command")
    report.add_argument("--reference", action="append", default=[], metavar="IMAGE",
                        help="reference photo(s) (default: the run's)")
    _add_score_arguments(report)
    report.set_defaults(func=_interruptible(cmd_report))


def _add_run_arguments(parser: argparse.ArgumentParser, *, several_references: bool = False) -> None:
    parser.add_argument("--out", required=True, help="output folder (gallery/, manifest.jsonl, report.md)")
    parser.add_argument("--server", action="append", default=[], metavar="URL",
                        help="ComfyUI server to use (repeatable; jobs are spread over all of them)")
    parser.add_argument("--launch", metavar="COMFYUI_PATH",
                        help="start a local ComfyUI from this checkout for the run (stopped afterwards)")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke test: tiny random-weight models, a synthetic reference face; images are noise")
    parser.add_argument("--tiny-models", metavar="DIR", default=None,
                        help="where --tiny builds its models (default ~/.cache/pulid_studio/tiny_models)")
    parser.add_argument("--reference", action="extend" if several_references else "append", default=[],
                        nargs="+" if several_references else None, metavar="IMAGE",
                        help="reference photo(s): the first feeds PuLID, all are used for scoring "
                             "(default: the spec's reference)")
    parser.add_argument("--lora-dir", action="append", default=[], metavar="DIR",
                        help="with --launch: the launched ComfyUI also lists the LoRA files of DIR, in place and "
                             "first (no copy, no link), e.g. a training's checkpoint folder (repeatable)")
    parser.add_argument("--connect-timeout", type=_positive_float, default=DEFAULT_CONNECT_TIMEOUT, metavar="SECONDS",
                        help="give up on a server that does not accept the connection within this time (default "
                             f"{DEFAULT_CONNECT_TIMEOUT:g}; a refused connection or an unknown host fails at once)")
    parser.add_argument("--depth", type=int, default=2, help="prompts kept queued per server (default 2)")
    parser.add_argument("--dry-run", action="store_true", help="list the jobs and their state, run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _add_score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", action="append", default=[], metavar="SPEC",
                        help="scoring engine: dlib, insightface[:pack], arcface:<file.onnx> (repeatable; default "
                             "insightface when a models folder is known, else dlib)")
    parser.add_argument("--models-dir", default=None, metavar="DIR",
                        help="ComfyUI models folder holding insightface/models/<pack> for scoring")
    parser.add_argument("--force-report", action="store_true", help="score again even if nothing changed")


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


# ----------------------------------------------------------------------------- commands


def _generate_command(source: PlanSource):
    def command(args) -> int:
        return generate(args, source)
    command.__name__ = f"cmd_{source.command}"
    return command


def _request(args) -> RunRequest:
    tiny_models = None
    if args.tiny:
        from .execution.launch import DEFAULT_TINY_MODELS

        tiny_models = Path(args.tiny_models).expanduser().resolve() if args.tiny_models else DEFAULT_TINY_MODELS
    return RunRequest(out=Path(args.out), references=tuple(Path(p) for p in args.reference), tiny=args.tiny,
                      tiny_models=tiny_models, launch=Path(args.launch) if args.launch else None)


def generate(args, source: PlanSource) -> int:
    """Build the source's plan, run it (resumable) and, for reporting sources, write the report."""
    _configure_logging(args.quiet)
    started = time.monotonic()
    with execution.discard_if_nothing_done(Path(args.out)):
        plan = source.build(args, _request(args))
        if source.report and source.report_kind == "gallery":
            plan = replace(plan, info=replace(plan.info, engines=tuple(args.engine)))
        if args.dry_run:
            return _print_dry_run(plan)
        servers = execution.ServerOptions(urls=tuple(args.server), launch=Path(args.launch) if args.launch else None,
                                          depth=args.depth, quiet=args.quiet, lora_dirs=_lora_dirs(args),
                                          connect_timeout=args.connect_timeout, title=source.command)
        # Live bars on a terminal, log lines otherwise; closed before the closing summary line.
        with execution.exclusive(plan.out), open_display(quiet=args.quiet) as display:
            result = execution.run_plan(plan, servers, display)
            if source.report and not args.no_report and not result.interrupted:
                if source.report_kind == "gallery":
                    _report_after_run(args, plan, result.finished, display)
                else:
                    REPORT_WRITERS[source.report_kind](
                        plan.out, plan.info,
                        [result.finished[j.job_id] for j in plan.jobs if j.job_id in result.finished],
                        force=args.force_report, models_dir=args.models_dir, progress=_scoring_bar(display))
    missing = result.missing
    log.info("finished in %.1fs: %d of %d job(s) done%s", time.monotonic() - started,
             len(plan.jobs) - len(missing), len(plan.jobs),
             f"; {len(missing)} not done (run the same command again to finish them)" if missing else "")
    return EXIT_INTERRUPTED if result.interrupted else EXIT_INCOMPLETE if missing else EXIT_OK


def _lora_dirs(args) -> tuple[Path, ...]:
    folders = tuple(Path(d).expanduser().resolve() for d in args.lora_dir)
    for folder in folders:
        if not folder.is_dir():
            raise RunnerError(f"--lora-dir {folder}: not a folder")
    if folders and not args.launch:
        log.warning("--lora-dir only reaches a server this command launches (--launch); a --server must list "
                    "those LoRA files itself (its models/loras or extra_model_paths.yaml)")
    return folders


def _print_dry_run(plan: RunPlan) -> int:
    finished = execution.finished_jobs(plan.out)
    for job in plan.jobs:
        state = "done" if job.job_id in finished else "todo"
        params = " ".join(f"{k}={v}" for k, v in job.params)
        sys.stdout.write(f"{state:4} {job.job_id} {job.label} [{job.pose}, {job.rule}] {params}\n")
    sys.stdout.write(f"{len(plan.jobs)} jobs, {sum(j.job_id in finished for j in plan.jobs)} done\n")
    return EXIT_OK


def _report_after_run(args, plan: RunPlan, finished: dict, display: Display) -> None:
    rows = [j for j in plan.all_jobs if j.job_id in finished]
    if not rows:
        log.warning("no finished image to score; no report written")
        return
    engines, models_dir = reporting.scoring_engines(args.engine, args.models_dir, plan.info)
    reporting.make_report(plan.out, info=plan.info, engines=engines, models_dir=models_dir,
                          records=[finished[j.job_id] for j in rows], reference=plan.reference.files,
                          force=args.force_report, total_jobs=len(plan.all_jobs), selected_jobs=len(plan.jobs),
                          progress=_scoring_bar(display))


def _scoring_bar(display: Display):
    """A bar for the scoring on a live display (off a terminal the scorer logs each image)."""
    return display.callback(unit="image") if display.live else None


def cmd_report(args) -> int:
    _configure_logging(False)
    out = Path(args.out)
    info = execution.read_run_info(out)
    records = execution.gallery_records(out)
    if info.source in REPORT_WRITERS:
        with execution.exclusive(out), open_display() as display:
            REPORT_WRITERS[info.source](out, info, records, force=bool(args.force_report or args.reference),
                                        models_dir=args.models_dir, reference=[Path(p) for p in args.reference],
                                        progress=_scoring_bar(display))
        return EXIT_OK
    engines, models_dir = reporting.scoring_engines(args.engine, args.models_dir, info)
    reference = [Path(p) for p in (args.reference or info.reference)]
    with execution.exclusive(out), open_display() as display:
        reporting.make_report(out, info=info, engines=engines, models_dir=models_dir, records=records,
                              reference=reference, force=bool(args.force_report or args.reference or args.engine),
                              total_jobs=None, progress=_scoring_bar(display))
    return EXIT_OK


def _configure_logging(quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO
    for name in ("api_client.runner", "api_client.runner.progress"):
        logging.getLogger(name).setLevel(level)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m api_client.runner run|ablate|report ...``: the ``pulid-studio`` command line (its
    argument errors, messages and exit codes)."""
    from ..cli import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else list(argv))
