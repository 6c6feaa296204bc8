"""Where finished jobs go: images written atomically, one manifest line each, progress lines on stderr."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from ..files import write_atomic
from .manifest import DONE, FAILED, INTERRUPTED, RunManifest, now
from .scheduler import Attempt, Finished

log = logging.getLogger(__name__)
progress_log = logging.getLogger("api_client.runner.progress")


def output_files(job, count: int) -> list[str]:
    """The job's file, then ``<name>_i2.png``, ... when the save node wrote several images."""
    stem = job.file.removesuffix(".png")
    return [job.file] + [f"{stem}_i{i}.png" for i in range(2, count + 1)]


class ResultWriter:
    """The scheduler's sink: writes images under ``out_dir`` and appends ``manifest.jsonl`` lines."""

    def __init__(self, manifest: RunManifest):
        self.manifest = manifest
        self.out_dir = manifest.out_dir

    def _record(self, job, status: str, attempt: Attempt | None, finished: Finished | None, **extra) -> dict:
        record = {**job.describe(), "status": status}
        if attempt is not None:
            record.update(server=attempt.server, prompt_id=attempt.prompt_id, attempt=attempt.number)
        record["timings"] = _timings(attempt, finished)
        if finished is not None:
            record["executed"] = finished.executed
            record["cached"] = list(finished.cached)
        record.update(extra)
        return record

    def done(self, job, attempt: Attempt, finished: Finished, images: list[bytes]) -> None:
        files = output_files(job, len(images))
        for relative, data in zip(files, images):
            write_atomic(self.out_dir / relative, data)
        # The manifest line comes last: a job is done only once its images are safely on disk.
        self.manifest.append(self._record(job, DONE, attempt, finished, files=files))

    def failed(self, job, attempt: Attempt | None, error: str, finished: Finished | None = None) -> None:
        self.manifest.append(self._record(job, FAILED, attempt, finished, files=[], error=error))

    def interrupted(self, job, attempt: Attempt) -> None:
        self.manifest.append(self._record(job, INTERRUPTED, attempt, None, files=[],
                                          error="interrupted by the user (Ctrl-C)"))


def _timings(attempt: Attempt | None, finished: Finished | None) -> dict:
    timings: dict = {"recorded_at": now()}
    if attempt is not None:
        timings["submitted_at"] = round(attempt.submitted_at, 3)
    if finished is not None:
        if finished.started_at is not None:
            timings["started_at"] = round(finished.started_at, 3)
        if finished.finished_at is not None:
            timings["finished_at"] = round(finished.finished_at, 3)
        if finished.started_at is not None and attempt is not None:
            timings["queued_s"] = round(max(0.0, finished.started_at - attempt.submitted_at), 3)
        if finished.started_at is not None and finished.finished_at is not None:
            timings["run_s"] = round(finished.finished_at - finished.started_at, 3)
        if finished.finished_at is not None and attempt is not None:
            timings["total_s"] = round(finished.finished_at - attempt.submitted_at, 3)
    return timings


class Progress:
    """Per-server and overall progress as log lines (logger ``api_client.runner.progress``)."""

    def __init__(self, total: int, servers: list[str], *, already_done: int = 0, clock=time.monotonic):
        self.total = total
        self.already_done = already_done
        self.clock = clock
        self.started = clock()
        self.per_server = {name: {"done": 0, "failed": 0, "submitted": 0} for name in servers}
        self.finished = 0

    def update(self, event: str, job, server: str, *, inflight: Mapping[str, int], seconds: float | None = None) -> None:
        counts = self.per_server.setdefault(server, {"done": 0, "failed": 0, "submitted": 0})
        if event == "submitted":
            counts["submitted"] += 1
            progress_log.debug("queued %s on %s", job.label, server)
            return
        counts[event] += 1
        self.finished += 1
        took = f" in {seconds:.1f}s" if seconds is not None else ""
        servers = "; ".join(f"{_short(name)}: {c['done']} done, {inflight.get(name, 0)} queued"
                            + (f", {c['failed']} failed" if c["failed"] else "")
                            for name, c in self.per_server.items())
        progress_log.info("[%d/%d] %s %s on %s%s | %s | %s", self.already_done + self.finished, self.total, event,
                          job.label, _short(server), took, servers, self.eta())

    def eta(self) -> str:
        remaining = self.total - self.already_done - self.finished
        if remaining <= 0:
            return "finished"
        if not self.finished:
            return "ETA unknown"
        seconds = (self.clock() - self.started) / self.finished * remaining
        return f"ETA {int(seconds // 60)}m{int(seconds % 60):02d}s"

    def server_gone(self, server: str) -> None:
        progress_log.warning("server %s dropped out; %s", _short(server), self.eta())


def _short(url: str) -> str:
    return url.split("://", 1)[-1]
