"""The declared dependencies hold against what the code imports, both ways.

* Every third-party import of ``pulid_flux/``, ``nodes/`` and ``api_client/`` is declared: in
  ``requirements.txt`` (what ComfyUI-Manager installs) or brought by ComfyUI itself; and for the
  library and the client, which also install headless, in ``pyproject.toml``'s ``dependencies``.
  ComfyUI's own modules (``comfy``, ``folder_paths``, ...) only in ``nodes/``, or inside a function.
* Every declared runtime package is imported somewhere (``importlib.util.find_spec("name")`` counts:
  ``face-recognition-models`` is only looked up that way).
* ``dependencies`` = ``requirements.txt`` + the ComfyUI-provided packages the library and client
  import, with the same version bounds; ``requirements.txt`` never names a ComfyUI-provided package
  (Manager would replace a user's CUDA torch).
* The tests' imports are declared in ``[test]`` / ``[browser]`` (or above), and those extras hold
  nothing the tests do not use.

Imports are read with ``ast`` (nothing is imported). The same checks run on synthetic trees to
show they fail when either side is wrong.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_PACKAGES = ("pulid_flux", "nodes", "api_client")
HEADLESS_PACKAGES = ("pulid_flux", "api_client")       # what pyproject installs without ComfyUI
FIRST_PARTY = {"pulid_flux", "api_client", "benchmarks"}

#: ComfyUI's own top-level modules: importable only inside ComfyUI.
COMFYUI_MODULES = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "comfy_config", "folder_paths",
                   "node_helpers", "nodes", "server", "latent_preview", "execution", "app", "utils"}
#: Distributions every supported ComfyUI (0.8.0 and newer) requires (its requirements.txt).
COMFYUI_PROVIDED = {"torch", "torchvision", "torchaudio", "torchsde", "numpy", "pillow", "safetensors", "pyyaml",
                    "aiohttp", "yarl", "pydantic", "pydantic-settings", "tqdm", "scipy", "psutil", "einops",
                    "transformers", "tokenizers", "sentencepiece", "kornia", "spandrel", "alembic", "sqlalchemy",
                    "av", "comfyui-frontend-package", "comfyui-workflow-templates",
                    "comfyui-workflow-templates-json", "comfyui-workflow-templates-core", "comfyui-embedded-docs"}
#: Import names whose distribution is named differently (checked against the installed metadata).
IMPORT_TO_DIST = {"PIL": "pillow", "cv2": "opencv-python-headless", "yaml": "pyyaml", "dlib": "dlib-bin",
                  "websocket": "websocket-client", "face_recognition_models": "face-recognition-models",
                  "comfyui_workflow_templates_json": "comfyui-workflow-templates-json", "tomli": "tomli",
                  "google": "protobuf", "pydantic_core": "pydantic-core", "open_clip": "open-clip-torch"}
#: Distributions imported directly that a declared package hard-requires (checked against its metadata):
#: declaring them again would only add a second version bound to keep in step.
COMES_WITH = {"pydantic-core": "pydantic", "protobuf": "onnx"}
#: [test] entries used without an import: pytest plugins, enabled by their settings in pyproject.
PYTEST_PLUGINS = {"pytest-timeout": "timeout"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_of(import_name: str) -> str:
    return normalize(IMPORT_TO_DIST.get(import_name, import_name))


def declaring(dist: str) -> str:
    """The distribution whose declaration covers ``dist``: itself, or the package that requires it."""
    return COMES_WITH.get(dist, dist)


@dataclass(frozen=True)
class Use:
    name: str          # top-level import name
    file: str
    line: int
    lazy: bool         # inside a function (not run when the module is imported)


def imports_of(files, root: Path) -> list[Use]:
    """Absolute, non-stdlib imports (and ``find_spec("x")`` / ``importorskip("x")`` look-ups) of ``files``."""
    uses = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(root).as_posix()

        def visit(node, lazy):
            for child in ast.iter_child_nodes(node):
                inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                names = []
                if isinstance(child, ast.Import):
                    names = [alias.name for alias in child.names]
                elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                    names = [child.module]
                elif (isinstance(child, ast.Call) and child.args and isinstance(child.args[0], ast.Constant)
                      and isinstance(child.args[0].value, str)
                      and getattr(child.func, "attr", getattr(child.func, "id", None)) in ("find_spec", "importorskip")):
                    names, inner = [child.args[0].value], True
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names:
                        uses.append(Use(top, rel, child.lineno, inner))
                visit(child, inner)

        visit(tree, False)
    return uses


def package_files(root: Path, packages) -> list[Path]:
    return sorted(p for package in packages for p in (root / package).rglob("*.py"))


def read_requirements(path: Path) -> dict[str, str]:
    """{normalized name: version specifier} of a requirements file (comments and blanks skipped)."""
    result = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            result.update(parse_requirement(line))
    return result


def parse_requirement(text: str) -> dict[str, str]:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)", text)
    assert match, f"cannot read the requirement {text!r}"
    return {normalize(match.group(1)): re.sub(r"\s+", "", match.group(3))}


def read_pyproject(path: Path) -> tuple[dict[str, str], dict[str, dict[str, str]], dict]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    project = data["project"]
    deps = {k: v for dep in project.get("dependencies", []) for k, v in parse_requirement(dep).items()}
    extras = {name: {k: v for dep in entries for k, v in parse_requirement(dep).items()}
              for name, entries in project.get("optional-dependencies", {}).items()}
    return deps, extras, data


def runtime_problems(root: Path) -> list[str]:
    """Everything wrong between the runtime imports of ``root`` and its declarations (empty: all good)."""
    problems = []
    requirements = read_requirements(root / "requirements.txt")
    deps, _, _ = read_pyproject(root / "pyproject.toml")
    uses = imports_of(package_files(root, RUNTIME_PACKAGES), root)
    used_by = {}
    for use in uses:
        if use.name in FIRST_PARTY:
            continue
        where = f"{use.file}:{use.line}"
        package = use.file.split("/", 1)[0]
        if use.name in COMFYUI_MODULES:
            if package != "nodes" and not use.lazy:
                problems.append(f"{where}: imports ComfyUI's {use.name!r} at module level outside nodes/ (the "
                                "library and the client must import without ComfyUI)")
            continue
        dist = declaring(distribution_of(use.name))
        used_by.setdefault(dist, set()).add(package)
        if dist not in requirements and dist not in COMFYUI_PROVIDED:
            problems.append(f"{where}: imports {use.name!r} (distribution {dist}), which neither requirements.txt "
                            "nor ComfyUI provides")
        if package in HEADLESS_PACKAGES and dist not in deps:
            problems.append(f"{where}: imports {use.name!r} (distribution {dist}), missing from pyproject.toml's "
                            "dependencies")
    for dist in sorted(requirements):
        if dist in COMFYUI_PROVIDED:
            problems.append(f"requirements.txt: {dist} comes with ComfyUI; listing it lets ComfyUI-Manager "
                            "replace the user's build")
        if dist not in used_by:
            problems.append(f"requirements.txt: {dist} is declared but nothing in {', '.join(RUNTIME_PACKAGES)} "
                            "imports it")
    headless = {d for d, packages in used_by.items() if packages & set(HEADLESS_PACKAGES)}
    expected = set(requirements) | (headless & COMFYUI_PROVIDED)
    for dist in sorted(set(deps) - expected):
        problems.append(f"pyproject.toml: dependency {dist} is neither in requirements.txt nor a ComfyUI-provided "
                        "package that the library or the client imports")
    for dist in sorted(expected - set(deps)):
        problems.append(f"pyproject.toml: dependencies lack {dist}")
    for dist in sorted(set(requirements) & set(deps)):
        if requirements[dist] != deps[dist]:
            problems.append(f"{dist}: requirements.txt says {requirements[dist] or 'any version'}, pyproject.toml "
                            f"says {deps[dist] or 'any version'}")
    return problems


def test_runtime_imports_match_the_declarations():
    assert runtime_problems(ROOT) == []


def test_tests_imports_are_declared_in_the_extras_and_the_extras_are_used():
    deps, extras, data = read_pyproject(ROOT / "pyproject.toml")
    local = {p.stem for folder in ("tests", "tools") for p in (ROOT / folder).rglob("*.py")}   # first-party helpers
    declared = set(deps) | COMFYUI_PROVIDED | {d for extra in ("test", "browser") for d in extras[extra]}
    uses = [u for u in imports_of(sorted((ROOT / "tests").rglob("*.py")), ROOT)
            if u.name not in FIRST_PARTY | COMFYUI_MODULES | local]
    undeclared = sorted({f"{u.file}:{u.line} {u.name}" for u in uses if distribution_of(u.name) not in declared})
    assert undeclared == []
    imported = {distribution_of(u.name) for u in uses}
    pytest_settings = data["tool"]["pytest"]["ini_options"]
    unused = [d for extra in ("test", "browser") for d in extras[extra]
              if d not in imported and not (d in PYTEST_PLUGINS and PYTEST_PLUGINS[d] in pytest_settings)]
    assert unused == []
    assert set(extras["browser"]) == {"playwright"}


def test_import_name_map_agrees_with_the_installed_metadata():
    """Each entry of IMPORT_TO_DIST names the distribution that really ships that import (when installed)."""
    checked = 0
    for name, dist in IMPORT_TO_DIST.items():
        try:
            files = importlib.metadata.distribution(dist).files or []
        except importlib.metadata.PackageNotFoundError:
            continue
        tops = {Path(str(f)).parts[0].split(".")[0] for f in files}
        assert name in tops, f"{dist} does not ship {name!r} (ships {sorted(tops)[:10]})"
        checked += 1
    assert checked >= 5


def test_directly_imported_dependencies_come_with_their_declared_package():
    checked = 0
    for dist, parent in COMES_WITH.items():
        try:
            requires = importlib.metadata.requires(parent) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        hard = {next(iter(parse_requirement(r))) for r in requires if "extra ==" not in r}
        assert dist in hard, f"{parent} does not require {dist} unconditionally: declare {dist} itself"
        checked += 1
    assert checked == len(COMES_WITH)


def test_requirements_follow_the_comfyui_convention():
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(torch|torchvision|torchaudio)\b", text, re.M)
    _, _, data = read_pyproject(ROOT / "pyproject.toml")
    assert data["tool"]["comfy"]["requires-comfyui"] == ">=0.8.0"
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert data["project"]["license"] == {"text": "Apache-2.0"}
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text and len(license_text.splitlines()) > 150


# ----------------------------------------------------------------------------- the checks can fail


def synthetic_tree(root: Path, *, library: str, nodes: str = "", requirements: str, dependencies: list[str]) -> Path:
    for package, code in (("pulid_flux", library), ("nodes", nodes), ("api_client", "")):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text(code)
    (root / "requirements.txt").write_text(requirements)
    deps = ", ".join(f'"{d}"' for d in dependencies)
    (root / "pyproject.toml").write_text(f'[project]\nname = "x"\nversion = "0"\ndependencies = [{deps}]\n')
    return root


GOOD_LIBRARY = ("import numpy\nimport cv2\nimport importlib.util\n"
                "def f():\n    import comfy.model_patcher\n    return importlib.util.find_spec('face_recognition_models')\n")
GOOD = dict(library=GOOD_LIBRARY, nodes="import folder_paths\nimport torch\nfrom PIL import Image\n",
            requirements="opencv-python-headless>=4.8\nface-recognition-models>=0.3.0\n",
            dependencies=["numpy>=1.25", "opencv-python-headless>=4.8", "face-recognition-models>=0.3.0"])


def test_a_consistent_synthetic_tree_passes(tmp_path):
    assert runtime_problems(synthetic_tree(tmp_path, **GOOD)) == []


@pytest.mark.parametrize("change, expected", [
    ({"library": GOOD_LIBRARY + "import undeclared_pkg\n"},
     "imports 'undeclared_pkg' (distribution undeclared-pkg), which neither requirements.txt nor ComfyUI provides"),
    ({"library": GOOD_LIBRARY + "import yaml\n"},
     "imports 'yaml' (distribution pyyaml), missing from pyproject.toml's dependencies"),
    ({"library": GOOD_LIBRARY.replace("importlib.util.find_spec('face_recognition_models')", "None")},
     "requirements.txt: face-recognition-models is declared but nothing"),
    ({"requirements": GOOD["requirements"] + "unused-pkg>=1\n",
      "dependencies": GOOD["dependencies"] + ["unused-pkg>=1"]},
     "requirements.txt: unused-pkg is declared but nothing"),
    ({"requirements": GOOD["requirements"] + "torch\n", "dependencies": GOOD["dependencies"] + ["torch"]},
     "requirements.txt: torch comes with ComfyUI"),
    ({"dependencies": GOOD["dependencies"] + ["insightface>=0.7.3"]},
     "pyproject.toml: dependency insightface is neither in requirements.txt"),
    ({"dependencies": GOOD["dependencies"][1:]}, "pyproject.toml: dependencies lack numpy"),
    ({"dependencies": ["numpy>=1.25", "opencv-python-headless>=4.9", "face-recognition-models>=0.3.0"]},
     "opencv-python-headless: requirements.txt says >=4.8, pyproject.toml says >=4.9"),
    ({"library": "import comfy\n" + GOOD_LIBRARY}, "imports ComfyUI's 'comfy' at module level outside nodes/"),
    ({"nodes": GOOD["nodes"] + "import insightface\n"},
     "nodes/__init__.py:4: imports 'insightface' (distribution insightface), which neither"),
])
def test_each_kind_of_mismatch_is_reported(tmp_path, change, expected):
    problems = runtime_problems(synthetic_tree(tmp_path, **{**GOOD, **change}))
    assert any(expected in p for p in problems), problems
