"""Start a throw-away ComfyUI server (for tests and local runs) and stop it again.

``python main.py --cpu --listen 127.0.0.1 --port <free> --base-directory <dir>
--database-url sqlite:///:memory: --disable-api-nodes [extra args]`` in the ComfyUI checkout;
ready when ``GET /system_stats`` answers (the port opens only after all nodes are imported).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import requests

from .errors import ComfyClientError, ComfyStartError

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalComfyUI:
    """A ComfyUI subprocess; use as a context manager or call ``start()`` / ``stop()``.

    ``base_directory`` (created if needed, temporary by default) holds models, custom_nodes,
    input, output and user folders. Output goes to ``log_path`` (default ``<base>/comfyui.log``).
    """

    def __init__(self, comfyui_path: str | Path, *, base_directory: str | Path | None = None, port: int | None = None,
                 host: str = "127.0.0.1", extra_args: Sequence[str] = (), python: str = sys.executable,
                 startup_timeout: float = 180.0, log_path: str | Path | None = None, disable_api_nodes: bool = True,
                 env: dict[str, str] | None = None):
        self.comfyui_path = Path(comfyui_path)
        if not (self.comfyui_path / "main.py").is_file():
            raise ComfyClientError(f"{self.comfyui_path} is not a ComfyUI checkout (no main.py)")
        self._tempdir: tempfile.TemporaryDirectory | None = None
        if base_directory is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="comfyui-base-")
            base_directory = self._tempdir.name
        self.base_directory = Path(base_directory)
        self.host = host
        self.port = port or free_port(host)
        self.extra_args = list(extra_args)
        self.python = python
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path else self.base_directory / "comfyui.log"
        self.disable_api_nodes = disable_api_nodes
        self.env = env
        self.process: subprocess.Popen | None = None
        self._log_file = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [self.python, "main.py", "--cpu", "--listen", self.host, "--port", str(self.port),
               "--base-directory", str(self.base_directory), "--database-url", "sqlite:///:memory:"]
        if self.disable_api_nodes:
            cmd.append("--disable-api-nodes")
        return cmd + self.extra_args

    def start(self) -> "LocalComfyUI":
        if self.process is not None:
            raise ComfyClientError("this ComfyUI server is already started")
        for folder in ("custom_nodes", "models", "input", "output", "user"):
            (self.base_directory / folder).mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "wb")
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("DO_NOT_TRACK", "1")
        log.info("starting ComfyUI: %s (log %s)", " ".join(self.command()), self.log_path)
        self.process = subprocess.Popen(self.command(), cwd=self.comfyui_path, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise self._start_error(f"ComfyUI exited with code {self.process.returncode} during start-up")
            try:
                if requests.get(self.url + "/system_stats", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise self._start_error(f"ComfyUI did not answer on {self.url} within {self.startup_timeout:.0f}s")

    def _start_error(self, what: str) -> ComfyStartError:
        """``what`` with the log's last error line, and the fix when a module is missing (ComfyUI's
        requirements not installed in the Python that starts it: the most common first-run failure)."""
        tail = self.log_tail()
        errors = [line.strip() for line in tail.splitlines() if re.search(r"(Error|Exception)\b", line)]
        summary = what + (f": {errors[-1]}" if errors else "")
        missing = re.findall(r"No module named '([^']+)'", tail)
        if missing:
            summary += (f"; {self.python} lacks ComfyUI's requirements: install them in this environment with "
                        f"`{Path(self.python).name} -m pip install -r {self.comfyui_path / 'requirements.txt'}`")
        return ComfyStartError(f"{summary}\nlast log lines:\n{tail}", summary=summary, log_path=self.log_path)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """Terminate the server process we started (kill it if it does not exit in time)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("ComfyUI (pid %d) ignored SIGTERM; killing it", process.pid)
                process.kill()
                process.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> "LocalComfyUI":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
