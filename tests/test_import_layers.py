"""The import order of docs/architecture.md, checked by tools/check_layers.py: the code follows it,
and a deliberately wrong import of each kind is caught (file, line, which rule)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import check_layers  # noqa: E402

sys.path.remove(str(ROOT / "tools"))


@pytest.fixture(scope="module")
def modules():
    return check_layers.collect(ROOT)


def test_every_package_is_read(modules):
    assert {"pulid_flux.face.align", "pulid_flux.engine.encoder", "api_client.runner", "nodes.pose"} <= set(modules)


def test_the_code_follows_the_layers(modules):
    assert [str(v) for v in check_layers.violations(modules)] == []


def with_line(modules, module, line):
    path, source = modules[module]
    return {**modules, module: (path, source + "\n" + line + "\n")}


WRONG = [
    ("pulid_flux.face.align", "from ..engine.model import PulidFlux", "pulid_flux.engine.model",
     "engine (pulid_flux) is a higher layer than face"),
    ("pulid_flux.face.choice", "def lazy():\n    from ..engine import encoder", "pulid_flux.engine",
     "engine (pulid_flux) is a higher layer than face"),
    ("pulid_flux.errors", "from .face import Face", "pulid_flux.face", "face (pulid_flux) is a higher layer than base"),
    ("pulid_flux.engine.inject", "from ..scoring import score_batch", "pulid_flux.scoring",
     "scoring (pulid_flux) is a higher layer than engine"),
    ("pulid_flux.pose.render", "from ..dataset import crop", "pulid_flux.dataset",
     "dataset and pose (pulid_flux) are independent parts of one layer"),
    ("pulid_flux.scoring.run", "from pulid_flux import PulidFlux", "pulid_flux",
     "not through the pulid_flux package facade"),
    ("pulid_flux.engine.eva", "import comfy.model_management", "comfy.model_management",
     "importable without ComfyUI"),
    ("pulid_flux.dataset.cli", "from api_client.client import ComfyClient", "api_client.client",
     "the library does not know the client"),
    ("api_client.overrides", "import torch", "torch", "the client does not import torch"),
    ("api_client.overrides", "from pulid_flux.pose import pose_bank", "pulid_flux.pose",
     "only inside the function using them"),
    ("api_client.overrides", "def lazy():\n    from pulid_flux.engine import model", "pulid_flux.engine",
     "the client never needs the PuLID engine"),
    ("nodes.pose", "from ..api_client import ComfyClient", "api_client", "the nodes do not drive ComfyUI"),
    ("api_client.runner.execution.run", "from ..sources.ablation import load_spec", "api_client.runner.sources.ablation",
     "sources and execution (api_client.runner) are independent parts of one layer"),
    ("api_client.runner.sources.ablation.source", "from ...execution import run_plan", "api_client.runner.execution",
     "execution and sources (api_client.runner) are independent parts of one layer"),
    ("api_client.runner.reporting.scoring", "from ..execution.manifest import RunManifest",
     "api_client.runner.execution.manifest", "execution and reporting (api_client.runner) are independent"),
    ("api_client.runner.plan", "from .commands import SOURCES", "api_client.runner.commands",
     "cli (api_client.runner) is a higher layer than plan"),
    ("api_client.client", "from .runner import main", "api_client.runner", "the client's core does not know the runner"),
]


@pytest.mark.parametrize("module, line, imported, why", WRONG, ids=[f"{m}:{i}" for m, _, i, _ in WRONG])
def test_a_wrong_import_is_caught(modules, module, line, imported, why):
    [violation] = check_layers.violations(with_line(modules, module, line))
    assert violation.importer == module and violation.imported == imported and why in violation.why
    assert violation.line == len(modules[module][1].splitlines()) + 2 + line.count("\n")
    assert str(violation).startswith(f"{modules[module][0]}:{violation.line}: ")


@pytest.mark.parametrize("module, line", [
    ("api_client.runner.reporting.report", "def lazy():\n    from pulid_flux.scoring import score_gallery"),
    ("pulid_flux.engine.inject", "def lazy():\n    import comfy.model_patcher"),
    ("pulid_flux.tiny.pulid", "from ..engine.model import PulidFlux"),
    ("pulid_flux.engine.encoder", "from ..face.parsing import BiSeNet"),
])
def test_allowed_imports_pass(modules, module, line):
    assert check_layers.violations(with_line(modules, module, line)) == []


def test_the_command_fails_on_a_wrong_import(tmp_path):
    for package in check_layers.PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "pulid_flux" / "__init__.py").write_text("")
    (tmp_path / "pulid_flux" / "face").mkdir()
    (tmp_path / "pulid_flux" / "face" / "__init__.py").write_text("from ..engine import encoder\n")
    script = ("import sys, check_layers; from pathlib import Path; "
              f"sys.exit(check_layers.main(Path({str(tmp_path)!r})))")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT / "tools", capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stdout.strip() == ("pulid_flux/face/__init__.py:1: pulid_flux.face imports pulid_flux.engine: "
                                  "engine (pulid_flux) is a higher layer than face")
