"""Windows safety: with ``fcntl``, ``termios``, ``pwd``, ``grp`` and ``resource`` unimportable (as on
Windows), every module of ``pulid_flux`` and ``api_client`` imports, the runner's whole resume and lock
path works, the launched ComfyUI gets the pack without a symlink, and (with ComfyUI) ``nodes`` imports.

Each check runs in a fresh interpreter with :mod:`posix_blocker` installed before anything else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def run_blocked(*bodies: str, ours: tuple[str, ...] | None = None, python: str = sys.executable,
                extra_path: tuple[str, ...] = (), cwd: Path = ROOT, timeout: float = 600) -> dict:
    """Run the code ``bodies`` (which set ``result``) after installing the blocker; returns ``result``
    plus the imports the blocker refused."""
    paths = [str(TESTS), str(ROOT), *extra_path]
    script = textwrap.dedent(f"""\
        import json, sys
        sys.path[:0] = {paths!r}
        import posix_blocker
        blocker = posix_blocker.install({ours!r})
        result = {{}}
    """) + "".join(textwrap.dedent(b) + "\n" for b in bodies) + textwrap.dedent("""\
        result["refused"] = blocker.refused
        print("RESULT " + json.dumps(result))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([python, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return json.loads(lines[-1][len("RESULT "):])


IMPORT_ALL = """
    import importlib, pkgutil, traceback
    result["failed"], result["imported"] = {}, []

    def try_import(name):
        try:
            module = importlib.import_module(name)
        except BaseException:
            result["failed"][name] = traceback.format_exc(limit=-3)
            return None
        result["imported"].append(name)
        return module

    for top in PACKAGES:
        package = try_import(top)
        for info in pkgutil.walk_packages(package.__path__, top + ".") if package else ():
            try_import(info.name)
"""


def test_every_library_and_client_module_imports_without_posix_modules():
    result = run_blocked("PACKAGES = ['pulid_flux', 'api_client']", IMPORT_ALL)
    assert result["failed"] == {}
    expected = {p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
                for top in ("pulid_flux", "api_client") for p in (ROOT / top).rglob("*.py")}
    assert expected <= set(result["imported"])


def test_the_blocker_catches_a_posix_import(tmp_path):
    """The harness can fail: a package that imports fcntl, and one whose sub-module imports resource."""
    (tmp_path / "posixy").mkdir()
    (tmp_path / "posixy" / "__init__.py").write_text("import fcntl\n")
    (tmp_path / "lazy").mkdir()
    (tmp_path / "lazy" / "__init__.py").write_text("")
    (tmp_path / "lazy" / "limits.py").write_text("def limit():\n    import resource\n    return resource\n")
    (tmp_path / "other_lib.py").write_text("import resource\n")       # a third party's Linux backend
    body = """
    import lazy.limits
    try:
        lazy.limits.limit()
        result["lazy_call"] = "imported"
    except ModuleNotFoundError as exc:
        result["lazy_call"] = str(exc)
    import other_lib
    result["other_lib"] = other_lib.resource.__name__
    """
    result = run_blocked("PACKAGES = ['posixy', 'lazy']", IMPORT_ALL, body, ours=("posixy", "lazy"),
                         extra_path=(str(tmp_path),))
    assert set(result["failed"]) == {"posixy"} and "No module named 'fcntl'" in result["failed"]["posixy"]
    assert "No module named 'resource'" in result["lazy_call"]
    assert result["other_lib"] == "resource"                         # not ours: left alone
    assert ["fcntl", "posixy"] in result["refused"] and ["resource", "lazy.limits"] in result["refused"]


RUNNER_PATH = """
    from pathlib import Path
    from collections import Counter
    from runner_fakes import FakeComfyBackends, png_bytes
    from api_client.runner import main
    from api_client.runner.execution import comfy_backend
    from api_client.runner.execution.lock import exclusive
    from api_client.runner.execution.launch import install_pack

    tmp = Path(TMP)
    reference = tmp / "me.png"
    reference.write_bytes(png_bytes(1, 64))
    out = tmp / "out"
    argv = ["run", SPEC, "--out", str(out), "--reference", str(reference), "--max-prompts", "2", "--quiet",
            "--server", "http://fake-a:1"]

    def done():
        lines = (out / "manifest.jsonl").read_text().splitlines()
        return [json.loads(l)["job_id"] for l in lines if '"done"' in l]

    comfy_backend.ComfyBackend = FakeComfyBackends(ticks=1, interrupt_on_poll=4)
    result["interrupted"] = main(argv)
    result["done_first"] = len(done())
    with exclusive(out):                           # another runner holds the folder
        result["locked"] = main(argv)
    comfy_backend.ComfyBackend = FakeComfyBackends(ticks=1)
    result["resumed"] = main(argv)
    result["done"] = len(done())
    result["max_repeats"] = Counter(done()).most_common(1)[0][1]
    result["again"] = main(argv)                   # nothing left: no server contacted
    pack = install_pack(tmp / "base" / "custom_nodes" / "pulid_flux_studio")
    result["pack_symlinks"] = [str(p) for p in pack.rglob("*") if p.is_symlink()]
    result["pack_files"] = sorted(p.name for p in pack.iterdir())
"""


def test_runner_resume_and_lock_path_without_posix_modules(tmp_path):
    result = run_blocked(f"TMP, SPEC = {str(tmp_path)!r}, {str(ROOT / 'workflows' / 'ablation.yaml')!r}", RUNNER_PATH)
    assert result["interrupted"] == 130 and 0 < result["done_first"] < 8
    assert result["locked"] == 2
    assert result["resumed"] == 0 and result["done"] == 8 and result["max_repeats"] == 1
    assert result["again"] == 0
    assert result["pack_symlinks"] == []
    assert {"__init__.py", "nodes", "pulid_flux", "web", "workflows"} <= set(result["pack_files"])
    assert {"tests", "docs", ".git"}.isdisjoint(result["pack_files"])
    # What the runner needed from the blocked set was refused (filelock's fcntl, for one) and it still worked.
    assert all(module in ("fcntl", "termios", "pwd", "grp", "resource") for module, _ in result["refused"])


def test_nodes_import_without_posix_modules_in_comfyui(comfyui_path):
    """The pack's node modules inside ComfyUI. Only imports made by the pack are refused here: ComfyUI's
    own dependencies pick their Linux backends at import time (psutil imports ``resource``)."""
    body = f"""
    import importlib, types
    from pathlib import Path
    sys.path.insert(0, {str(comfyui_path)!r})
    from comfy.cli_args import args
    args.cpu = True
    import comfy.model_management
    pack = types.ModuleType("pulid_studio_pack")
    pack.__path__ = [{str(ROOT)!r}]
    sys.modules["pulid_studio_pack"] = pack
    nodes = importlib.import_module("pulid_studio_pack.nodes")
    result["nodes"] = sorted(m.__name__ for m in nodes.NODE_MODULES)
    result["ours_refused"] = [r for r in blocker.refused if r[1].startswith(("pulid_studio_pack", "pulid_flux"))]
    """
    result = run_blocked(body, ours=("pulid_studio_pack", "pulid_flux", "api_client"), cwd=comfyui_path)
    assert len(result["nodes"]) >= 6 and result["ours_refused"] == []
