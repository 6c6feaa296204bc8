"""Modules that moved keep their old import path, with a DeprecationWarning, and give the very same
objects; the README's imports work. The imports run in a fresh interpreter (a module warns on its
first import only)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import importlib, json, sys, warnings
results = {}
for old, new, name in json.loads(sys.argv[1]):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = getattr(importlib.import_module(old), name)
    results[old] = {"same": value is getattr(importlib.import_module(new), name),
                    "module_is_new": sys.modules[old] is sys.modules[new],
                    "warnings": [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]}
print(json.dumps(results))
"""

MOVED = [
    ("pulid_flux.inject", "pulid_flux.engine.inject", "apply_pulid"),
    ("pulid_flux.model", "pulid_flux.engine.model", "PulidFlux"),
    ("pulid_flux.identity", "pulid_flux.engine.identity", "save_identity"),
    ("pulid_flux.eva", "pulid_flux.engine.eva", "EvaVisionTower"),
    ("pulid_flux.idformer", "pulid_flux.engine.idformer", "IDFormer"),
    ("pulid_flux.ca", "pulid_flux.engine.ca", "PerceiverAttentionCA"),
    ("pulid_flux.attention", "pulid_flux.engine.attention", "official_heads"),
    ("pulid_flux.face.encode", "pulid_flux.engine.encoder", "encode_identity"),
]


@pytest.fixture(scope="module")
def imported():
    # The current path first: importing it must not warn, and must not stop the old one from warning.
    cases = [("pulid_flux.engine.inject", "pulid_flux.engine.inject", "apply_pulid")] + MOVED
    run = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cases)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("old, new, name", MOVED, ids=[m[0] for m in MOVED])
def test_old_path_warns_and_gives_the_same_objects(imported, old, new, name):
    result = imported[old]
    assert result["same"] and result["module_is_new"]
    assert result["warnings"] == [f"{old} moved to {new}; the old import path will be removed in a later release"]


def test_current_paths_do_not_warn(imported):
    assert imported["pulid_flux.engine.inject"]["warnings"] == []


def test_readme_library_imports_still_work():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line.split("#")[0].strip() for line in readme.splitlines() if re.match(r"from pulid_flux[\w.]* import ", line)]
    assert any("apply_pulid" in line for line in lines) and any("PulidFlux" in line for line in lines)
    script = "\n".join(["import warnings", "warnings.simplefilter('ignore', DeprecationWarning)", *lines,
                        "from pulid_flux.tiny.lora import write_lora",
                        "import inspect; assert 'seed' in inspect.signature(write_lora).parameters"])
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
