"""Start and stop a real ComfyUI server (CPU, loopback, temporary base directory) for tests."""

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pulid_flux.tiny.comfyui_detection import TINY_FLUX_ENV

log = logging.getLogger(__name__)

PACK_ROOT = Path(__file__).resolve().parents[2]
PACK_NAME = "pulid_flux_studio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """A ComfyUI process with this pack linked into its custom_nodes and the given model folders.

    ``extra_custom_nodes``: {folder name: path} of other node packs to link in beside ours (e.g.
    ComfyUI-GGUF). With a ``models_dir`` (the tiny models) the server gets ``TINY_FLUX_ENV``, so the
    pack lets ComfyUI's detection read the narrow tiny Flux's sizes (``pulid_flux.tiny.detection``).
    """

    def __init__(self, comfyui_path: Path, base_dir: Path, models_dir: Path | None = None,
                 extra_args: tuple[str, ...] = (), extra_custom_nodes: dict | None = None):
        self.comfyui_path = Path(comfyui_path)
        self.base_dir = Path(base_dir)
        self.models_dir = models_dir
        self.extra_args = extra_args
        self.custom_nodes = {PACK_NAME: PACK_ROOT}
        self.custom_nodes.update({name: Path(path) for name, path in (extra_custom_nodes or {}).items()})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base_dir / "server.log"
        self.proc = None

    def _prepare(self):
        custom_nodes = self.base_dir / "custom_nodes"
        custom_nodes.mkdir(parents=True, exist_ok=True)
        for name, path in self.custom_nodes.items():
            link = custom_nodes / name
            if not link.exists():
                link.symlink_to(path, target_is_directory=True)
        for sub in ("input", "output", "temp", "user", "models"):
            (self.base_dir / sub).mkdir(exist_ok=True)
        args = []
        if self.models_dir is not None:
            yaml_path = self.base_dir / "extra_model_paths.yaml"
            folders = sorted(p.name for p in Path(self.models_dir).iterdir() if p.is_dir())
            lines = ["tiny_models:", f"  base_path: {self.models_dir}"]
            lines += [f"  {name}: {name}" for name in folders]
            yaml_path.write_text("\n".join(lines) + "\n")
            args += ["--extra-model-paths-config", str(yaml_path)]
        return args

    def start(self, timeout: float = 120.0) -> "ComfyServer":
        args = self._prepare()
        cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base_dir), "--database-url", "sqlite:///:memory:",
               "--disable-api-nodes", "--disable-all-custom-nodes", "--whitelist-custom-nodes", *self.custom_nodes,
               "--preview-method", "none", *args, *self.extra_args]
        # One thread: the tiny models' ops are so small that a 2-thread pool on a busy 2-core machine
        # makes them 20-40x slower.
        env = dict(os.environ, DO_NOT_TRACK="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
        if self.models_dir is not None:
            env[TINY_FLUX_ENV] = "1"  # the tiny Flux loads on ComfyUI builds that fix 24 heads (0.8.0)
        self._log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=self.comfyui_path, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.get_json("/system_stats", timeout=2)
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"ComfyUI did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if getattr(self, "_log_file", None):
            self._log_file.close()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get_json(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return json.loads(r.read())

    def post_json(self, path: str, body: dict, timeout: float = 30):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")
