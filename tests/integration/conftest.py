"""Integration-tier fixtures: ComfyUI imported in-process from COMFYUI_PATH (CPU only)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # comfy_server helper module

import pytest


@pytest.fixture(scope="session")
def tiny_models(comfyui_path, tmp_path_factory, golden_dir):
    """Tiny random-weight models in the users' file formats, in a ComfyUI models tree."""
    import os
    import tempfile

    from pulid_flux.tiny import build_tiny_models
    # Files are fingerprinted and written atomically, so sessions can share (and reuse) one folder.
    models = Path(os.environ.get("PULID_STUDIO_TINY_MODELS", Path(tempfile.gettempdir()) / "pulid_studio_tiny_models"))
    build_tiny_models(models, eva_source=golden_dir / "eva.safetensors")
    return models


@pytest.fixture(scope="session")
def comfy_server(comfyui_path, tiny_models, tmp_path_factory, request):
    """One real ComfyUI server for the session: CPU, loopback, this pack, the tiny models."""
    from comfy_server import ComfyServer
    server = ComfyServer(comfyui_path, tmp_path_factory.mktemp("comfy_base"), models_dir=tiny_models)
    server.start()
    yield server
    server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed test that used the server, append the server log tail to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "comfy_server" in getattr(item, "fixturenames", ()):
        server = item.funcargs.get("comfy_server")
        if server is not None:
            report.sections.append(("ComfyUI server log (tail)", server.log_tail(80)))
