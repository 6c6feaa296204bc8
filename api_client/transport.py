"""HTTP calls to a ComfyUI server with bounded retries and exponential backoff.

Retried: connection failures, timeouts and 5xx answers (the server restarting, a proxy in front of
it). Not retried: 4xx answers, which are the caller's fault and carry a useful body; and, until the
server has answered once, a refused connection, an unknown host or a connect timeout: a server that
was never there will not appear during the backoff, so the user gets the reason at once.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import requests

from .errors import ComfyConnectionError, ComfyHTTPError

log = logging.getLogger(__name__)

#: Seconds to wait for a TCP connection before giving up on a host (``--connect-timeout``). A refused
#: connection or an unknown host fails at once; this bounds a host that drops the packets.
DEFAULT_CONNECT_TIMEOUT = 10.0


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

    def __init__(self, base_url: str, *, timeout: float = 30.0, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 retry: RetryPolicy | None = None, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if connect_timeout <= 0:
            raise ValueError(f"the connect timeout must be > 0 seconds, got {connect_timeout}")
        self.base_url = normalize_server_url(base_url)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.answered = False  # the server answered at least once (refusals are then worth retrying)
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
        kwargs.setdefault("timeout", (self.connect_timeout, self.timeout))
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
                if not self.answered and unreachable_reason(exc, self.connect_timeout) is not None:
                    break
                continue
            self.answered = True
            if response.status_code in ok:
                return response
            if response.status_code >= 500:
                last_error = ComfyHTTPError(method, url, response.status_code, response.text)
                continue
            raise ComfyHTTPError(method, url, response.status_code, response.text)
        if isinstance(last_error, ComfyHTTPError):
            raise last_error
        reason = unreachable_reason(last_error, self.connect_timeout)
        if reason is not None:
            tries = f" ({attempt} attempts)" if attempt > 1 else ""
            raise ComfyConnectionError(f"cannot reach ComfyUI at {self.base_url}{tries}: {reason}") from last_error
        raise ComfyConnectionError(
            f"{method} {url} failed after {attempt} attempt(s): {_innermost(last_error)}; check that ComfyUI "
            "is running there and reachable"
        ) from last_error

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        return _json(response)

    def post_json(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body if body is not None else {}, **kwargs)

    def close(self) -> None:
        self.session.close()


def _chain(exc: BaseException | None):
    """``exc`` and what caused it (requests wraps urllib3, which wraps the socket error)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        nested = exc.__cause__ or exc.__context__
        if nested is None:
            nested = getattr(exc, "reason", None) if isinstance(getattr(exc, "reason", None), BaseException) else None
        if nested is None and exc.args and isinstance(exc.args[0], BaseException):
            nested = exc.args[0]
        exc = nested


def _innermost(exc: BaseException | None) -> str:
    last = None
    for last in _chain(exc):
        pass
    return f"{type(last).__name__}: {last}" if last is not None else "unknown error"


def unreachable_reason(exc: BaseException | None, connect_timeout: float) -> str | None:
    """Why a connection never got established, with what to check (None for other failures)."""
    if isinstance(exc, requests.ConnectTimeout):
        return (f"no answer to the connection within {connect_timeout:g} s (--connect-timeout); check the host and "
                "port, and that no firewall drops the traffic")
    if not isinstance(exc, requests.ConnectionError):
        return None
    url = exc.request.url if getattr(exc, "request", None) is not None else ""
    host = urlsplit(url).hostname if url else None
    for cause in _chain(exc):
        if isinstance(cause, socket.gaierror) or type(cause).__name__ == "NameResolutionError":
            return (f"unknown host {host!r}" if host else "unknown host") + "; check the host name in the URL"
        if isinstance(cause, ConnectionRefusedError):
            return ("connection refused; check that ComfyUI is running there and listening on that port "
                    "(python main.py --listen HOST --port PORT)")
    return None


class AlreadyDone(Exception):
    """``before_retry`` found that an earlier, seemingly failed attempt did reach the server."""


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ComfyHTTPError(response.request.method or "GET", response.url, response.status_code,
                             "answer is not JSON: " + response.text[:200]) from exc
