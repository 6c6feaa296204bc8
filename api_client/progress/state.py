"""What the progress display shows, without any drawing: counts, per-server lines and ETAs.

Two kinds of work are tracked:

* :class:`JobBoard`: jobs spread over ComfyUI servers (``run``, ``ablate``, ``sweep``). Each server
  has a line (the job it runs, that job's sampler step, how many of our prompts wait behind it,
  done and failed counts). The ETA counts a running job as the fraction of its steps already
  made, so it moves with every ``progress`` event rather than only when a whole job ends.
* :class:`Stage`: a loop over items on this machine (scoring images, analysing photos).

Both are updated from the main thread and read by the display's refresh thread; every change and
every :meth:`snapshot` holds the object's lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace


def format_duration(seconds: float | None) -> str:
    """``1m05s`` (``125m03s`` past an hour, as the runner's log lines always wrote); ``?`` when unknown."""
    if seconds is None:
        return "?"
    seconds = max(0.0, seconds)
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def job_key(job) -> object:
    return getattr(job, "job_id", None) or id(job)


def job_label(job) -> str:
    return str(getattr(job, "label", None) or job_key(job))


@dataclass
class ServerLine:
    """One server as the display shows it."""

    name: str
    job: str | None = None            # label of the job it executes now
    step: int | None = None           # that job's latest progress event: value of maximum
    steps: int | None = None
    node: str | None = None           # the node that reported the step
    inflight: int = 0                 # our prompts on the server (the running one included)
    done: int = 0
    failed: int = 0
    gone: bool = False

    @property
    def queued(self) -> int:
        """Our prompts waiting behind the running one."""
        return max(0, self.inflight - (1 if self.job is not None else 0))


class JobBoard:
    """Jobs on servers (see the module docstring). ``total`` counts every selected job, including
    the ``already_done`` ones a resumed run skips; the ETA only extrapolates this session's work."""

    def __init__(self, total: int, servers: list[str], *, already_done: int = 0, clock=time.monotonic):
        self.total = total
        self.already_done = already_done
        self.clock = clock
        self.started_at = clock()
        self.servers = {name: ServerLine(name) for name in servers}
        self.done = 0
        self.failed = 0
        self._fraction: dict[object, float] = {}      # running job -> share of its steps made
        self._scale: dict[object, float] = {}         # running job -> most steps of one node seen
        self._running: dict[str, object] = {}         # server -> key of the job it executes
        self.lock = threading.Lock()

    def _line(self, server: str) -> ServerLine:
        return self.servers.setdefault(server, ServerLine(server))

    # ------------------------------------------------------------------ events

    def submitted(self, job, server: str, inflight: int) -> None:
        with self.lock:
            self._line(server).inflight = inflight

    def started(self, job, server: str) -> None:
        with self.lock:
            line = self._line(server)
            line.job, line.step, line.steps, line.node = job_label(job), None, None, None
            self._running[server] = job_key(job)
            self._fraction[job_key(job)] = 0.0

    def step(self, job, server: str, value: float, maximum: float, node: str | None = None) -> None:
        """A ``progress`` event of ``job`` (``value`` of ``maximum``, from ``node``).

        The line shows the latest event. The job's share done comes from the node with the most
        steps seen so far (the sampler, not a one-image node that finished before it started);
        a bar of a single unit says nothing and is ignored.
        """
        if maximum <= 1:
            return
        key = job_key(job)
        with self.lock:
            line = self._line(server)
            if self._running.get(server) != key:
                # The step came before (or instead of) the execution_start we track: it runs now.
                line.job = job_label(job)
                self._running[server] = key
            line.step, line.steps, line.node = int(value), int(maximum), node
            if maximum >= self._scale.get(key, 0):
                self._scale[key] = maximum
                # Never a whole job: it counts as finished only when it is.
                self._fraction[key] = min(max(value / maximum, 0.0), 0.99)

    def finished(self, job, server: str, *, ok: bool, inflight: int) -> None:
        with self.lock:
            line = self._line(server)
            line.inflight = inflight
            if ok:
                line.done += 1
                self.done += 1
            else:
                line.failed += 1
                self.failed += 1
            self._fraction.pop(job_key(job), None)
            self._scale.pop(job_key(job), None)
            if self._running.get(server) == job_key(job):
                del self._running[server]
                line.job, line.step, line.steps, line.node = None, None, None, None

    def server_gone(self, server: str) -> None:
        with self.lock:
            line = self._line(server)
            line.gone, line.inflight = True, 0
            key = self._running.pop(server, None)
            self._fraction.pop(key, None)
            line.job, line.step, line.steps, line.node = None, None, None, None

    # ------------------------------------------------------------------ reading

    @property
    def finished_count(self) -> int:
        return self.already_done + self.done + self.failed

    def running_fraction(self) -> float:
        return sum(self._fraction.values())

    def eta_seconds(self) -> float | None:
        """Seconds left: this session's job rate, where a running job counts with the share of its
        steps already made. None before anything moved."""
        remaining = self.total - self.finished_count
        if remaining <= 0:
            return 0.0
        progressed = self.done + self.failed + self.running_fraction()
        elapsed = self.clock() - self.started_at
        if progressed <= 0 or elapsed <= 0:
            return None
        return (remaining - self.running_fraction()) * elapsed / progressed

    def snapshot(self) -> tuple[dict, list[ServerLine]]:
        """(overall numbers, copies of the server lines) read under the lock."""
        with self.lock:
            overall = {"total": self.total, "finished": self.finished_count, "done": self.already_done + self.done,
                       "failed": self.failed, "fraction": self.running_fraction(),
                       "elapsed": self.clock() - self.started_at, "eta": self.eta_seconds()}
            return overall, [replace(line) for line in self.servers.values()]


class JobProgress:
    """The scheduler's ``progress`` object: its events (``update``, ``server_gone``) kept on a
    :class:`JobBoard`. Subclasses add output in :meth:`on_finished` / :meth:`on_gone`."""

    def __init__(self, total: int, servers: list[str], *, already_done: int = 0, title: str = "jobs",
                 clock=time.monotonic):
        self.board = JobBoard(total, servers, already_done=already_done, clock=clock)
        self.title = title

    def update(self, event: str, job, server: str, *, inflight: Mapping[str, int], seconds: float | None = None,
               value: float = 0, maximum: float = 0, node: str | None = None) -> None:
        """``event``: ``submitted``, ``started`` (the server began executing it), ``step`` (a
        ``progress`` event: ``value`` of ``maximum`` from ``node``), ``done`` or ``failed``;
        ``inflight``: our prompts per server after the event."""
        board = self.board
        if event == "submitted":
            board.submitted(job, server, inflight.get(server, 0))
        elif event == "started":
            board.started(job, server)
        elif event == "step":
            board.step(job, server, value, maximum, node)
        elif event in ("done", "failed"):
            with board.lock:
                for name, count in inflight.items():
                    board.servers.setdefault(name, ServerLine(name)).inflight = count
            board.finished(job, server, ok=event == "done", inflight=inflight.get(server, 0))
            self.on_finished(event, job, server, seconds)
        else:
            raise ValueError(f"unknown progress event {event!r}")

    def server_gone(self, server: str) -> None:
        self.board.server_gone(server)
        self.on_gone(server)

    def on_finished(self, event: str, job, server: str, seconds: float | None) -> None:
        """A job ended (``event`` is ``done`` or ``failed``); the board is already updated."""

    def on_gone(self, server: str) -> None:
        """``server`` stopped answering; the board is already updated."""


class Stage:
    """A loop over ``total`` items on this machine; ``advance`` after each one."""

    def __init__(self, name: str, total: int, *, unit: str = "item", clock=time.monotonic):
        self.name = name
        self.total = total
        self.unit = unit
        self.clock = clock
        self.started_at = clock()
        self.done = 0
        self.item: str | None = None
        self.closed = False
        self.lock = threading.Lock()

    def advance(self, count: int = 1, item: str | None = None) -> None:
        with self.lock:
            self.done += count
            if item is not None:
                self.item = item

    def update(self, done: int, total: int | None = None, item: str | None = None) -> None:
        """Set the absolute count (``progress(done, total, stage)`` callbacks report it this way)."""
        with self.lock:
            self.done = done
            if total is not None:
                self.total = total
            if item is not None:
                self.item = item

    def eta_seconds(self) -> float | None:
        if self.done >= self.total:
            return 0.0
        elapsed = self.clock() - self.started_at
        if self.done <= 0 or elapsed <= 0:
            return None
        return (self.total - self.done) * elapsed / self.done

    def snapshot(self) -> dict:
        with self.lock:
            return {"name": self.name, "total": self.total, "done": self.done, "unit": self.unit,
                    "item": self.item, "elapsed": self.clock() - self.started_at, "eta": self.eta_seconds(),
                    "closed": self.closed}
