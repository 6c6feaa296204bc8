"""Progress as log lines: what a non-terminal (CI, a pipe, a log file) gets.

One line per finished job on the logger ``api_client.runner.progress``::

    [3/8] done 01_base/01_park-wave_s42 on 127.0.0.1:8188 in 24.1s | 127.0.0.1:8188: 2 done, 1 queued; ... | ETA 1m20s

Sampler steps are not logged (a line per step would drown the log).
"""

from __future__ import annotations

import logging

from .state import JobProgress, format_duration, job_label

progress_log = logging.getLogger("api_client.runner.progress")


class LogJobProgress(JobProgress):
    """The scheduler's progress sink writing one log line per finished job."""

    def on_finished(self, event: str, job, server: str, seconds: float | None) -> None:
        from pulid_flux.progress import PROGRESS_LINE  # the library's marker for lines the bars replace

        board = self.board
        took = f" in {seconds:.1f}s" if seconds is not None else ""
        servers = "; ".join(f"{short_name(line.name)}: {line.done} done, {line.inflight} queued"
                            + (f", {line.failed} failed" if line.failed else "")
                            for line in board.servers.values())
        progress_log.info("[%d/%d] %s %s on %s%s | %s | %s", board.finished_count, board.total, event,
                          job_label(job), short_name(server), took, servers, self.eta(), extra=PROGRESS_LINE)

    def on_gone(self, server: str) -> None:
        progress_log.warning("server %s dropped out; %s", short_name(server), self.eta())

    def eta(self) -> str:
        board = self.board
        if board.total - board.finished_count <= 0:
            return "finished"
        finished_here = board.done + board.failed
        if not finished_here:
            return "ETA unknown"
        # Whole jobs only, as these lines always said; the live display refines it with steps.
        seconds = (board.clock() - board.started_at) / finished_here * (board.total - board.finished_count)
        return f"ETA {format_duration(seconds)}"


def short_name(url: str) -> str:
    return url.split("://", 1)[-1]
