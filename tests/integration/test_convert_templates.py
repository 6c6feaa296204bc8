"""Our UI -> API conversion against the real frontend's, over ComfyUI's official template library.

Starts a real ComfyUI (COMFYUI_PATH, CPU, --disable-api-nodes) for its /object_info and web
frontend, loads the page in headless Chromium (Playwright driving /usr/bin/chromium, or
$PULID_STUDIO_CHROMIUM) and, for every template of the installed ``comfyui-workflow-templates``
whose node types the server knows, compares ``api_client.ui_to_api`` with the frontend's own
``await app.loadGraphData(wf); await app.graphToPrompt()`` (serialised with JSON.stringify, as
``api.queuePrompt`` does). Class types and inputs must agree for >= 99 % of those templates; a
JSON report of every mismatch is written to $PULID_STUDIO_REPORT_DIR (default: a pytest temp dir).

Both sides resolve ``{a|b}`` dynamic-prompt choices with a random source fixed to 0, so those
templates compare exactly. The frontend outputs are computed once per run (module fixture).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from api_client import ui_to_api
from api_client.convert import VIRTUAL_TYPES, referenced_node_types
from api_client.local_server import LocalComfyUI
from api_client.node_info import parse_object_info

log = logging.getLogger(__name__)
pytestmark = [pytest.mark.integration, pytest.mark.browser]

DATA = Path(__file__).resolve().parents[1] / "data"
AGREEMENT_REQUIRED = 0.99
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
LOAD_AND_CONVERT_JS = """
async (wf) => {
  const app = window.app;
  const realRandom = Math.random;
  Math.random = () => 0;  // deterministic {a|b} choices (the first option), matching ZeroRandom below
  try {
    await app.loadGraphData(wf, true, false, null, {skipAssetScans: true, silentAssetErrors: true, deferWarnings: true});
    const result = await app.graphToPrompt();
    return JSON.stringify(result.output);
  } finally {
    Math.random = realRandom;
  }
}
"""
CREATE_NODES_JS = """
() => {
  const LG = window.LiteGraph, out = {};
  for (const type of Object.keys(LG.registered_node_types)) {
    try {
      const node = LG.createNode(type);
      if (!node) continue;
      out[type] = (node.widgets || []).map(w => [w.name, w.serialize !== false, !(w.options && w.options.serialize === false)]);
    } catch (e) { out[type] = String(e); }
  }
  return out;
}
"""


# Inputs whose frontend value is produced by a side effect at queue time (a 3D scene capture, a
# painted mask upload, a webcam frame): not reproducible offline, so left out of the comparison.
SIDE_EFFECT_INPUTS = {("Load3D", "image"), ("Painter", "mask"), ("WebcamCapture", "image")}


class ZeroRandom:
    """``random()`` always 0: pick the first ``{a|b}`` option, like the patched Math.random."""

    @staticmethod
    def random() -> float:
        return 0.0


def _template_files() -> list[Path]:
    """Every workflow JSON of the template library installed with this ComfyUI.

    Found through ``comfyui_workflow_templates_core``'s manifest, the API both library layouts
    share: ComfyUI 0.8.0's (JSONs inside the media bundles) and 0.33's (one JSON package).
    """
    try:
        from comfyui_workflow_templates_core import get_asset_path, iter_templates
    except ImportError:
        pytest.skip("comfyui-workflow-templates is not installed (it comes with ComfyUI's requirements)")
    return [Path(get_asset_path(entry.template_id, asset.filename))
            for entry in iter_templates() for asset in entry.assets if asset.filename.endswith(".json")]


def _chromium() -> str:
    candidate = os.environ.get("PULID_STUDIO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not candidate or not Path(candidate).exists():
        pytest.skip("headless Chromium not found (apt-get install chromium, or set PULID_STUDIO_CHROMIUM)")
    return candidate


@pytest.fixture(scope="module")
def template_server(comfyui_path, tmp_path_factory):
    # PULID_STUDIO_API_NODES=1 also loads ComfyUI's API nodes, widening the corpus to the ~280
    # templates built on them (no network is needed to convert them).
    with_api_nodes = os.environ.get("PULID_STUDIO_API_NODES") == "1"
    server = LocalComfyUI(comfyui_path, base_directory=tmp_path_factory.mktemp("templates_comfy"),
                          disable_api_nodes=not with_api_nodes)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server_object_info(template_server) -> dict:
    return requests.get(template_server.url + "/object_info", timeout=60).json()


@pytest.fixture(scope="module")
def server_system(template_server) -> dict:
    return requests.get(template_server.url + "/system_stats", timeout=30).json()["system"]


@pytest.fixture(scope="module")
def server_frontend(server_system) -> str:
    """The frontend this server pins: the conversion follows its rules (1.35 for ComfyUI 0.8.0)."""
    return server_system["required_frontend_version"]


@pytest.fixture(scope="module")
def templates() -> dict[str, dict]:
    found = {}
    for path in sorted(_template_files()):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("nodes"), list):
            found[path.name] = data
    assert len(found) > 100, f"expected the ~500 official templates, found {len(found)}"
    return found


@pytest.fixture(scope="module")
def frontend_page(template_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the Python 'playwright' package drives Chromium")
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page()
        page.goto(template_server.url + "/", wait_until="load", timeout=120_000)
        page.wait_for_function("() => window.app && window.app.graph && window.app.canvas", timeout=120_000)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def frontend_outputs(frontend_page, templates, server_object_info) -> dict[str, dict]:
    """The frontend's prompt (or its error) for every template the server can run, computed once."""
    known = set(server_object_info) | VIRTUAL_TYPES
    outputs = {}
    started = time.monotonic()
    for name, workflow in templates.items():
        if not referenced_node_types(workflow) <= known:
            continue
        try:
            outputs[name] = {"ok": True, "prompt": json.loads(frontend_page.evaluate(LOAD_AND_CONVERT_JS, workflow))}
        except Exception as exc:  # the frontend itself failing is recorded, not fatal
            outputs[name] = {"ok": False, "error": str(exc)[:500]}
    log.info("frontend converted %d templates in %.0fs", len(outputs), time.monotonic() - started)
    return outputs


