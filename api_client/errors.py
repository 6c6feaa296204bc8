"""Exceptions raised by the headless client. All derive from :class:`ComfyClientError`."""

from __future__ import annotations

import re
from typing import Any, Mapping

# How ComfyUI names the node a prompt-level error is about, in the error's "details".
_DETAILS_NODE_ID = re.compile(r"Node ID '#([^']+)'")


class ComfyClientError(Exception):
    """Base class of every error raised by ``api_client``."""


class ObjectInfoError(ComfyClientError):
    """An ``/object_info`` answer (or a saved copy of one) does not have the expected shape."""


class WorkflowFormatError(ComfyClientError):
    """A workflow file is neither a valid UI workflow nor a valid API prompt."""


class UIFormatError(WorkflowFormatError):
    """A UI-format workflow was about to be posted to ``/prompt`` (the server answers 500 to those)."""


class ConversionError(ComfyClientError):
    """A UI workflow cannot be converted to an API prompt (unknown node, broken link, ...)."""


class OverrideError(ComfyClientError):
    """A graph edit refers to a node, input or value that does not exist or is ambiguous."""


class ComfyServerError(ComfyClientError):
    """The ComfyUI server is the problem (unreachable, not starting, failing, lacking what a workflow
    needs), not the command's input; the command line exits with its own status for these."""


class ComfyConnectionError(ComfyServerError):
    """The server could not be reached, even after the allowed retries."""


class ComfyStartError(ComfyServerError):
    """A local ComfyUI that we launched exited or did not answer during start-up.

    ``str()`` ends with the server log's last lines; ``summary`` is the one line the CLI prints,
    naming ``log_path`` (which the runner updates when it moves the log).
    """

    def __init__(self, message: str, *, summary: str | None = None, log_path=None):
        super().__init__(message)
        self._summary = summary or message.splitlines()[0]
        self.log_path = log_path

    @property
    def summary(self) -> str:
        return self._summary + (f" (log: {self.log_path})" if self.log_path else "")


class ComfyHTTPError(ComfyServerError):
    """The server answered with an unexpected HTTP status."""

    def __init__(self, method: str, url: str, status: int, body: str):
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        snippet = body if len(body) <= 500 else body[:500] + "..."
        super().__init__(f"{method} {url} -> HTTP {status}: {snippet}")


class WorkflowValidationError(ComfyClientError):
    """``POST /prompt`` rejected the prompt; ``str()`` lists each failing node by title.

    ``error`` is the server's top-level ``error`` object, ``node_errors`` its per-node map, and
    ``prompt`` (when known) the API prompt that was sent, used to name nodes by ``_meta.title``.
    """

    def __init__(self, error: Mapping[str, Any] | None, node_errors: Mapping[str, Any] | None,
                 prompt: Mapping[str, Any] | None = None):
        self.error = dict(error or {})
        self.node_errors = dict(node_errors or {})
        self.prompt = prompt
        super().__init__(format_validation_error(self.error, self.node_errors, prompt))

    @property
    def type(self) -> str:
        return str(self.error.get("type", ""))


class ExecutionError(ComfyClientError):
    """A queued prompt failed while running (websocket ``execution_error``)."""

    def __init__(self, data: Mapping[str, Any], prompt: Mapping[str, Any] | None = None):
        self.data = dict(data)
        self.result: Any = None  # the RunResult collected up to the failure, when raised by run()
        node_id = str(self.data.get("node_id", "?"))
        title = node_title(prompt, node_id) if prompt else None
        label = f"node {node_id}" + (f" ({title!r})" if title else "")
        node_type = self.data.get("node_type")
        if node_type:
            label += f" [{node_type}]"
        message = f"{label} raised {self.data.get('exception_type', 'an exception')}: {self.data.get('exception_message', '').strip()}"
        super().__init__(message)

    @property
    def traceback(self) -> list[str]:
        return list(self.data.get("traceback") or [])


class ExecutionInterrupted(ComfyClientError):
    """A queued prompt was interrupted (websocket ``execution_interrupted``)."""

    def __init__(self, data: Mapping[str, Any]):
        self.data = dict(data)
        self.result: Any = None
        super().__init__(f"prompt {self.data.get('prompt_id')} was interrupted at node {self.data.get('node_id')}")


class ComfyTimeoutError(ComfyServerError):
    """A prompt did not finish in the allotted time."""


def node_title(prompt: Mapping[str, Any] | None, node_id: str) -> str | None:
    """The ``_meta.title`` of ``node_id`` in an API prompt, if any."""
    if not prompt:
        return None
    node = prompt.get(str(node_id))
    if not isinstance(node, Mapping):
        return None
    meta = node.get("_meta")
    if isinstance(meta, Mapping) and meta.get("title"):
        return str(meta["title"])
    return None


def _describe_error(err: Mapping[str, Any]) -> str:
    message = str(err.get("message") or err.get("type") or "error")
    details = str(err.get("details") or "")
    extra = err.get("extra_info") if isinstance(err.get("extra_info"), Mapping) else {}
    input_name = str(extra.get("input_name") or "")
    if details and details != input_name and details not in message:
        message += f" ({details})"
    return f"input {input_name!r}: {message}" if input_name else message


def format_validation_error(error: Mapping[str, Any], node_errors: Mapping[str, Any],
                            prompt: Mapping[str, Any] | None = None) -> str:
    """Render a ``/prompt`` 400 body as readable lines, one per failing input, naming node titles."""
    lines = []
    head = _describe_error(error) if error else "prompt rejected"
    extra = error.get("extra_info") if isinstance(error.get("extra_info"), Mapping) else {}
    if extra.get("class_type") and str(extra["class_type"]) not in head:
        # missing_node_type names the node by title only; the class is what to install.
        head += f" [class {extra['class_type']}]"
    match = _DETAILS_NODE_ID.search(str(error.get("details") or "")) if error else None
    title = node_title(prompt, match.group(1)) if match else None
    if title and title not in head:
        # ComfyUI 0.8.0 names an unknown node by its class only ("invalid_prompt"); say which one it is.
        head += f" [node {match.group(1)} {title!r}]"
    lines.append(f"ComfyUI rejected the prompt: {head}")
    for node_id, entry in sorted(node_errors.items(), key=lambda item: str(item[0])):
        entry = entry if isinstance(entry, Mapping) else {}
        class_type = entry.get("class_type") or (prompt or {}).get(str(node_id), {}).get("class_type", "?")
        title = node_title(prompt, str(node_id))
        label = f"node {node_id}"
        if title:
            label += f" {title!r}"
        label += f" ({class_type})"
        errors = entry.get("errors") or []
        if not errors:
            lines.append(f"  {label}: failed validation")
        for err in errors:
            lines.append(f"  {label}: {_describe_error(err if isinstance(err, Mapping) else {'message': str(err)})}")
    return "\n".join(lines)
