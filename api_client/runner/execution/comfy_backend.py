"""A scheduler backend for one ComfyUI server: queue prompts, follow them on one websocket, fetch images.

Several of our prompts are in the server's queue at once; their events arrive on the same
websocket (our client id) and are told apart by ``prompt_id``. Done is ``executing`` with
``node: null`` (or ``execution_error`` / ``execution_interrupted``); after a websocket reconnect
or a quiet spell, ``/history`` is checked for prompts whose end we may have missed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...client import ComfyClient
from ...errors import (
    ComfyClientError,
    ComfyConnectionError,
    ComfyHTTPError,
    WorkflowValidationError,
)
from ...transport import DEFAULT_CONNECT_TIMEOUT, RetryPolicy
from .scheduler import Finished, JobRejected, ServerGone

log = logging.getLogger(__name__)

# Fail over quickly: a server refusing connections for ~2 s is treated as gone.
DEFAULT_RETRY = RetryPolicy(attempts=3, backoff=0.5, max_backoff=2.0)


@dataclass
class _Track:
    submitted: float
    started: float | None = None
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    success: bool = False


class ComfyBackend:
    """One ComfyUI server seen by the scheduler (see :class:`.scheduler.Backend`)."""

    def __init__(self, url: str, *, client: ComfyClient | None = None, retry: RetryPolicy = DEFAULT_RETRY,
                 timeout: float = 30.0, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, history_check: float = 10.0):
        self.client = client or ComfyClient(url, retry=retry, timeout=timeout, connect_timeout=connect_timeout)
        self.name = self.client.base_url
        self.history_check = history_check
        self._stream = None
        self._tracked: dict[str, _Track] = {}
        self._last_activity = time.monotonic()

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> ComfyBackend:
        """Check the server answers and open the websocket (before any prompt is queued)."""
        try:
            self.client.system_stats()
            self._stream = self.client.events()
            self._stream.connect()
        except (ComfyConnectionError, ComfyHTTPError) as exc:
            raise ServerGone(str(exc)) from exc  # names the URL and what to check
        return self

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self.client.close()

    # ------------------------------------------------------------------ jobs

    def submit(self, job) -> str:
        prompt_id = str(uuid.uuid4())
        try:
            self.client.queue_prompt(job.graph, prompt_id=prompt_id)
        except WorkflowValidationError as exc:
            raise JobRejected(str(exc)) from exc
        except (ComfyConnectionError, ComfyHTTPError) as exc:
            raise ServerGone(str(exc)) from exc
        self._tracked[prompt_id] = _Track(submitted=time.time())
        return prompt_id

    def poll(self, timeout: float) -> list[Finished]:
        """Finished prompts, waiting up to ``timeout`` seconds for the first one."""
        if self._stream is None:
            self.open()
        finished: list[Finished] = []
        deadline = time.monotonic() + max(timeout, 0.01)
        while not finished:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                event = self._stream.receive(remaining)
            except ComfyConnectionError as exc:
                raise ServerGone(str(exc)) from exc
            if event is None:
                continue
            self._last_activity = time.monotonic()
            if event.type == "reconnected":
                finished.extend(self._from_history())
                continue
            item = self._handle(event)
            if item is not None:
                finished.append(item)
        if not finished and self._tracked and time.monotonic() - self._last_activity > self.history_check:
            self._last_activity = time.monotonic()
            finished.extend(self._from_history())
        return finished

    def _handle(self, event) -> Finished | None:
        prompt_id = event.prompt_id
        track = self._tracked.get(prompt_id) if prompt_id else None
        if track is None:
            return None
        data = event.data
        if event.type == "execution_start":
            track.started = time.time()
        elif event.type == "execution_cached":
            track.cached = [str(n) for n in data.get("nodes") or ()]
        elif event.type == "executing":
            if data.get("node") is None:
                return self._finish(prompt_id, "success")
            track.executed.append(str(data["node"]))
        elif event.type == "execution_success":
            track.success = True
        elif event.type in ("execution_error", "execution_interrupted"):
            status = "error" if event.type == "execution_error" else "interrupted"
            return self._finish(prompt_id, status, dict(data))
        return None

    def _finish(self, prompt_id: str, status: str, error: dict | None = None, *, observed: bool = True) -> Finished:
        track = self._tracked.pop(prompt_id)
        return Finished(prompt_id=prompt_id, status=status, error=error, started_at=track.started or None,
                        finished_at=time.time(), executed=list(dict.fromkeys(track.executed)) if observed else None,
                        cached=track.cached)

    def _from_history(self) -> list[Finished]:
        """Prompts that ended while we were not listening (websocket dropped or quiet)."""
        finished = []
        for prompt_id in list(self._tracked):
            entry = self._history_entry(prompt_id)
            if not entry:
                continue
            status = entry.get("status") or {}
            if not status.get("completed", False) and status.get("status_str") != "error":
                continue
            error, outcome = None, "success" if status.get("status_str") == "success" else "error"
            for name, data in status.get("messages") or ():
                if name == "execution_cached" and isinstance(data, Mapping):
                    self._tracked[prompt_id].cached = [str(n) for n in data.get("nodes") or ()]
                elif name in ("execution_error", "execution_interrupted") and isinstance(data, Mapping):
                    error = dict(data)
                    outcome = "error" if name == "execution_error" else "interrupted"
            # Events were missed: which nodes ran is only partly known.
            finished.append(self._finish(prompt_id, outcome, error, observed=False))
        return finished

    def _history_entry(self, prompt_id: str) -> dict | None:
        try:
            return (self.client.history(prompt_id) or {}).get(prompt_id)
        except (ComfyConnectionError, ComfyHTTPError) as exc:
            raise ServerGone(str(exc)) from exc

    def collect(self, job, finished: Finished) -> list[bytes]:
        """The bytes of the images the job's save node wrote (type ``output``)."""
        entry = None
        for attempt in range(8):
            entry = self._history_entry(finished.prompt_id)
            if entry:
                break
            time.sleep(min(1.0, 0.05 * 2 ** attempt))
        if not entry:
            log.warning("%s: no /history entry for prompt %s", self.name, finished.prompt_id)
            return []
        outputs: Mapping[str, Any] = entry.get("outputs") or {}
        nodes = [job.save_node] if job.save_node in outputs else list(outputs)
        images = []
        for node_id in nodes:
            for item in (outputs.get(node_id) or {}).get("images") or ():
                if item.get("type", "output") != "output":
                    continue  # previews (temp) are not results
                try:
                    images.append(self.client.view(item["filename"], item.get("subfolder", ""), "output"))
                except (ComfyConnectionError, ComfyHTTPError) as exc:
                    raise ServerGone(str(exc)) from exc
        return images

    def cancel(self, prompt_ids: Sequence[str]) -> None:
        """Remove our queued prompts and interrupt the one running (best effort)."""
        try:
            self.client.delete_from_queue(prompt_ids)
            for prompt_id in prompt_ids:
                self.client.interrupt(prompt_id)
        except ComfyClientError as exc:
            log.warning("could not cancel prompts on %s: %s", self.name, exc)
        for prompt_id in prompt_ids:
            self._tracked.pop(prompt_id, None)
