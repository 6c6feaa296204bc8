"""``ComfyClient``: ComfyUI's REST and websocket API, and running one prompt to completion."""

from __future__ import annotations

import json
import logging
import mimetypes
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import requests

from .convert import is_api_prompt, is_ui_workflow, ui_to_api
from .errors import (
    ComfyClientError,
    ComfyHTTPError,
    ComfyTimeoutError,
    ExecutionError,
    ExecutionInterrupted,
    UIFormatError,
    WorkflowFormatError,
    WorkflowValidationError,
    format_validation_error,
)
from .events import Event, EventStream
from .transport import DEFAULT_CONNECT_TIMEOUT, AlreadyDone, RetryPolicy, Transport, websocket_url

log = logging.getLogger(__name__)

_TERMINAL_ERRORS = ("execution_error", "execution_interrupted")


@dataclass(frozen=True)
class OutputFile:
    """One file a node reported in its UI output (``/history`` ``outputs``)."""

    node_id: str
    kind: str  # the output key: "images", "gifs", "audio", "video", "3d", ...
    filename: str
    subfolder: str
    type: str  # "output", "temp" or "input"

    @property
    def view_params(self) -> dict[str, str]:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}


@dataclass
class RunResult:
    """Everything observed while one prompt ran.

    ``executing_counts`` / ``executed_counts`` count the ``executing`` / ``executed`` websocket
    messages per node id; ``cached_nodes`` are the ids listed by ``execution_cached``. A node that
    was served from the cache has no ``executing`` event.
    """

    prompt_id: str
    prompt: dict
    status: str = "unknown"  # "success", "error", "interrupted"
    outputs: dict[str, dict] = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    executing_counts: Counter = field(default_factory=Counter)
    executed_counts: Counter = field(default_factory=Counter)
    cached_nodes: set[str] = field(default_factory=set)
    progress: dict[str, tuple[float, float]] = field(default_factory=dict)
    previews: int = 0
    reconnects: int = 0
    elapsed: float = 0.0
    error: dict | None = None

    @property
    def executed_nodes(self) -> set[str]:
        """Nodes that actually ran (got an ``executing`` event)."""
        return {node for node, count in self.executing_counts.items() if count}

    def files(self, kinds: Iterable[str] | None = None) -> list[OutputFile]:
        """Every ``{filename, subfolder, type}`` entry in the outputs (optionally only some kinds)."""
        wanted = set(kinds) if kinds is not None else None
        found: list[OutputFile] = []
        for node_id, output in self.outputs.items():
            if not isinstance(output, Mapping):
                continue
            for kind, entries in output.items():
                if (wanted is not None and kind not in wanted) or not isinstance(entries, list):
                    continue
                for entry in entries:
                    if isinstance(entry, Mapping) and "filename" in entry:
                        found.append(OutputFile(str(node_id), kind, str(entry["filename"]),
                                                str(entry.get("subfolder", "")), str(entry.get("type", "output"))))
        return found


