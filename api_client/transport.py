"""HTTP calls to a ComfyUI server with bounded retries and exponential backoff.

Retried: connection failures, timeouts and 5xx answers (the server restarting, a proxy in front of
it). Not retried: 4xx answers, which are the caller's fault and carry a useful body.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import requests

from .errors import ComfyConnectionError, ComfyHTTPError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; waits ``backoff * 2**n`` seconds (at most ``max_backoff``) between them."""

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0

    def __post_init__(self):
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("RetryPolicy backoff values must be >= 0")

    def delay(self, failed_attempts: int) -> float:
        return min(self.max_backoff, self.backoff * (2 ** (failed_attempts - 1)))


def normalize_server_url(server: str) -> str:
    """``host:port`` or ``http://host:port/`` -> ``http://host:port`` (no trailing slash)."""
    server = server.strip()
    if not server:
        raise ValueError("the server URL is empty")
    if "://" not in server:
        server = "http://" + server
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) server URL: {server!r}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def websocket_url(base_url: str, client_id: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", f"clientId={client_id}", ""))


class Transport:
    """A ``requests.Session`` bound to one server, with retries."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, retry: RetryPolicy | None = None,
                 session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep):
        self.base_url = normalize_server_url(base_url)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self._sleep = sleep

    def url(self, path: str) -> str:
        return self.base_url + ("" if path.startswith("/") else "/") + path

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,),
                before_retry: Callable[[], bool] | None = None, **kwargs: Any) -> requests.Response:
        """Send a request; return the response when its status is in ``ok``.

        A status outside ``ok`` below 500 raises :class:`ComfyHTTPError` at once. Connection errors
        and 5xx are retried per the policy; ``before_retry`` may return True to stop retrying: the
        call then raises :class:`AlreadyDone` (used to avoid queueing a prompt twice).
        """
        url = self.url(path)
        kwargs.setdefault("timeout", self.timeout)
        last_error: Exception | None = None
        for attempt in range(1, self.retry.attempts + 1):
            if attempt > 1:
                delay = self.retry.delay(attempt - 1)
                log.info("retrying %s %s in %.1fs (attempt %d/%d): %s", method, path, delay, attempt,
                         self.retry.attempts, last_error)
                self._sleep(delay)
                if before_retry is not None and before_retry():
                    raise AlreadyDone(f"{method} {path}: the server already has what an earlier attempt sent")
            try:
                response = self.session.request(method, url, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_error = exc
                continue
            if response.status_code in ok:
                return response
            if response.status_code >= 500:
                last_error = ComfyHTTPError(method, url, response.status_code, response.text)
                continue
            raise ComfyHTTPError(method, url, response.status_code, response.text)
        if isinstance(last_error, ComfyHTTPError):
            raise last_error
        raise ComfyConnectionError(
            f"{method} {url} failed after {self.retry.attempts} attempt(s): {last_error}. "
            "Is ComfyUI running there (python main.py --listen ...)?"
        ) from last_error

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        return _json(response)

    def post_json(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body if body is not None else {}, **kwargs)

    def close(self) -> None:
        self.session.close()


class AlreadyDone(Exception):
    """``before_retry`` found that an earlier, seemingly failed attempt did reach the server."""


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ComfyHTTPError(response.request.method or "GET", response.url, response.status_code,
                             "answer is not JSON: " + response.text[:200]) from exc
