"""Shared test fixtures: where the shared golden tensors and photos are, and the ComfyUI checkout.

Also the ComfyUI tier's accounting: every test that needs COMFYUI_PATH (the ``comfyui_path``
fixture, or the ``integration`` / ``browser`` marks) is counted at the end of the session, and with
``--require-comfyui`` (or ``PULID_STUDIO_REQUIRE_COMFYUI=1``, what CI sets) such a test that skips,
for whatever reason, fails instead: in CI an unproven ComfyUI test is a failure.
"""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_ENV = "PULID_STUDIO_SHARED"
REQUIRE_COMFYUI_ENV = "PULID_STUDIO_REQUIRE_COMFYUI"
TIER_ONLY_ENV = "PULID_STUDIO_COMFYUI_TIER_ONLY"
_TIER = pytest.StashKey[dict]()  # nodeid -> browser-marked, for every test that needs COMFYUI_PATH


class SharedData:
    """The shared test data (golden tensors, real face photos): ``../shared`` beside the repo, or the
    folder named by $PULID_STUDIO_SHARED. Every test that needs it goes through :meth:`require`, so
    without the data each one skips saying which file is missing and how to provide it."""

    def __init__(self, root: Path):
        self.root = root

    def require(self, relative: str) -> Path:
        path = self.root / relative
        if not path.exists():
            pytest.skip(f"needs the shared test data: {path} is missing (place the shared folder beside the "
                        f"repo as ../shared, or set {SHARED_ENV} to it)")
        return path


@pytest.fixture(scope="session")
def shared_data() -> SharedData:
    return SharedData(Path(os.environ.get(SHARED_ENV, ROOT.parent / "shared")))


@pytest.fixture(scope="session")
def golden_dir(shared_data) -> Path:
    return shared_data.require("golden/pulid_flux_a")


@pytest.fixture(scope="session")
def faces_dir(shared_data) -> Path:
    return shared_data.require("faces")


@pytest.fixture(scope="session")
def dlib_engine():
    """dlib's face engine at its defaults (the recognizer CI has), loaded once for the session."""
    pytest.importorskip("dlib")
    from pulid_flux.face import load_engine

    return load_engine("dlib")


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


@pytest.fixture(scope="session")
def comfyui_gguf(comfyui_path, shared_data, tmp_path_factory) -> Path:
    """The ComfyUI-GGUF node pack's source: COMFYUI_GGUF_PATH, else its snapshot in ../shared/comfyui."""
    import tarfile

    value = os.environ.get("COMFYUI_GGUF_PATH")
    if value:
        return Path(value)
    snapshots = shared_data.require("comfyui")
    archives = sorted(snapshots.glob("ComfyUI-GGUF-*.tar.xz"))
    if not archives:
        pytest.fail(f"no ComfyUI-GGUF: set COMFYUI_GGUF_PATH or put its snapshot in {snapshots}")
    dest = tmp_path_factory.mktemp("comfyui_gguf")
    with tarfile.open(archives[-1]) as tar:
        tar.extractall(dest, filter="data")
    return dest / "ComfyUI-GGUF"


PACK_UNDER_TEST = "_pulid_studio_pack_under_test"


@pytest.fixture(scope="session")
def comfy(comfyui_path):
    """ComfyUI's packages importable in this process, forced onto the CPU.

    ComfyUI's model management asserts a CUDA build unless --cpu is set; under pytest its argument
    parser is off, so the flag is set on the parsed defaults before anything imports it.
    """
    import sys

    root = str(comfyui_path)
    if root not in sys.path:
        sys.path.insert(0, root)
    from comfy.cli_args import args
    args.cpu = True
    import comfy.model_management  # noqa: F401  (fails here, clearly, if the checkout is broken)
    import comfy.controlnet  # noqa: F401
    import comfy.model_detection
    import comfy.sd  # noqa: F401
    import comfy.utils  # noqa: F401
    import comfy

    from pulid_flux.tiny.comfyui_detection import allow_narrow_flux
    allow_narrow_flux()  # tiny / golden files: sizes from their shapes where ComfyUI takes constants
    return comfy


@pytest.fixture
def comfy_progress_calls(comfy):
    """Every ``comfy.utils.ProgressBar`` update while a test runs, as (value, total). ComfyUI 0.33
    throttles the updates in between, never the first and the last one."""
    calls = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    yield calls
    comfy.utils.set_progress_bar_global_hook(None)


