"""Spreading jobs over ComfyUI servers: pipelined, cache-aware, surviving dead servers and Ctrl-C.

* Each server keeps up to ``depth`` of our prompts queued (one running, the next one waiting), so it
  never idles while we download an image or submit the next job.
* The next job goes to the least-loaded live server (fewest prompts in flight, then fewest jobs
  given so far).
* Affinity: jobs come in blocks (one prompt's jobs). A server keeps taking jobs from the block it
  works on, so the prompt's text encoding (and the models) stay in its cache; a server whose
  block is used up starts the first untouched block, and when none is left it takes jobs from the
  end of the block with the most jobs left, and keeps taking from that block's end until it is
  empty: a server never returns to a block it left, so what a block shares (a prompt's text
  encoding, a checkpoint sweep's LoRA) is loaded at most once per server.
* A server that stops answering is dropped: its jobs go back to the pool for the others (at most
  ``max_attempts`` times per job).
* Ctrl-C: the prompts we queued are removed from the servers' queues, the running ones are
  interrupted, and each is recorded as interrupted.

The scheduler talks to servers through the small :class:`Backend` interface (see
:mod:`.comfy_backend` for ComfyUI), and reports results to a :class:`Sink`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ...errors import ComfyClientError, ComfyServerError

log = logging.getLogger(__name__)


class ServerGone(ComfyServerError):
    """The server does not answer any more (connection refused, reset, timed out)."""


class JobRejected(ComfyClientError):
    """The server refused the job's prompt (validation error): retrying it elsewhere will not help."""


@dataclass
class Finished:
    """A prompt the server finished (successfully or not)."""

    prompt_id: str
    status: str                              # "success", "error" or "interrupted"
    error: dict | None = None
    started_at: float | None = None          # when the server started executing it (epoch seconds)
    finished_at: float | None = None
    executed: list[str] | None = None        # node ids that ran (None: not observed)
    cached: list[str] = field(default_factory=list)


