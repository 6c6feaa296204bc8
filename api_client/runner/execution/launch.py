"""A throw-away local ComfyUI for a run (``--launch PATH``), and the ``--tiny`` smoke-test setup.

The server runs from the user's checkout with a temporary base directory: this pack is linked
into its ``custom_nodes``, the models come from ``PATH/models`` (or the tiny models) through an
``extra_model_paths.yaml``, it listens on loopback on a free port, keeps its database in memory,
skips the API nodes and runs on the CPU when the machine has no NVIDIA device.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ...local_server import LocalComfyUI

log = logging.getLogger(__name__)

PACK_ROOT = Path(__file__).resolve().parents[3]     # the repository (api_client/runner/execution/launch.py)
PACK_NAME = "pulid_flux_studio"
DEFAULT_TINY_MODELS = Path.home() / ".cache" / "pulid_studio" / "tiny_models"


def has_nvidia_gpu() -> bool:
    """True when an NVIDIA device file exists (cheap: no torch import, no CUDA initialisation)."""
    return any(Path("/dev").glob("nvidia[0-9]*"))


class LaunchedComfyUI(LocalComfyUI):
    """:class:`LocalComfyUI` that keeps the GPU when there is one."""

    def __init__(self, *args, cpu: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.cpu = (not has_nvidia_gpu()) if cpu is None else cpu

    def command(self) -> list[str]:
        cmd = super().command()
        if not self.cpu:
            cmd.remove("--cpu")
        return cmd


def model_paths_yaml(models_dirs: Sequence[Path]) -> str:
    """An extra_model_paths.yaml mapping every sub-folder of each models dir to the same-named folder."""
    lines = []
    for i, models in enumerate(models_dirs):
        folders = sorted(p.name for p in Path(models).iterdir() if p.is_dir()) if Path(models).is_dir() else []
        if not folders:
            log.warning("%s has no model sub-folders", models)
            continue
        lines += [f"models_{i}:", f"  base_path: {Path(models).resolve()}"]
        lines += [f"  {name}: {name}" for name in folders]
    return "\n".join(lines) + "\n"


def launch(comfyui_path: str | Path, *, models_dirs: Sequence[Path], log_path: Path, single_thread: bool = False,
           startup_timeout: float = 240.0) -> LaunchedComfyUI:
    """Start ComfyUI (see the module docstring); the caller stops it."""
    env = dict(os.environ)
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if single_thread:
        # The tiny models' ops are so small that a thread pool only adds overhead on a busy CPU.
        env["OMP_NUM_THREADS"] = "1"
    server = LaunchedComfyUI(comfyui_path, log_path=log_path, startup_timeout=startup_timeout, env=env,
                             extra_args=["--preview-method", "none"])
    base = server.base_directory
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    (base / "custom_nodes" / PACK_NAME).symlink_to(PACK_ROOT, target_is_directory=True)
    yaml_path = base / "extra_model_paths.yaml"
    yaml_path.write_text(model_paths_yaml(models_dirs), encoding="utf-8")
    server.extra_args += ["--extra-model-paths-config", str(yaml_path)]
    log.info("launching ComfyUI from %s on %s (%s)", comfyui_path, server.url, "CPU" if server.cpu else "GPU")
    return server.start()


def prepare_tiny_models(models_dir: Path) -> Path:
    """Build (or reuse) the tiny random-weight models in ComfyUI's folder layout."""
    from pulid_flux.tiny import build_tiny_models

    log.info("tiny models in %s (reused when already built)", models_dir)
    build_tiny_models(models_dir)
    return models_dir