def _report_dir(tmp_path_factory) -> Path:
    target = os.environ.get("PULID_STUDIO_REPORT_DIR")
    folder = Path(target) if target else tmp_path_factory.mktemp("reports")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _differences(ours: dict, theirs: dict) -> list[str]:
    diffs = []
    for node_id in sorted(set(ours) | set(theirs)):
        if node_id not in ours:
            diffs.append(f"node {node_id} ({theirs[node_id].get('class_type')}) only in the frontend's prompt")
            continue
        if node_id not in theirs:
            diffs.append(f"node {node_id} ({ours[node_id].get('class_type')}) only in ours")
            continue
        a, b = ours[node_id], theirs[node_id]
        if a.get("class_type") != b.get("class_type"):
            diffs.append(f"node {node_id}: class {a.get('class_type')} vs frontend {b.get('class_type')}")
            continue
        ia, ib = a.get("inputs", {}), b.get("inputs", {})
        for name in sorted(set(ia) | set(ib)):
            if (a["class_type"], name) in SIDE_EFFECT_INPUTS:
                continue
            if ia.get(name, "<absent>") != ib.get(name, "<absent>"):
                diffs.append(f"node {node_id} ({a['class_type']}).{name}: ours {json.dumps(ia.get(name, '<absent>'))[:120]}"
                             f" vs frontend {json.dumps(ib.get(name, '<absent>'))[:120]}")
    return diffs


#: ComfyUI version -> the unit tests' /object_info snapshot of it (the same classes in each; null
#: where that version lacks one). tests/test_client_convert.py reads the same files.
SNAPSHOTS = {"0.33.0": "object_info_min.json", "0.8.0": "object_info_min_0.8.0.json"}
NEWEST = "0.33.0"