class Backend(Protocol):
    name: str

    def submit(self, job) -> str: ...

    def poll(self, timeout: float) -> list[Finished]: ...

    def collect(self, job, finished: Finished) -> list[bytes]: ...

    def cancel(self, prompt_ids: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class Sink(Protocol):
    def done(self, job, attempt: Attempt, finished: Finished, images: list[bytes]) -> None: ...

    def failed(self, job, attempt: Attempt | None, error: str, finished: Finished | None = None) -> None: ...

    def interrupted(self, job, attempt: Attempt) -> None: ...


@dataclass
class Attempt:
    job: object
    server: str
    prompt_id: str
    submitted_at: float
    number: int


class JobPool:
    """Jobs not yet given to a server, grouped into blocks, with per-server block affinity."""

    def __init__(self, jobs: Sequence):
        self._blocks: dict[object, list] = {}
        for job in sorted(jobs, key=lambda j: j.order):
            self._blocks.setdefault(job.block, []).append(job)
        self._block_order = list(self._blocks)
        self._owner: dict[object, str | None] = {b: None for b in self._blocks}
        self._current: dict[str, object] = {}
        self._stealing: dict[str, object] = {}     # server -> the block it takes from the end of

    def __len__(self) -> int:
        return sum(len(jobs) for jobs in self._blocks.values())

    @property
    def pending(self) -> list:
        return [job for block in self._block_order for job in self._blocks[block]]

    def take(self, server: str):
        """The next job for ``server`` (see the module docstring), or None when the pool is empty."""
        block = self._current.get(server)
        if block is not None and self._blocks.get(block) and self._owner.get(block) == server:
            return self._blocks[block].pop(0)
        stolen = self._stealing.get(server)
        if stolen is not None and self._blocks.get(stolen):
            return self._blocks[stolen].pop()
        for block in self._block_order:
            if self._blocks[block] and self._owner[block] is None:
                self._owner[block] = server
                self._current[server] = block
                return self._blocks[block].pop(0)
        candidates = [b for b in self._block_order if self._blocks[b]]
        if not candidates:
            return None
        # Steal from the end of the fullest block so its owner carries on from the front.
        block = max(candidates, key=lambda b: (len(self._blocks[b]), -self._block_order.index(b)))
        self._stealing[server] = block
        return self._blocks[block].pop()

    def put_back(self, job) -> None:
        """Return a job (its server died); it keeps its place in its block."""
        jobs = self._blocks.setdefault(job.block, [])
        if job.block not in self._block_order:
            self._block_order.append(job.block)
            self._owner[job.block] = None
        jobs.append(job)
        jobs.sort(key=lambda j: j.order)

    def release(self, server: str) -> None:
        """Forget ``server``'s blocks (it died), so other servers can take them up."""
        for block, owner in self._owner.items():
            if owner == server:
                self._owner[block] = None
        self._current.pop(server, None)
        self._stealing.pop(server, None)


@dataclass
class Outcome:
    done: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    not_run: list = field(default_factory=list)       # left when every server was gone
    interrupted: list = field(default_factory=list)
    was_interrupted: bool = False
    dead_servers: list[str] = field(default_factory=list)
    submissions: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not (self.failed or self.not_run or self.interrupted or self.was_interrupted)


class Scheduler:
    """Run jobs on ``backends`` (see the module docstring); results go to ``sink``."""

    def __init__(self, backends: Sequence[Backend], sink: Sink, *, depth: int = 2, max_attempts: int = 3,
                 poll_interval: float = 0.5, progress=None, clock=time.time):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if not backends:
            raise ValueError("no server to run the jobs on")
        names = [b.name for b in backends]
        if len(set(names)) != len(names):
            raise ValueError(f"a server is listed twice: {names}")
        self.backends = list(backends)
        self.sink = sink
        self.depth = depth
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.progress = progress
        self.clock = clock
        self.alive = {b.name: True for b in self.backends}
        self.inflight: dict[str, dict[str, Attempt]] = {b.name: {} for b in self.backends}
        self.given: dict[str, int] = {b.name: 0 for b in self.backends}
        self.attempts: dict[str, int] = {}
        self.max_inflight_seen: dict[str, int] = {b.name: 0 for b in self.backends}

    # ------------------------------------------------------------------ main loop

    def run(self, jobs: Sequence) -> Outcome:
        outcome = Outcome(submissions=self.given)
        pool = JobPool(jobs)
        try:
            while True:
                self._dispatch(pool, outcome)
                busy = [b for b in self.backends if self.alive[b.name] and self.inflight[b.name]]
                if not busy:
                    if not len(pool):
                        break
                    if not any(self.alive.values()):
                        outcome.not_run.extend(pool.pending)
                        log.error("every server is gone; %d job(s) were not run (run again to finish them)",
                                  len(outcome.not_run))
                        break
                    continue
                share = self.poll_interval / len(busy)
                for backend in busy:
                    self._poll(backend, share, pool, outcome)
        except KeyboardInterrupt:
            outcome.was_interrupted = True
            self._cancel_all(outcome)
        finally:
            outcome.dead_servers = [name for name, ok in self.alive.items() if not ok]
        return outcome

    def _live_with_room(self) -> list[Backend]:
        return [b for b in self.backends if self.alive[b.name] and len(self.inflight[b.name]) < self.depth]

    def _dispatch(self, pool: JobPool, outcome: Outcome) -> None:
        while len(pool):
            candidates = self._live_with_room()
            if not candidates:
                return
            backend = min(candidates, key=lambda b: (len(self.inflight[b.name]), self.given[b.name],
                                                     self.backends.index(b)))
            job = pool.take(backend.name)
            if job is None:
                return
            self._submit(backend, job, pool, outcome)

    def _submit(self, backend: Backend, job, pool: JobPool, outcome: Outcome) -> None:
        number = self.attempts.get(job.job_id, 0) + 1
        self.attempts[job.job_id] = number
        try:
            prompt_id = backend.submit(job)
        except JobRejected as exc:
            log.error("%s rejected %s: %s", backend.name, job.label, exc)
            self.sink.failed(job, None, str(exc))
            outcome.failed.append(job)
            self._progress("failed", job, backend.name)
            return
        except ServerGone as exc:
            self._server_died(backend, exc, pool, outcome, extra=[job])
            return
        attempt = Attempt(job=job, server=backend.name, prompt_id=prompt_id, submitted_at=self.clock(), number=number)
        self.inflight[backend.name][prompt_id] = attempt
        self.given[backend.name] += 1
        self.max_inflight_seen[backend.name] = max(self.max_inflight_seen[backend.name],
                                                   len(self.inflight[backend.name]))
        self._progress("submitted", job, backend.name)

    def _poll(self, backend: Backend, timeout: float, pool: JobPool, outcome: Outcome) -> None:
        try:
            finished = backend.poll(timeout)
        except ServerGone as exc:
            self._server_died(backend, exc, pool, outcome)
            return
        for item in finished:
            attempt = self.inflight[backend.name].pop(item.prompt_id, None)
            if attempt is None:
                continue
            job = attempt.job
            if item.status != "success":
                message = _error_text(item)
                log.error("%s failed on %s: %s", job.label, backend.name, message)
                self.sink.failed(job, attempt, message, item)
                outcome.failed.append(job)
                self._progress("failed", job, backend.name)
                continue
            try:
                images = backend.collect(job, item)
            except ServerGone as exc:
                self.inflight[backend.name][item.prompt_id] = attempt  # requeued with the others
                self._server_died(backend, exc, pool, outcome)
                return
            if not images:
                self.sink.failed(job, attempt, "the prompt finished without an output image", item)
                outcome.failed.append(job)
                self._progress("failed", job, backend.name)
                continue
            self.sink.done(job, attempt, item, images)
            outcome.done.append(job)
            end = item.finished_at if item.finished_at and item.finished_at >= attempt.submitted_at else self.clock()
            self._progress("done", job, backend.name, seconds=end - attempt.submitted_at)

    def _server_died(self, backend: Backend, exc: Exception, pool: JobPool, outcome: Outcome, extra=()) -> None:
        self.alive[backend.name] = False
        lost = [a.job for a in self.inflight[backend.name].values()] + list(extra)
        self.inflight[backend.name].clear()
        pool.release(backend.name)
        log.error("server %s is gone (%s); %d job(s) move to the other servers", backend.name, exc, len(lost))
        for job in lost:
            if self.attempts.get(job.job_id, 0) >= self.max_attempts:
                message = f"{self.attempts[job.job_id]} server(s) died while running this job; giving up"
                self.sink.failed(job, None, message)
                outcome.failed.append(job)
            else:
                pool.put_back(job)
        try:
            backend.close()
        except Exception:  # closing a dead connection may raise anything; it is gone either way
            log.debug("closing %s failed", backend.name, exc_info=True)
        if self.progress is not None:
            self.progress.server_gone(backend.name)

    def _cancel_all(self, outcome: Outcome) -> None:
        log.warning("interrupted: cancelling the queued and running prompts")
        for backend in self.backends:
            attempts = list(self.inflight[backend.name].values())
            if not attempts or not self.alive[backend.name]:
                continue
            try:
                backend.cancel([a.prompt_id for a in attempts])
            except KeyboardInterrupt:
                log.warning("second Ctrl-C: not waiting for %s", backend.name)
            except ComfyClientError as exc:  # best effort: the server may be gone too
                log.warning("could not cancel the prompts on %s: %s", backend.name, exc)
            for attempt in attempts:
                self.sink.interrupted(attempt.job, attempt)
                outcome.interrupted.append(attempt.job)
            self.inflight[backend.name].clear()

    def _progress(self, event: str, job, server: str, **extra) -> None:
        if self.progress is not None:
            self.progress.update(event, job, server, inflight={k: len(v) for k, v in self.inflight.items()}, **extra)


def _error_text(item: Finished) -> str:
    error = item.error or {}
    if item.status == "interrupted":
        return f"interrupted on the server at node {error.get('node_id')}"
    node = error.get("node_id")
    kind = error.get("node_type")
    message = str(error.get("exception_message") or "").strip()
    kind_text = f" [{kind}]" if kind else ""
    return f"node {node}{kind_text} raised {error.get('exception_type', 'an error')}: {message}" if node else \
        (message or "the prompt failed")
