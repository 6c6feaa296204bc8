"""Runs the scheduler with fake servers under the progress display, as a command would.

Started by tests/test_progress_display.py in a pseudo-terminal (live bars) or with a pipe (log
lines)::

    python tests/progress_driver.py jobs --jobs 8 --servers 2 --ticks 5 --delay 0.05 [--fail b1j1]
    python tests/progress_driver.py stage --items 20 --delay 0.05
    python tests/progress_driver.py cli --out DIR --ticks 4 --delay 0.05     # `run` of the shipped spec

Exit status 0 when every job finished, 1 when some failed, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))        # runner_fakes
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # the pack (api_client)

from runner_fakes import FakeServer, RecordingSink, make_jobs  # noqa: E402

from api_client.progress import open_display  # noqa: E402
from api_client.runner.execution.scheduler import Scheduler  # noqa: E402
from pulid_flux.progress import PROGRESS_LINE  # noqa: E402

log = logging.getLogger("api_client.runner")


def run_jobs(args) -> int:
    servers = [FakeServer(f"http://gpu-{chr(97 + i)}:8188", ticks=args.ticks, delay=args.delay,
                          fail=frozenset(args.fail)) for i in range(args.servers)]
    jobs = make_jobs(args.jobs // 2, 2)
    sink = RecordingSink()
    with open_display(quiet=args.quiet, refresh_per_second=20) as display:
        progress = display.jobs(len(jobs), [s.name for s in servers], title="run")
        log.info("%d job(s) to run", len(jobs))
        outcome = Scheduler(servers, sink, depth=2, poll_interval=0.05, progress=progress).run(jobs)
    if outcome.was_interrupted:
        log.warning("interrupted: %d job(s) cancelled", len(outcome.interrupted))
        return 130
    log.info("finished: %d done, %d failed", len(sink.done_ids), len(sink.failed_ids))
    return 0 if outcome.complete else 1


def run_stage(args) -> int:
    with open_display(quiet=args.quiet, refresh_per_second=20) as display:
        stage = display.stage("score", total=args.items, unit="image")
        for i in range(args.items):
            time.sleep(args.delay)
            stage.advance(item=f"photo_{i:02d}.jpg")
            log.info("[%d/%d] photo_%02d.jpg scored", i + 1, args.items, i, extra=PROGRESS_LINE)
    log.info("scored %d images", args.items)
    return 0


def run_cli(args) -> int:
    """The runner's own command line (``run workflows/ablation.yaml``) on two fake servers."""
    from runner_fakes import FakeComfyBackends, png_bytes

    from api_client.runner import main as runner_main
    from api_client.runner.execution import comfy_backend

    out = Path(args.out)
    reference = out.parent / "reference.png"
    reference.write_bytes(png_bytes(1, 64))
    comfy_backend.ComfyBackend = FakeComfyBackends(ticks=args.ticks, delay=args.delay)
    spec = Path(__file__).resolve().parents[1] / "workflows" / "ablation.yaml"
    return runner_main(["run", str(spec), "--out", str(out), "--reference", str(reference), "--max-prompts", "2",
                        "--server", "http://gpu-a:8188", "--server", "http://gpu-b:8188"]
                       + (["--quiet"] if args.quiet else []))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("jobs", "stage", "cli"))
    parser.add_argument("--out")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--ticks", type=int, default=5)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--fail", action="append", default=[])
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    if args.mode == "cli":
        return run_cli(args)
    # As the runner's CLI sets it up: one stderr handler, the runner's loggers at INFO.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name in ("api_client.runner", "api_client.runner.progress"):
        logging.getLogger(name).setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        return run_jobs(args) if args.mode == "jobs" else run_stage(args)
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