class ComfyClient:
    """A client bound to one ComfyUI server (``http://host:port``).

    ``client_id`` identifies this client's websocket; prompts posted by this client carry it so
    their events reach us. Connection errors and 5xx answers are retried per ``retry``.
    """

    def __init__(self, server: str = "http://127.0.0.1:8188", *, client_id: str | None = None,
                 timeout: float = 30.0, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 retry: RetryPolicy | None = None, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.retry = retry or RetryPolicy()
        self.http = Transport(server, timeout=timeout, connect_timeout=connect_timeout, retry=self.retry,
                              session=session, sleep=sleep)
        self.client_id = client_id or uuid.uuid4().hex
        self._sleep = sleep
        self._object_info: dict | None = None
        self._frontend: str | None = None

    @property
    def base_url(self) -> str:
        return self.http.base_url

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "ComfyClient":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ introspection

    def system_stats(self) -> dict:
        return self.http.get_json("/system_stats")

    def frontend_version(self) -> str | None:
        """The web frontend version this server pins (``required_frontend_version``; cached), whose
        rules :meth:`convert` follows; None when the server does not say."""
        if self._frontend is None:
            system = self.system_stats().get("system") or {}
            self._frontend = str(system.get("required_frontend_version") or "")
        return self._frontend or None

    def object_info(self, node_class: str | None = None, *, refresh: bool = False) -> dict:
        """``/object_info`` (cached on this client) or ``/object_info/{node_class}``."""
        if node_class is not None:
            return self.http.get_json(f"/object_info/{requests.utils.quote(node_class, safe='')}")
        if self._object_info is None or refresh:
            self._object_info = self.http.get_json("/object_info")
        return self._object_info

    def queue(self) -> dict:
        return self.http.get_json("/queue")

    def queue_remaining(self) -> int:
        return int(self.http.get_json("/prompt").get("exec_info", {}).get("queue_remaining", 0))

    def history(self, prompt_id: str | None = None, *, max_items: int | None = None) -> dict:
        if prompt_id is not None:
            return self.http.get_json(f"/history/{prompt_id}")
        params = {"max_items": max_items} if max_items is not None else None
        return self.http.get_json("/history", params=params)

    # ------------------------------------------------------------------ control

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop the running prompt (only if it is ``prompt_id``, when given)."""
        self.http.post_json("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def free(self, *, unload_models: bool = False, free_memory: bool = False) -> None:
        self.http.post_json("/free", {"unload_models": unload_models, "free_memory": free_memory})

    def clear_queue(self) -> None:
        self.http.post_json("/queue", {"clear": True})

    def delete_from_queue(self, prompt_ids: Iterable[str]) -> None:
        self.http.post_json("/queue", {"delete": list(prompt_ids)})

    # ------------------------------------------------------------------ files

    def upload_image(self, source: str | Path | bytes, *, filename: str | None = None, subfolder: str = "",
                     folder_type: str = "input", overwrite: bool = True) -> dict:
        """Upload an image; returns ``{"name", "subfolder", "type"}``. See :func:`image_reference`."""
        if folder_type not in ("input", "temp", "output"):
            raise ValueError(f"folder_type must be 'input', 'temp' or 'output', got {folder_type!r}")
        if isinstance(source, (bytes, bytearray)):
            if not filename:
                raise ValueError("upload_image(bytes) needs filename=")
            data = bytes(source)
        else:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"image to upload not found: {path}")
            data = path.read_bytes()
            filename = filename or path.name
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        response = self.http.request(
            "POST", "/upload/image",
            files={"image": (filename, data, content_type)},
            data={"subfolder": subfolder, "type": folder_type, "overwrite": "true" if overwrite else "false"},
        )
        return response.json()

    def view(self, filename: str, subfolder: str = "", folder_type: str = "output") -> bytes:
        """The bytes of a file in the server's output/input/temp folders."""
        response = self.http.request("GET", "/view", params={"filename": filename, "subfolder": subfolder, "type": folder_type})
        return response.content

    def download(self, result: RunResult, directory: str | Path, kinds: Iterable[str] | None = None) -> list[Path]:
        """Save every output file of ``result`` under ``directory`` (keeping their subfolders)."""
        root = Path(directory)
        saved = []
        for item in result.files(kinds):
            target = root / item.subfolder / item.filename if item.subfolder else root / item.filename
            if root.resolve() not in target.resolve().parents:
                raise ComfyClientError(f"refusing to write {item.filename!r} outside {root}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.view(item.filename, item.subfolder, item.type))
            saved.append(target)
        return saved

    # ------------------------------------------------------------------ workflows

    def convert(self, workflow: Mapping[str, Any], **kwargs: Any) -> dict:
        """UI workflow -> API prompt using this server's ``/object_info``, by its frontend's rules."""
        kwargs.setdefault("frontend", self.frontend_version())
        return ui_to_api(workflow, self.object_info(), **kwargs)

    def load_prompt(self, workflow: str | Path | Mapping[str, Any]) -> dict:
        """An API prompt from a file or dict in either format (UI workflows are converted)."""
        if not isinstance(workflow, Mapping):
            path = Path(workflow)
            try:
                workflow = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise WorkflowFormatError(f"cannot read workflow {path}: {exc}") from exc
        if is_ui_workflow(workflow):
            return self.convert(workflow)
        if is_api_prompt(workflow):
            return dict(workflow)
        raise WorkflowFormatError("neither a UI workflow (nodes + links) nor an API prompt ({id: {class_type, inputs}})")

    def queue_prompt(self, prompt: Mapping[str, Any], *, prompt_id: str | None = None,
                     extra_data: Mapping[str, Any] | None = None, front: bool = False) -> str:
        """``POST /prompt``; returns the prompt id. Raises :class:`WorkflowValidationError` on a 400."""
        check_api_prompt(prompt)
        prompt_id = prompt_id or str(uuid.uuid4())
        body: dict[str, Any] = {"prompt": prompt, "client_id": self.client_id, "prompt_id": prompt_id}
        if extra_data:
            body["extra_data"] = dict(extra_data)
        if front:
            body["front"] = True

        def already_queued() -> bool:
            # A retried POST may follow one the server did receive: never queue the same id twice.
            try:
                return self._server_knows(prompt_id)
            except ComfyClientError:
                return False

        try:
            response = self.http.request("POST", "/prompt", json=body, ok=(200, 400), before_retry=already_queued)
        except AlreadyDone:
            log.info("prompt %s was already queued by an earlier attempt", prompt_id)
            return prompt_id
        try:
            answer = response.json()
        except ValueError as exc:
            raise ComfyHTTPError("POST", response.url, response.status_code, response.text) from exc
        if response.status_code == 400:
            raise WorkflowValidationError(answer.get("error"), answer.get("node_errors"), prompt)
        if answer.get("node_errors"):
            log.warning("%s", format_validation_error({"message": "some outputs were dropped"}, answer["node_errors"], prompt))
        return str(answer.get("prompt_id") or prompt_id)

    def _server_knows(self, prompt_id: str) -> bool:
        # The queue first: a prompt moves from the queue to the history, so one that finishes between
        # the two looks is still seen (history first would miss it and queue it twice).
        queue = self.queue()
        for item in list(queue.get("queue_running", [])) + list(queue.get("queue_pending", [])):
            if len(item) > 1 and item[1] == prompt_id:
                return True
        return bool(self.history(prompt_id))

    def events(self) -> EventStream:
        """A websocket event stream for this client id (call ``connect()`` or use ``with``)."""
        return EventStream(websocket_url(self.base_url, self.client_id), connect_timeout=self.http.connect_timeout,
                           retry=self.retry, sleep=self._sleep)

    def run(self, prompt: Mapping[str, Any], *, timeout: float | None = 600.0, prompt_id: str | None = None,
            extra_data: Mapping[str, Any] | None = None, on_event: Callable[[Event], None] | None = None,
            poll_interval: float = 5.0, interrupt_on_timeout: bool = True, raise_on_error: bool = True) -> RunResult:
        """Queue ``prompt`` and follow it to the end; return its outputs and the events seen.

        Done is the ``executing`` message with ``node: null`` for our prompt (or an
        ``execution_error`` / ``execution_interrupted``); ``/history`` is polled as a fallback after
        ``poll_interval`` seconds of silence or a websocket reconnect. Raises
        :class:`ExecutionError` / :class:`ExecutionInterrupted` (with ``.result``) unless
        ``raise_on_error`` is False, and :class:`ComfyTimeoutError` after ``timeout`` seconds.
        """
        check_api_prompt(prompt)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        stream = self.events()
        stream.connect()
        try:
            prompt_id = self.queue_prompt(prompt, prompt_id=prompt_id, extra_data=extra_data)
            result = RunResult(prompt_id=prompt_id, prompt=dict(prompt))
            self._follow(stream, result, deadline, on_event, poll_interval, interrupt_on_timeout)
            result.reconnects = stream.reconnects
        finally:
            stream.close()
        self._collect_history(result)
        result.elapsed = time.monotonic() - started
        if raise_on_error and result.status == "error":
            error = ExecutionError(result.error or {}, prompt)
            error.result = result
            raise error
        if raise_on_error and result.status == "interrupted":
            error = ExecutionInterrupted(result.error or {"prompt_id": prompt_id})
            error.result = result
            raise error
        return result

    def _follow(self, stream: EventStream, result: RunResult, deadline: float | None,
                on_event: Callable[[Event], None] | None, poll_interval: float, interrupt_on_timeout: bool) -> None:
        last_activity = time.monotonic()
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                if interrupt_on_timeout:
                    try:
                        self.interrupt(result.prompt_id)
                    except ComfyClientError as exc:
                        log.warning("could not interrupt timed-out prompt %s: %s", result.prompt_id, exc)
                raise ComfyTimeoutError(f"prompt {result.prompt_id} did not finish within the timeout "
                                        f"({len(result.executed_nodes)} node(s) ran so far)")
            wait = min(1.0, poll_interval) if deadline is None else max(0.0, min(1.0, poll_interval, deadline - now))
            event = stream.receive(wait)
            if event is None or event.type == "reconnected":
                quiet_for = time.monotonic() - last_activity
                if event is not None or quiet_for >= poll_interval:
                    last_activity = time.monotonic()
                    if self._finished_in_history(result):
                        return
                continue
            last_activity = time.monotonic()
            if not self._is_ours(event, result.prompt_id):
                continue
            result.events.append(event)
            if on_event is not None:
                on_event(event)
            if self._record(event, result):
                return

    @staticmethod
    def _is_ours(event: Event, prompt_id: str) -> bool:
        if event.type == "preview_image":
            return event.prompt_id in (None, prompt_id)
        if event.type in ("status", "feature_flags", "invalid", "binary", "progress_text", "crystools.monitor"):
            return False
        return event.prompt_id == prompt_id

    @staticmethod
    def _record(event: Event, result: RunResult) -> bool:
        """Update counters; True when the prompt is finished."""
        data = event.data
        if event.type == "executing":
            if data.get("node") is None:
                if result.status == "unknown":
                    result.status = "success"
                return True
            result.executing_counts[str(data["node"])] += 1
        elif event.type == "executed" and data.get("node") is not None:
            result.executed_counts[str(data["node"])] += 1
        elif event.type == "execution_cached":
            result.cached_nodes.update(str(node) for node in data.get("nodes") or ())
        elif event.type == "progress" and data.get("node") is not None:
            result.progress[str(data["node"])] = (data.get("value", 0), data.get("max", 0))
        elif event.type == "preview_image":
            result.previews += 1
        elif event.type == "execution_success":
            result.status = "success"
        elif event.type in _TERMINAL_ERRORS:
            result.status = "error" if event.type == "execution_error" else "interrupted"
            result.error = dict(data)
            return True
        return False

    def _finished_in_history(self, result: RunResult) -> bool:
        entry = self.history(result.prompt_id).get(result.prompt_id)
        if not entry:
            return False
        status = entry.get("status") or {}
        if not status.get("completed", False) and status.get("status_str") != "error":
            return False
        self._apply_history_status(result, entry)
        return True

    def _apply_history_status(self, result: RunResult, entry: Mapping[str, Any]) -> None:
        status = entry.get("status") or {}
        for name, data in status.get("messages") or ():
            if name == "execution_cached" and isinstance(data, Mapping):
                result.cached_nodes.update(str(node) for node in data.get("nodes") or ())
            elif name in _TERMINAL_ERRORS and result.error is None and isinstance(data, Mapping):
                result.error = dict(data)
                result.status = "error" if name == "execution_error" else "interrupted"
        if result.status == "unknown":
            result.status = "success" if status.get("status_str") == "success" else "error"

    def _collect_history(self, result: RunResult, attempts: int = 10) -> None:
        for attempt in range(attempts):
            entry = self.history(result.prompt_id).get(result.prompt_id)
            if entry:
                result.history = entry
                result.outputs = dict(entry.get("outputs") or {})
                self._apply_history_status(result, entry)
                return
            self._sleep(min(2.0, 0.1 * (2 ** attempt)))
        log.warning("no /history entry for prompt %s; outputs unknown", result.prompt_id)

    def run_workflow(self, workflow: str | Path | Mapping[str, Any], **kwargs: Any) -> RunResult:
        """Load (and if needed convert) a workflow, then :meth:`run` it."""
        return self.run(self.load_prompt(workflow), **kwargs)


def check_api_prompt(prompt: Any) -> None:
    """Refuse what the server would choke on: UI exports (HTTP 500 there) and non-prompts."""
    if is_ui_workflow(prompt):
        raise UIFormatError(
            "this is a UI-format workflow (it has 'nodes' and 'links'); ComfyUI's /prompt only runs API "
            "prompts and answers HTTP 500 to these. Convert it first: client.convert(workflow) or "
            "`pulid-studio convert FILE --server URL`."
        )
    if not isinstance(prompt, Mapping) or not prompt:
        raise WorkflowFormatError("an API prompt must be a non-empty object {node_id: {class_type, inputs}}")
    for node_id, node in prompt.items():
        if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str):
            raise WorkflowFormatError(f"prompt node {node_id!r} has no 'class_type' (got {node!r:.120})")
        if not isinstance(node.get("inputs", {}), Mapping):
            raise WorkflowFormatError(f"prompt node {node_id!r}: 'inputs' should be an object")


def image_reference(upload_answer: Mapping[str, Any]) -> str:
    """The ``LoadImage.image`` value for an ``/upload/image`` answer (``subfolder/name``)."""
    name = str(upload_answer["name"])
    subfolder = str(upload_answer.get("subfolder") or "")
    return f"{subfolder}/{name}" if subfolder else name