def test_fixture_object_info_is_still_what_the_server_says(server_system, server_object_info):
    """The unit tests' /object_info snapshot of this server's ComfyUI version must match it.

    With PULID_STUDIO_REGENERATE_FIXTURES=1 the snapshot is rewritten from the server instead (the
    newest snapshot's classes, the server's key order, which the conversion depends on).
    """
    version = server_system["comfyui_version"]
    if version not in SNAPSHOTS:
        pytest.skip(f"no /object_info snapshot of ComfyUI {version} in tests/data (have {sorted(SNAPSHOTS)})")
    path = DATA / SNAPSHOTS[version]
    names = list(json.loads((DATA / SNAPSHOTS[NEWEST]).read_text()))
    if os.environ.get("PULID_STUDIO_REGENERATE_FIXTURES") == "1":
        path.write_text(json.dumps({name: server_object_info.get(name) for name in names}, indent=1),
                        encoding="utf-8")
        return
    fixture = json.loads(path.read_text())
    assert list(fixture) == names, f"{path.name} must hold the classes of {SNAPSHOTS[NEWEST]}"
    stale = [name for name, info in fixture.items() if server_object_info.get(name) != info]
    assert not stale, (f"these classes changed in the ComfyUI {version} server: {stale}; rerun with "
                       f"PULID_STUDIO_REGENERATE_FIXTURES=1 to regenerate tests/data/{path.name}")


def test_widget_layouts_match_the_frontend(frontend_page, server_object_info, server_frontend):
    """For every node class: the widgets we derive from /object_info are the frontend's widgets."""
    created = frontend_page.evaluate(CREATE_NODES_JS)
    specs = parse_object_info(server_object_info, server_frontend)
    mismatches = {}
    for class_type, spec in specs.items():
        theirs = created.get(class_type)
        if not isinstance(theirs, list):
            mismatches[class_type] = f"frontend could not create it: {theirs}"
            continue
        ours = [[w.name, w.in_values, w.in_prompt] for w in spec.widget_layout() if w.in_values or w.in_prompt]
        theirs = [w for w in theirs if w[1] or w[2]]
        if ours != theirs:
            mismatches[class_type] = {"ours": ours, "frontend": theirs}
    assert len(specs) > 300
    assert not mismatches, json.dumps(mismatches, indent=1)[:4000]


def test_templates_convert_like_the_frontend(templates, frontend_outputs, server_object_info, server_frontend,
                                            tmp_path_factory):
    compared = agreed = title_agreed = 0
    report = {"mismatches": {}, "frontend_errors": {}, "our_errors": {}}
    for name, frontend in sorted(frontend_outputs.items()):
        if not frontend["ok"]:
            report["frontend_errors"][name] = frontend["error"]
            continue
        compared += 1
        try:
            ours = json.loads(json.dumps(ui_to_api(templates[name], server_object_info, rng=ZeroRandom(),
                                                   frontend=server_frontend)))
        except Exception as exc:
            report["our_errors"][name] = f"{type(exc).__name__}: {exc}"
            continue
        theirs = frontend["prompt"]
        diffs = _differences(ours, theirs)
        if diffs:
            report["mismatches"][name] = diffs
            continue
        agreed += 1
        if all(ours[k].get("_meta") == theirs[k].get("_meta") for k in ours):
            title_agreed += 1
    agreement = agreed / compared if compared else 0.0
    report.update(frontend=server_frontend, templates_installed=len(templates), templates_compared=compared, agreed=agreed,
                  agreement=round(agreement, 4), titles_agreed=title_agreed,
                  object_info_sha256=hashlib.sha256(json.dumps(server_object_info, sort_keys=True).encode()).hexdigest())
    path = _report_dir(tmp_path_factory) / "convert_templates_report.json"
    path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    log.warning("template conversion agreement %d/%d = %.2f%% (report: %s)", agreed, compared, 100 * agreement, path)
    assert compared >= 100, f"only {compared} templates could be compared; see {path}"
    assert agreement >= AGREEMENT_REQUIRED, (
        f"{agreed}/{compared} templates agree ({100 * agreement:.1f}%); first mismatches: "
        + json.dumps(dict(list(report["mismatches"].items())[:3]) or report["our_errors"], indent=1)[:3000]
    )


