"""Progress of long commands: live bars on a terminal, today's log lines everywhere else.

On a terminal (stderr is a TTY) the display draws, below the scrolling log, an overall bar with
the ETA and one line per ComfyUI server (the job it runs, that job's sampler step from ComfyUI's
``progress`` websocket events, our prompts queued behind it, done and failed counts), or one bar
per stage for loops on this machine (scoring, dataset preparation). Not a terminal (CI, a pipe,
``--quiet``, or ``PULID_STUDIO_PROGRESS=lines``): nothing is drawn and the commands log what they
always logged.

Plugging a command in (the display is a context manager; leave it before printing results)::

    from api_client.progress import open_display

    with open_display(quiet=args.quiet) as display:
        # jobs on servers: the Scheduler's progress object
        progress = display.jobs(len(jobs), [b.name for b in backends], already_done=skipped, title="sweep")
        Scheduler(backends, sink, progress=progress).run(todo)

        # a loop here: one bar
        stage = display.stage("synthesize", total=len(items), unit="image")
        for item in items:
            ...
            stage.advance(item=item.name)

        # a pulid_flux function taking progress(done, total, stage_name): one bar per stage name
        prepare_dataset(..., progress=display.callback(unit="photo"))

Log calls that only repeat what a bar shows pass ``extra=PROGRESS_LINE`` (from
``pulid_flux.progress``): hidden while bars are drawn, logged as before otherwise.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from .lines import LogJobProgress
from .state import JobBoard, JobProgress, ServerLine, Stage, format_duration

__all__ = ["Display", "JobBoard", "JobProgress", "ServerLine", "Stage", "format_duration",
           "live_wanted", "open_display"]

#: ``lines`` turns the bars off (log lines even on a terminal).
ENV_MODE = "PULID_STUDIO_PROGRESS"

ProgressCallback = Callable[[int, int, str], None]


class Display:
    """Log-line mode (the base): ``jobs`` log one line per finished job, stages only count."""

    live = False

    def __init__(self, *, clock=time.monotonic):
        self.clock = clock
        self._depth = 0

    def __enter__(self) -> Display:
        global _current
        if self._depth == 0:
            self._start()
            _current = self
        self._depth += 1
        return self

    def __exit__(self, *exc_info) -> None:
        global _current
        self._depth -= 1
        if self._depth == 0:
            _current = None
            self._stop()

    def _start(self) -> None:
        pass

    def _stop(self) -> None:
        pass

    def _add(self, part):
        return part

    def jobs(self, total: int, servers: list[str], *, already_done: int = 0, title: str = "jobs") -> JobProgress:
        """The Scheduler's ``progress`` object for ``total`` jobs (``already_done`` of them skipped)."""
        return LogJobProgress(total, servers, already_done=already_done, title=title, clock=self.clock)

    def stage(self, name: str, total: int, *, unit: str = "item") -> Stage:
        """A bar for a loop of ``total`` items; call ``advance(item=...)`` after each."""
        return self._add(Stage(name, total, unit=unit, clock=self.clock))

    def callback(self, *, unit: str = "item", names: dict[str, str] | None = None) -> ProgressCallback:
        """A ``progress(done, total, stage)`` callback (pulid_flux's convention): one bar per stage
        name (shown as ``names[stage]`` when given)."""
        stages: dict[str, Stage] = {}

        def progress(done: int, total: int, stage: str) -> None:
            bar = stages.get(stage)
            if bar is None:
                bar = stages[stage] = self.stage((names or {}).get(stage, stage), total, unit=unit)
            bar.update(done, total)

        return progress


class _LiveDisplay(Display):
    live = True

    def __init__(self, stream: TextIO, *, refresh_per_second: float = 4.0, clock=time.monotonic):
        from .live import LiveDisplay, LiveView

        super().__init__(clock=clock)
        self.view = LiveView()
        self._screen = LiveDisplay(self.view, stream, refresh_per_second=refresh_per_second)

    def _start(self) -> None:
        self._screen.__enter__()

    def _stop(self) -> None:
        self._screen.__exit__(None, None, None)

    def _add(self, part):
        return self.view.add(part)

    def jobs(self, total: int, servers: list[str], *, already_done: int = 0, title: str = "jobs") -> JobProgress:
        return self._add(JobProgress(total, servers, already_done=already_done, title=title, clock=self.clock))


_current: Display | None = None


def live_wanted(stream: TextIO, *, quiet: bool = False) -> bool:
    """Bars only on a real terminal, never with ``--quiet`` or ``PULID_STUDIO_PROGRESS=lines``."""
    if quiet or os.environ.get(ENV_MODE, "").strip().lower() == "lines":
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def open_display(*, quiet: bool = False, stream: TextIO | None = None, refresh_per_second: float = 4.0) -> Display:
    """The display for a command: the one already open (nested commands share it), else live bars
    on ``stream`` (default stderr) when :func:`live_wanted`, else log lines."""
    if _current is not None:
        return _current
    stream = stream if stream is not None else sys.stderr
    if live_wanted(stream, quiet=quiet):
        return _LiveDisplay(stream, refresh_per_second=refresh_per_second)
    return Display()
