"""The shipped workflows keep loading: each UI file converts to its API twin, and the pack's nodes still
declare the inputs (names, order, widgets) the saved files were written against.

Saved workflows store widget values by position, so a renamed, reordered or removed node input
silently shifts every later value. ``tests/data/object_info_workflows.json`` is the ``/object_info``
of the workflows' node classes as a ComfyUI 0.33 server with this pack reported it; the unit tier
converts with it, the ComfyUI tier checks the pack's entries against the live server (both
ComfyUI versions). With PULID_STUDIO_REGENERATE_FIXTURES=1 the ComfyUI tier rewrites the file.
"""

import json
import os
import sys
from pathlib import Path

import pytest

from api_client import ui_to_api
from api_client.convert import referenced_node_types
from api_client.node_info import parse_object_info, widgets_for_input

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
FIXTURE = ROOT / "tests" / "data" / "object_info_workflows.json"
PAIRS = [(ui, ui.with_name(ui.stem + "_api.json")) for ui in sorted(WORKFLOWS.glob("*.json"))
         if not ui.stem.endswith("_api") and ui.with_name(ui.stem + "_api.json").exists()]


@pytest.fixture(scope="module")
def recorded():
    return json.loads(FIXTURE.read_text())


def test_every_shipped_workflow_has_a_twin():
    ui_files = [p.stem for p in WORKFLOWS.glob("*.json") if not p.stem.endswith("_api")]
    assert sorted(ui.stem for ui, _ in PAIRS) == sorted(ui_files)
    assert {"01_base", "02_lora", "03_lora_pulid", "04_full"} <= set(ui_files)


@pytest.mark.parametrize("ui_path, api_path", PAIRS, ids=[ui.stem for ui, _ in PAIRS])
def test_ui_workflow_converts_to_its_api_twin(recorded, ui_path, api_path):
    workflow = json.loads(ui_path.read_text())
    unrecorded = sorted(referenced_node_types(workflow) - set(recorded))
    assert not unrecorded, (f"{FIXTURE.name} lacks {unrecorded}: run the ComfyUI tier of this file with "
                            "PULID_STUDIO_REGENERATE_FIXTURES=1 to record them")
    ours = json.loads(json.dumps(ui_to_api(workflow, recorded)))
    assert ours == json.loads(api_path.read_text())


def test_a_shifted_widget_value_is_caught(recorded):
    """The comparison above can fail: one input moved in a node's declaration changes the prompt."""
    ui_path, api_path = PAIRS[2]
    info = json.loads(json.dumps(recorded))
    apply = info["PulidStudioApplyPulidFlux"]["input_order"]["required"]
    start, end = apply.index("start_at"), apply.index("end_at")
    apply[start], apply[end] = apply[end], apply[start]
    assert ui_to_api(json.loads(ui_path.read_text()), info) != json.loads(api_path.read_text())


def test_build_workflows_writes_the_shipped_files(recorded, tmp_path):
    """tools/build_workflows.py (UI files from one description, API twins through api_client's
    converter) reproduces the shipped files byte for byte."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import build_workflows
    finally:
        sys.path.remove(str(ROOT / "tools"))
    written = build_workflows.write_all(recorded, tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for pair in PAIRS for p in pair)
    for path in written:
        assert path.read_text() == (WORKFLOWS / path.name).read_text(), path.name


def _layout(object_info: dict, class_type: str) -> list:
    """What a saved workflow depends on: inputs in order (name, type, optional) and their widgets
    (a combo's default is its first choice, which depends on the files installed, so it is left out)."""
    spec = parse_object_info({class_type: object_info[class_type]})[class_type]
    return [(i.name, i.type, i.optional, [(w.name, w.kind, None if w.kind == "combo" else repr(w.default))
                                          for w in widgets_for_input(i, class_type)])
            for i in spec.inputs] + [("outputs", spec.outputs)]


@pytest.mark.integration
def test_the_pack_nodes_still_declare_the_recorded_inputs(comfy_server, recorded):
    live = comfy_server.get_json("/object_info")
    if os.environ.get("PULID_STUDIO_REGENERATE_FIXTURES") == "1":
        classes = sorted(set().union(*(referenced_node_types(json.loads(ui.read_text())) for ui, _ in PAIRS)))
        FIXTURE.write_text(json.dumps({name: live[name] for name in classes}, indent=1) + "\n", encoding="utf-8")
        return
    ours = [name for name in recorded if name.startswith("PulidStudio")]
    assert len(ours) >= 8
    changed = [name for name in ours if _layout(live, name) != _layout(recorded, name)]
    assert not changed, (f"{changed} no longer declare the inputs the shipped (and users') workflows were saved "
                         "with; keep input names and order, or add a new node")


@pytest.mark.integration
def test_shipped_ui_workflows_convert_with_the_live_server(comfy_server):
    live = comfy_server.get_json("/object_info")
    for ui_path, api_path in PAIRS:
        ours = ui_to_api(json.loads(ui_path.read_text()), live)
        twin = json.loads(api_path.read_text())
        strip = lambda prompt: {k: (v["class_type"], v["inputs"]) for k, v in prompt.items()}  # noqa: E731
        assert strip(json.loads(json.dumps(ours))) == strip(twin), f"{ui_path.name} does not convert to {api_path.name}"
