"""The ComfyUI websocket (``/ws?clientId=...``): typed events and a reconnecting reader."""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import websocket

from .errors import ComfyConnectionError
from .transport import RetryPolicy

log = logging.getLogger(__name__)

# Binary frame event ids (server.py BinaryEventTypes).
PREVIEW_IMAGE = 1
UNENCODED_PREVIEW_IMAGE = 2
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4


@dataclass
class Event:
    """One websocket message: ``type`` and ``data`` for JSON ones, ``binary`` for binary frames."""

    type: str
    data: dict = field(default_factory=dict)
    binary: bytes | None = None

    @property
    def prompt_id(self) -> str | None:
        value = self.data.get("prompt_id") if isinstance(self.data, dict) else None
        return str(value) if value is not None else None

    @property
    def node(self) -> str | None:
        value = self.data.get("node") if isinstance(self.data, dict) else None
        return str(value) if value is not None else None

    @classmethod
    def parse(cls, message: str | bytes) -> "Event":
        if isinstance(message, (bytes, bytearray)):
            return cls._parse_binary(bytes(message))
        try:
            payload = json.loads(message)
        except ValueError:
            log.warning("ignoring a websocket text frame that is not JSON: %.80r", message)
            return cls("invalid", {"raw": message})
        if not isinstance(payload, dict) or "type" not in payload:
            return cls("invalid", {"raw": payload})
        data = payload.get("data")
        return cls(str(payload["type"]), data if isinstance(data, dict) else {"value": data})

    @classmethod
    def _parse_binary(cls, message: bytes) -> "Event":
        if len(message) < 4:
            return cls("binary", {}, message)
        (event_id,) = struct.unpack(">I", message[:4])
        body = message[4:]
        if event_id == PREVIEW_IMAGE and len(body) >= 4:
            (image_type,) = struct.unpack(">I", body[:4])
            return cls("preview_image", {"image_type": "jpeg" if image_type == 1 else "png"}, body[4:])
        if event_id == PREVIEW_IMAGE_WITH_METADATA and len(body) >= 4:
            (size,) = struct.unpack(">I", body[:4])
            try:
                meta = json.loads(body[4:4 + size])
            except ValueError:
                meta = {}
            return cls("preview_image", meta if isinstance(meta, dict) else {}, body[4 + size:])
        if event_id == TEXT and len(body) >= 4:
            (size,) = struct.unpack(">I", body[:4])
            node = body[4:4 + size].decode("utf-8", "replace")
            return cls("progress_text", {"node": node, "text": body[4 + size:].decode("utf-8", "replace")})
        return cls("binary", {"event_id": event_id}, body)


class EventStream:
    """Reads events from ``url``; on a dropped connection it reconnects with the same client id.

    The server re-sends ``executing`` for the current node to a reconnected client, but events
    emitted while disconnected are lost: callers should check ``/history`` after a reconnect
    (``receive`` returns an ``Event("reconnected")`` to tell them).
    """

    def __init__(self, url: str, *, connect_timeout: float = 10.0, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, factory: Callable[[], Any] | None = None):
        self.url = url
        self.connect_timeout = connect_timeout
        self.retry = retry or RetryPolicy()
        self.reconnects = 0
        self._sleep = sleep
        self._factory = factory or websocket.WebSocket
        self._ws: Any = None

    def connect(self) -> None:
        last_error: Exception | None = None
        for attempt in range(1, self.retry.attempts + 1):
            if attempt > 1:
                self._sleep(self.retry.delay(attempt - 1))
            ws = self._factory()
            try:
                ws.connect(self.url, timeout=self.connect_timeout)
            except (OSError, websocket.WebSocketException) as exc:
                last_error = exc
                log.info("websocket connect to %s failed (attempt %d/%d): %s", self.url, attempt, self.retry.attempts, exc)
                continue
            self._ws = ws
            return
        raise ComfyConnectionError(f"cannot open the websocket {self.url} after {self.retry.attempts} attempt(s): {last_error}")

    @property
    def connected(self) -> bool:
        return self._ws is not None and bool(getattr(self._ws, "connected", True))

    def receive(self, timeout: float) -> Event | None:
        """The next event, ``None`` after ``timeout`` seconds of silence, or ``Event("reconnected")``."""
        if self._ws is None:
            self.connect()
        try:
            self._ws.settimeout(max(timeout, 0.001))
            message = self._ws.recv()
        except (websocket.WebSocketTimeoutException, socket.timeout, TimeoutError):
            return None
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError) as exc:
            log.warning("websocket %s dropped (%s); reconnecting", self.url, exc)
            self._reconnect()
            return Event("reconnected", {"reconnects": self.reconnects})
        if message is None or message == "":
            # websocket-client returns an empty frame when the peer closed cleanly.
            if not getattr(self._ws, "connected", True):
                self._reconnect()
                return Event("reconnected", {"reconnects": self.reconnects})
            return None
        return Event.parse(message)

    def _reconnect(self) -> None:
        self._close_socket()
        self.reconnects += 1
        self.connect()

    def _close_socket(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:  # closing a broken socket may raise anything; it is gone either way
                pass
        self._ws = None

    def close(self) -> None:
        self._close_socket()

    def __enter__(self) -> "EventStream":
        self.connect()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
