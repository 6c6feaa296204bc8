"""Check that imports follow the pack's layers (docs/architecture.md): ``python tools/check_layers.py``.

Every ``import`` / ``from ... import`` statement of ``pulid_flux``, ``api_client`` and ``nodes`` is
read from the source (nothing is imported), resolved to a module name and checked against
:data:`LAYERS` and :data:`FORBIDDEN`. Imports inside functions count too: a lazy import is still a
dependency, it only moves the cost. Prints one line per violation; exit status 1 when there is any.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pulid_flux", "api_client", "nodes")

#: Layered groups, lowest first: each layer maps group names to the module prefixes they hold. A
#: module may import modules of its own group and of any group in a lower layer; groups of one layer
#: do not import each other. A module belongs to the group with the longest matching prefix; the
#: package roots (``pulid_flux/__init__.py`` with its lazy exports and moved-path aliases,
#: ``api_client/runner/__init__.py``) are facades above all layers of their package.
LAYERS: dict[str, list[dict[str, tuple[str, ...]]]] = {
    "pulid_flux": [
        {"base": ("pulid_flux.errors", "pulid_flux.images", "pulid_flux.weights", "pulid_flux.progress",
                  "pulid_flux.htmlreport")},
        {"face": ("pulid_flux.face",)},                     # faces, knowing nothing of PuLID
        {"engine": ("pulid_flux.engine",)},                 # PuLID itself
        {"pose": ("pulid_flux.pose",), "dataset": ("pulid_flux.dataset",),     # the features
         "scoring": ("pulid_flux.scoring",), "tiny": ("pulid_flux.tiny",)},
        # checkpoint sweeps (built on scoring); one portrait -> a training set (built on dataset and face)
        {"sweep": ("pulid_flux.sweep",), "synthesis": ("pulid_flux.synthesis",)},
    ],
    "api_client.runner": [
        {"plan": ("api_client.runner.plan", "api_client.runner.files", "api_client.runner.errors")},   # the typed plan
        {"sources": ("api_client.runner.sources",), "execution": ("api_client.runner.execution",),
         "reporting": ("api_client.runner.reporting",)},
        {"cli": ("api_client.runner.commands", "api_client.runner.dataset_commands", "api_client.runner.__main__")},
    ],
}

#: (importer prefix, imported prefix, only at module level?, why)
FORBIDDEN = [
    ("pulid_flux", "api_client", False, "the library does not know the client"),
    ("pulid_flux", "nodes", False, "the library does not know the ComfyUI glue (or ComfyUI's own nodes)"),
    ("pulid_flux", "comfy", True, "the library is importable without ComfyUI (import it inside the function)"),
    ("pulid_flux", "comfy_api", True, "the library is importable without ComfyUI"),
    ("pulid_flux", "folder_paths", True, "the library is importable without ComfyUI"),
    ("api_client", "nodes", False, "the client does not know the ComfyUI glue"),
    ("api_client", "pulid_flux.engine", False, "the client never needs the PuLID engine"),
    ("api_client", "pulid_flux", True, "the client imports library features only inside the function using them"),
    ("api_client", "torch", True, "the client does not import torch"),
    ("api_client.runner.execution", "api_client.runner.sources", False,
     "the execution engine knows nothing of where the jobs came from"),
    ("api_client.convert", "api_client.runner", False, "the client's core does not know the runner"),
    ("api_client.client", "api_client.runner", False, "the client's core does not know the runner"),
    ("nodes", "api_client", False, "the nodes do not drive ComfyUI through its REST API"),
]


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    importer: str
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}: {self.why}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def collect(root: Path = ROOT) -> dict[str, tuple[str, str]]:
    """{module name: (path relative to root, source)} of every module of :data:`PACKAGES`."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = (path.relative_to(root).as_posix(), path.read_text(encoding="utf-8"))
    return found


def imports(module: str, path: str, source: str):
    """(line, imported module, runs at import time?) for every import statement of ``source``.
    ``from x import a`` yields ``x`` and ``x.a`` (``a`` may be a sub-module)."""
    package = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
    found = []

    def visit(node: ast.AST, at_import_time: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            at_import_time = False
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, at_import_time) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package[:len(package) - node.level + 1] if node.level else []
            base = ".".join(parts + ([node.module] if node.module else []))
            if node.module:
                found.append((node.lineno, base, at_import_time))
            found.extend((node.lineno, f"{base}.{alias.name}", at_import_time) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child, at_import_time)

    visit(ast.parse(source, filename=path), True)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _group(name: str, scope: str) -> tuple[str, int] | None:
    """(group, layer index) of ``name`` in ``scope``, by the longest matching prefix."""
    matches = [(len(prefix), group, index) for index, groups in enumerate(LAYERS[scope])
               for group, prefixes in groups.items() for prefix in prefixes if _within(name, prefix)]
    return max(matches)[1:] if matches else None


def layer_problem(importer: str, imported: str) -> str | None:
    for scope in LAYERS:
        if not (_within(importer, scope) and _within(imported, scope)) or importer == scope:
            continue
        if imported == scope:
            return f"import from the module that holds the name, not through the {scope} package facade"
        mine, theirs = _group(importer, scope), _group(imported, scope)
        if mine is None or theirs is None or mine[0] == theirs[0]:
            return None
        if theirs[1] > mine[1]:
            return f"{theirs[0]} ({scope}) is a higher layer than {mine[0]}"
        if theirs[1] == mine[1]:
            return f"{theirs[0]} and {mine[0]} ({scope}) are independent parts of one layer"
    return None


def violations(modules: dict[str, tuple[str, str]]) -> list[Violation]:
    found = []
    for importer, (path, source) in sorted(modules.items()):
        for line, imported, module_level in imports(importer, path, source):
            why = layer_problem(importer, imported)
            if why is None:
                why = next((reason for who, what, only_top, reason in FORBIDDEN
                            if _within(importer, who) and _within(imported, what) and (module_level or not only_top)),
                           None)
            if why is not None and not any(v.path == path and v.line == line for v in found):
                found.append(Violation(path, line, importer, imported, why))
    return found


def main(root: Path = ROOT) -> int:
    problems = violations(collect(root))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