# ----------------------------------------------------------------------------- the client, live
# These share the template server (no browser needed): the client against real ComfyUI 0.33.


LIVE_PROMPT = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 8, "batch_size": 1, "color": 0xFF0000},
          "_meta": {"title": "Red"}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}, "_meta": {"title": "Invert"}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "live/red"}, "_meta": {"title": "Save"}},
}


def test_client_runs_a_prompt_and_sees_the_cache(template_server):
    from PIL import Image
    import io

    from api_client.client import ComfyClient

    with ComfyClient(template_server.url) as client:
        first = client.run(LIVE_PROMPT, timeout=120)
        assert first.status == "success"
        assert first.executing_counts == {"1": 1, "2": 1, "3": 1}
        assert first.executed_counts == {"3": 1}
        [saved] = first.files()
        assert (saved.node_id, saved.kind, saved.subfolder, saved.type) == ("3", "images", "live", "output")
        image = Image.open(io.BytesIO(client.view(saved.filename, saved.subfolder, saved.type)))
        assert image.size == (16, 8) and image.convert("RGB").getpixel((0, 0)) == (0, 255, 255)  # inverted red
        # the same prompt again: everything is served from the cache, SaveImage re-reports its output
        second = client.run(LIVE_PROMPT, timeout=120)
        assert second.cached_nodes == {"1", "2", "3"}
        assert not second.executing_counts and second.executed_counts == {"3": 1}
        # change one input: only that node and its consumers run again
        changed = json.loads(json.dumps(LIVE_PROMPT))
        changed["3"]["inputs"]["filename_prefix"] = "live/again"
        third = client.run(changed, timeout=120)
        assert third.executing_counts == {"3": 1} and third.cached_nodes == {"1", "2"}


def test_client_reports_validation_errors_by_title(template_server):
    from api_client import WorkflowValidationError
    from api_client.client import ComfyClient

    bad = json.loads(json.dumps(LIVE_PROMPT))
    bad["1"]["inputs"]["width"] = 999999
    with ComfyClient(template_server.url) as client, pytest.raises(WorkflowValidationError) as info:
        client.queue_prompt(bad)
    assert "node 1 'Red' (EmptyImage): input 'width': Value 999999 bigger than max of 16384" in str(info.value)


def test_client_uploads_and_runs_a_converted_ui_workflow(template_server, tmp_path):
    from PIL import Image

    from api_client.client import ComfyClient, image_reference

    source = tmp_path / "blue.png"
    Image.new("RGB", (4, 4), (0, 0, 255)).save(source)
    workflow = {
        "version": 0.4, "last_node_id": 2, "last_link_id": 1, "links": [[1, 1, 0, 2, 0, "IMAGE"]],
        "nodes": [
            {"id": 1, "type": "LoadImage", "mode": 0, "inputs": [], "widgets_values": ["placeholder.png", "image"],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}, {"name": "MASK", "type": "MASK", "links": []}]},
            {"id": 2, "type": "SaveImage", "mode": 0, "widgets_values": ["live/blue"],
             "inputs": [{"name": "images", "type": "IMAGE", "link": 1}], "outputs": []},
        ],
    }
    with ComfyClient(template_server.url) as client:
        reference = image_reference(client.upload_image(source, subfolder="pulid_test"))
        assert reference == "pulid_test/blue.png"
        prompt = client.convert(workflow)
        assert prompt["1"]["inputs"] == {"image": "placeholder.png"}
        prompt["1"]["inputs"]["image"] = reference
        result = client.run(prompt, timeout=120)
        [saved] = result.files()
        out = tmp_path / "out"
        [path] = client.download(result, out)
        assert path == out / "live" / saved.filename
        assert Image.open(path).convert("RGB").getpixel((0, 0)) == (0, 0, 255)
