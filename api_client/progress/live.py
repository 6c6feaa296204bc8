"""Live progress bars on a terminal, drawn with ``rich``.

The display redraws a block of lines at the bottom of the terminal (a few times a second, from
rich's refresh thread) while log records go on printing above it: the handlers of the root
logger that write to the terminal are pointed at rich's line proxy for as long as the display is
up, and records marked as progress lines (``pulid_flux.progress.PROGRESS_LINE``) are dropped
there because the bars say the same. On exit, also through Ctrl-C, the last frame stays, the cursor is shown
again and the handlers get their streams back.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .lines import short_name
from .state import JobProgress, Stage, format_duration

OVERALL_BAR = 20
STEP_BAR = 8
NAME_WIDTH = 24
JOB_WIDTH = 44


class _HideProgressLines(logging.Filter):
    def __init__(self):
        from pulid_flux.progress import PROGRESS_LINE

        super().__init__()
        self.keys = tuple(PROGRESS_LINE)

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(getattr(record, key, False) for key in self.keys)


class LiveView:
    """What the live display draws: job boards and stages, in the order they were added."""

    def __init__(self):
        self.parts: list = []

    def add(self, part):
        self.parts.append(part)
        return part

    def render(self):
        return Group(*(render_jobs(p) if isinstance(p, JobProgress) else render_stage(p) for p in list(self.parts)))


def _headline(title: str, total: float, completed: float, text: str) -> Table:
    """``title  ━━━━━━╸━━━━  text``: the overall bar of a job board or a stage."""
    line = Table.grid(padding=(0, 1))
    line.add_column(no_wrap=True)
    line.add_column(no_wrap=True)
    line.add_column(no_wrap=True, overflow="ellipsis")
    line.add_row(Text(title, style="bold"), ProgressBar(total=max(total, 1), completed=min(completed, total),
                                                        width=OVERALL_BAR), text)
    return line


def _timing(elapsed: float, eta: float | None, finished: bool) -> str:
    return f"elapsed {format_duration(elapsed)} · " + ("finished" if finished else f"ETA {format_duration(eta)}")


def render_jobs(progress: JobProgress) -> Group:
    overall, servers = progress.board.snapshot()
    failed = f" · {overall['failed']} failed" if overall["failed"] else ""
    finished = overall["finished"] >= overall["total"]
    head = _headline(progress.title, overall["total"], overall["finished"] + overall["fraction"],
                     f"{overall['finished']}/{overall['total']} jobs{failed} · "
                     + _timing(overall["elapsed"], overall["eta"], finished))
    table = Table(box=None, show_header=True, header_style="dim", pad_edge=False, padding=(0, 1, 0, 1))
    table.add_column("  server", no_wrap=True, overflow="ellipsis", max_width=NAME_WIDTH)
    table.add_column("job", no_wrap=True, overflow="ellipsis", max_width=JOB_WIDTH)
    table.add_column("step", no_wrap=True)
    table.add_column("", no_wrap=True, justify="right")
    for header in ("queued", "done", "failed"):
        table.add_column(header, no_wrap=True, justify="right")
    for line in servers:
        counts = (str(line.queued), str(line.done), Text(str(line.failed), style="red" if line.failed else ""))
        name = "  " + short_name(line.name)
        if line.gone:
            table.add_row(name, Text("gone", style="red"), "", "", "-", counts[1], counts[2])
        elif line.job is None:
            table.add_row(name, Text("idle", style="dim"), "", "", *counts)
        elif line.steps:
            table.add_row(name, line.job, ProgressBar(total=line.steps, completed=line.step or 0, width=STEP_BAR),
                          f"{line.step}/{line.steps}", *counts)
        else:
            table.add_row(name, line.job, ProgressBar(total=None, pulse=True, width=STEP_BAR), "", *counts)
    return Group(head, table)


def render_stage(stage: Stage) -> Group:
    state = stage.snapshot()
    finished = state["done"] >= state["total"]
    head = _headline(state["name"], state["total"], state["done"],
                     f"{state['done']}/{state['total']} {state['unit']}s · "
                     + _timing(state["elapsed"], state["eta"], finished))
    if state["item"] and not finished:
        return Group(head, Text("  " + state["item"], style="dim", no_wrap=True, overflow="ellipsis"))
    return Group(head)


class LiveDisplay:
    """Context manager drawing a :class:`LiveView` on ``stream`` (a terminal)."""

    def __init__(self, view: LiveView, stream: TextIO, *, refresh_per_second: float = 4.0):
        self.view = view
        self.console = Console(file=stream, highlight=False, soft_wrap=False)
        self.live = Live(get_renderable=view.render, console=self.console, refresh_per_second=refresh_per_second,
                         transient=False, redirect_stderr=True,
                         # stdout piped to a file keeps its content (a table, JSON) out of the terminal
                         redirect_stdout=_is_terminal(sys.stdout))
        self._handlers: list[tuple[logging.StreamHandler, TextIO]] = []
        self._filter = _HideProgressLines()

    def __enter__(self) -> LiveDisplay:
        terminal_streams = {id(sys.stderr), id(self.console.file)}
        if _is_terminal(sys.stdout):
            terminal_streams.add(id(sys.stdout))
        self.live.start(refresh=True)
        proxy = sys.stderr  # rich's line proxy now: prints above the live lines
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and id(handler.stream) in terminal_streams:
                self._handlers.append((handler, handler.setStream(proxy)))
                handler.addFilter(self._filter)
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self.live.stop()
        finally:
            for handler, stream in self._handlers:
                handler.removeFilter(self._filter)
                handler.setStream(stream)
            self._handlers.clear()

    def refresh(self) -> None:
        self.live.refresh()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
