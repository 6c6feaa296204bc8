"""Shared test fixtures: where the shared golden tensors and photos are, and the ComfyUI checkout."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PULID_STUDIO_SHARED", ROOT.parent / "shared"))
GOLDEN = SHARED / "golden" / "pulid_flux_a"
FACES = SHARED / "faces"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is missing (the shared test data sits beside the repo as ../shared)")
    return path


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return _require(GOLDEN)


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    return _require(FACES)


@pytest.fixture(scope="session")
def comfyui_path() -> Path:
    """The ComfyUI checkout named by COMFYUI_PATH; integration tests skip without it."""
    value = os.environ.get("COMFYUI_PATH")
    if not value:
        pytest.skip("COMFYUI_PATH is not set: integration tests need a real ComfyUI checkout")
    path = Path(value)
    if not (path / "main.py").is_file() or not (path / "comfy").is_dir():
        pytest.fail(f"COMFYUI_PATH={value} is not a ComfyUI checkout (no main.py / comfy/)")
    return path