@pytest.fixture(scope="session")
def pack_nodes(comfy):
    """Import one of the pack's node modules (``pack_nodes("pose")``) the way ComfyUI reaches it:
    as a sub-package of the pack (relative imports), without registering the other modules."""
    import importlib
    import sys
    import types

    for name, path in ((PACK_UNDER_TEST, ROOT), (f"{PACK_UNDER_TEST}.nodes", ROOT / "nodes")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            sys.modules[name] = module

    # What nodes/__init__.py does at ComfyUI start: the model folders the node schemas list.
    importlib.import_module(f"{PACK_UNDER_TEST}.nodes.paths").register_model_folders()

    def load(module: str):
        return importlib.import_module(f"{PACK_UNDER_TEST}.nodes.{module}")
    return load


# -- the real-server tier (shared by tests/integration and tests/browser: one server per session) --

@pytest.fixture(scope="session")
def tiny_models(comfyui_path, golden_dir):
    """Tiny random-weight models in the users' file formats, in a ComfyUI models tree."""
    import tempfile

    from pulid_flux.tiny import build_tiny_models
    # Files are fingerprinted and written atomically, so sessions can share (and reuse) one folder.
    models = Path(os.environ.get("PULID_STUDIO_TINY_MODELS", Path(tempfile.gettempdir()) / "pulid_studio_tiny_models"))
    build_tiny_models(models, eva_source=golden_dir / "eva.safetensors")
    return models


@pytest.fixture(scope="session")
def comfy_server(comfyui_path, tiny_models, tmp_path_factory):
    """One real ComfyUI server for the session: CPU, loopback, this pack, the tiny models."""
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from comfy_server import ComfyServer
    server = ComfyServer(comfyui_path, tmp_path_factory.mktemp("comfy_base"), models_dir=tiny_models)
    server.start()
    yield server
    server.stop()


# -- the ComfyUI tier: skips fail under --require-comfyui, counts at the end ------------------------

def pytest_addoption(parser):
    parser.addoption("--require-comfyui", action="store_true",
                     default=os.environ.get(REQUIRE_COMFYUI_ENV) == "1",
                     help="a test that needs COMFYUI_PATH and skips fails instead (also "
                          f"{REQUIRE_COMFYUI_ENV}=1); the session ends with the tier's counts")
    parser.addoption("--comfyui-tier-only", action="store_true", default=os.environ.get(TIER_ONLY_ENV) == "1",
                     help="run only the tests that need COMFYUI_PATH (also "
                          f"{TIER_ONLY_ENV}=1): the others do not depend on the ComfyUI version, so CI "
                          "runs them once, not once per version")


def needs_comfyui(item) -> bool:
    return ("comfyui_path" in getattr(item, "fixturenames", ())
            or any(item.get_closest_marker(mark) for mark in ("integration", "browser")))


def pytest_collection_modifyitems(config, items):
    config.stash[_TIER] = {item.nodeid: bool(item.get_closest_marker("browser")) for item in items
                           if needs_comfyui(item)}
    if config.getoption("comfyui_tier_only"):
        others = [item for item in items if item.nodeid not in config.stash[_TIER]]
        items[:] = [item for item in items if item.nodeid in config.stash[_TIER]]
        config.hook.pytest_deselected(items=others)


def comfyui_label(path: str | None) -> str:
    """"ComfyUI <version>" of the checkout at ``path`` (its comfyui_version.py), or why it is unknown."""
    if not path:
        return "no COMFYUI_PATH"
    try:
        text = (Path(path) / "comfyui_version.py").read_text(encoding="utf-8")
    except OSError:
        return f"ComfyUI of unknown version at {path}"
    match = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", text)
    return f"ComfyUI {match.group(1)}" if match else f"ComfyUI of unknown version at {path}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A ComfyUI-tier skip fails under --require-comfyui; a failed server test gets the server log."""
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and not hasattr(report, "wasxfail") and item.config.getoption("require_comfyui")
            and needs_comfyui(item)):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"--require-comfyui / {REQUIRE_COMFYUI_ENV}=1: this test needs COMFYUI_PATH and may "
                           f"not skip, but it skipped: {reason}")
    if report.failed and "comfy_server" in getattr(item, "fixturenames", ()):
        server = item.funcargs.get("comfy_server")
        if server is not None:
            report.sections.append(("ComfyUI server log (tail)", server.log_tail(80)))


def tier_counts(stats, tier: dict, browser: bool | None = None) -> dict[str, int]:
    """Outcome counts of the tier's tests (``browser``: only browser-marked ones, or only the others)."""
    wanted = {nodeid for nodeid, is_browser in tier.items() if browser is None or is_browser == browser}
    counts = {}
    for key, label in (("passed", "passed"), ("skipped", "skipped"), ("failed", "failed"), ("error", "errors")):
        # One report per test and outcome, except "passed" (setup and teardown pass too).
        reports = [r for r in stats.get(key, ()) if getattr(r, "nodeid", None) in wanted
                   and (key != "passed" or r.when == "call")]
        counts[label] = len({r.nodeid for r in reports})
    return counts


def pytest_terminal_summary(terminalreporter, config):
    tier = config.stash.get(_TIER, {})
    if not tier or not (os.environ.get("COMFYUI_PATH") or config.getoption("require_comfyui")):
        return
    line = lambda counts: ", ".join(f"{n} {label}" for label, n in counts.items())  # noqa: E731
    label = comfyui_label(os.environ.get("COMFYUI_PATH"))
    terminalreporter.write_sep("=", "ComfyUI tier", bold=True)
    terminalreporter.write_line(f"ComfyUI tier on {label}: {line(tier_counts(terminalreporter.stats, tier))}")
    terminalreporter.write_line(f"  of which the browser tier: {line(tier_counts(terminalreporter.stats, tier, True))}")
