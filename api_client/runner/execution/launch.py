"""A throw-away local ComfyUI for a run (``--launch PATH``), and the ``--tiny`` smoke-test setup.

The server runs from the user's checkout with a temporary base directory: this pack is installed
into its ``custom_nodes`` (hard links, or copies where the file system cannot link; no symlink,
which Windows allows only in Developer Mode), the models come from ``PATH/models`` (or the tiny models) through an
``extra_model_paths.yaml``, it listens on loopback on a free port, keeps its database in memory,
skips the API nodes and runs on the CPU when the machine has no NVIDIA device.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from ...local_server import LocalComfyUI

log = logging.getLogger(__name__)

PACK_ROOT = Path(__file__).resolve().parents[3]     # the repository (api_client/runner/execution/launch.py)
PACK_NAME = "pulid_flux_studio"
DEFAULT_TINY_MODELS = Path.home() / ".cache" / "pulid_studio" / "tiny_models"
#: What ComfyUI loads of the pack: the entry point, the glue, the library, the frontend extension, the
#: templates and the metadata ComfyUI reads (tests, docs and run outputs stay behind).
PACK_CONTENT = ("__init__.py", "nodes", "pulid_flux", "web", "workflows", "pyproject.toml", "requirements.txt",
                "LICENSE", "README.md")


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


def model_paths_yaml(models_dirs: Sequence[Path], extra_paths: Mapping[str, Sequence[Path]] | None = None) -> str:
    """An extra_model_paths.yaml mapping every sub-folder of each models dir to the same-named folder,
    plus ``extra_paths`` ({model folder: [directories]}, e.g. ``{"loras": [checkpoint_dir]}``), which
    are searched first (``is_default``) so their files win over same-named ones elsewhere."""
    lines = []
    if extra_paths:
        lines += ["pulid_studio_extra:", "  is_default: true"]
        for folder, paths in extra_paths.items():
            # One path per line in a double-quoted scalar: JSON quoting is valid YAML and keeps
            # Windows backslashes and spaces intact.
            lines.append(f"  {folder}: " + json.dumps("\n".join(str(Path(p).resolve()) for p in paths)))
    for i, models in enumerate(models_dirs):
        folders = sorted(p.name for p in Path(models).iterdir() if p.is_dir()) if Path(models).is_dir() else []
        if not folders:
            log.warning("%s has no model sub-folders", models)
            continue
        lines += [f"models_{i}:", f"  base_path: {Path(models).resolve()}"]
        lines += [f"  {name}: {name}" for name in folders]
    return "\n".join(lines) + "\n"


def launch(comfyui_path: str | Path, *, models_dirs: Sequence[Path], log_path: Path, single_thread: bool = False,
           startup_timeout: float = 240.0, tiny: bool = False,
           extra_paths: Mapping[str, Sequence[Path]] | None = None) -> LaunchedComfyUI:
    """Start ComfyUI (see the module docstring); the caller stops it. ``extra_paths`` adds model
    directories in place ({"loras": [folder]}: no copy, no link)."""
    env = dict(os.environ)
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if single_thread:
        # The tiny models' ops are so small that a thread pool only adds overhead on a busy CPU.
        env["OMP_NUM_THREADS"] = "1"
    if tiny:
        # The tiny Flux is narrower than FLUX.1: the pack lets ComfyUI builds that fix 24 heads load it.
        from pulid_flux.tiny.comfyui_detection import TINY_FLUX_ENV
        env[TINY_FLUX_ENV] = "1"
    server = LaunchedComfyUI(comfyui_path, log_path=log_path, startup_timeout=startup_timeout, env=env,
                             extra_args=["--preview-method", "none"])
    base = server.base_directory
    install_pack(base / "custom_nodes" / PACK_NAME)
    yaml_path = base / "extra_model_paths.yaml"
    yaml_path.write_text(model_paths_yaml(models_dirs, extra_paths), encoding="utf-8")
    server.extra_args += ["--extra-model-paths-config", str(yaml_path)]
    log.info("launching ComfyUI from %s on %s (%s)", comfyui_path, server.url, "CPU" if server.cpu else "GPU")
    return server.start()


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)
    except OSError:  # another volume, or a file system without hard links
        shutil.copy2(source, target)
    return target


def install_pack(target: Path, source: Path = PACK_ROOT) -> Path:
    """Put the pack's runtime files (:data:`PACK_CONTENT`) into ``target``, a new folder."""
    target.mkdir(parents=True)
    for name in PACK_CONTENT:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, target / name, copy_function=_link_or_copy,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.is_file():
            _link_or_copy(str(path), str(target / name))
    return target


def prepare_tiny_models(models_dir: Path) -> Path:
    """Build (or reuse) the tiny random-weight models in ComfyUI's folder layout."""
    from pulid_flux.tiny import build_tiny_models

    log.info("tiny models in %s (reused when already built)", models_dir)
    build_tiny_models(models_dir)
    return models_dir
