"""The pack in ComfyUI's real web frontend (headless Chromium): its extension, the shipped workflows,
the face picker, the pose previews, and how the node library and canvas show the schemas.

Needs COMFYUI_PATH, the Python 'playwright' package and a system chromium; skipped otherwise.
"""

import io
import json
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
from browser_session import BENIGN_CONSOLE_ERRORS, PACK_EXTENSION, PACK_WEB_PATH
from PIL import Image

from api_client.client import ComfyClient
from api_client.tiny_profile import adapt_for_tiny

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
NAMES = ["01_base", "02_lora", "03_lora_pulid", "04_full"]
ENCODE_ID = 35          # "Encode identity" in 03/04
POSE_ID, POSE_CN_ID = 41, 43
# Nodes of 03 that the face picker needs (reference image, the four loaders, Encode identity).
FACE_PICKER_NODES = {"30", "31", "32", "33", "34", "35"}
# Nodes of 04 up to the pose ControlNet (text encoder, VAE, ControlNet, pose, latent).
POSE_NODES = {"2", "3", "4", "5", "6", "40", "41", "42", "43"}
GREEN, ORANGE = (0x3D, 0xFF, 0x6B), (0xFF, 0xB0, 0x20)   # face_picker.js COLORS.chosen / COLORS.face


def ui_workflow(name):
    return json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))


def api_workflow(name):
    return json.loads((WORKFLOWS / f"{name}_api.json").read_text(encoding="utf-8"))


def png_bytes(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def with_preview_sink(prompt, node_id, slot):
    """``prompt`` plus a PreviewImage on ``node_id``'s output ``slot`` (a prompt needs an output node)."""
    return {**prompt, f"sink_{node_id}": {"class_type": "PreviewImage", "inputs": {"images": [node_id, slot]}}}


def describe(entries):
    return "\n".join(f"[{e.level}] {e.text} ({e.url})" for e in entries)


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return comfy_server.get_json("/object_info")


@pytest.fixture(scope="module")
def client(comfy_server):
    with ComfyClient(comfy_server.url) as c:
        # The workflows' Load Image shows reference.png: present, so no 404 is logged for it.
        from pulid_flux.tiny.insightface_pack import paint_faces
        c.upload_image(png_bytes(paint_faces(640, 640, [(9, 8)])), filename="reference.png", overwrite=True)
        yield c


# ---------------------------------------------------------------------------------------- loading


def test_pack_extension_loads_without_console_errors(frontend):
    names = frontend.evaluate("() => window.app.extensions.map((e) => e.name)")
    assert PACK_EXTENSION in names
    served = {url: status for url, status in frontend.responses.items() if PACK_WEB_PATH in url}
    assert any(url.endswith("/face_picker.js") for url in served), f"face_picker.js never requested: {served}"
    assert all(status == 200 for status in served.values()), served
    # The hooks are chained onto the node class (the frontend's own callbacks stay reachable).
    hooks = frontend.evaluate("""() => {
        const proto = window.LiteGraph.registered_node_types['PulidStudioEncodeIdentity'].prototype;
        return ['onExecuted', 'onDrawForeground', 'onMouseDown'].map((k) => typeof proto[k]);
    }""")
    assert hooks == ["function"] * 3
    unexpected = frontend.unexpected_errors()
    assert not unexpected, ("console errors beyond the known benign ones "
                            f"({[why for *_, why in BENIGN_CONSOLE_ERRORS]}):\n{describe(unexpected)}")


@pytest.mark.parametrize("name", NAMES)
def test_workflow_loads_with_every_node_type(frontend, client, name):
    workflow = ui_workflow(name)
    since = len(frontend.console)
    missing = frontend.load_workflow(workflow)
    assert missing == [], f"{name}: the frontend reports missing node types {missing}"
    nodes = frontend.evaluate("""() => window.app.graph.nodes.map((n) => ({
        id: n.id, type: n.type, registered: n.type in window.LiteGraph.registered_node_types,
        comfyClass: n.constructor.nodeData ? n.constructor.nodeData.name : null }))""")
    assert sorted(str(n["id"]) for n in nodes) == sorted(str(n["id"]) for n in workflow["nodes"])
    for node in nodes:
        assert node["registered"] and node["comfyClass"] == node["type"], node
    assert frontend.evaluate("() => document.querySelector('[data-testid=dialog-overlay]')") is None, \
        "a dialog opened over the canvas while loading"
    assert not frontend.unexpected_errors(since), describe(frontend.unexpected_errors(since))


@pytest.mark.parametrize("name", ["04_full"])
def test_workflow_nodes_do_not_overlap(frontend, client, name):
    frontend.load_workflow(ui_workflow(name), skip_asset_scans=True)
    overlaps = frontend.evaluate("""() => {
        const boxes = window.app.graph.nodes.map((n) => [n.title, Array.from(n.boundingRect)]), out = [];
        for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
            const [ta, a] = boxes[i], [tb, b] = boxes[j];
            if (a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3]) out.push(`${ta} / ${tb}`);
        }
        return out;
    }""")
    assert not overlaps, f"{name}: overlapping nodes {overlaps}"


def test_missing_node_check_does_report_an_unknown_type(frontend, client):
    """The probe behind the test above is not blind: an unknown type is reported."""
    workflow = ui_workflow("01_base")
    workflow["nodes"][0]["type"] = "PulidStudioNoSuchNode"
    assert frontend.load_workflow(workflow) == [{"type": "PulidStudioNoSuchNode"}]


@pytest.mark.parametrize("name", NAMES)
def test_frontend_prompt_equals_the_api_twin(frontend, client, name):
    frontend.load_workflow(ui_workflow(name))
    prompt = frontend.graph_to_prompt()
    twin = api_workflow(name)
    assert sorted(prompt) == sorted(twin)
    for node_id, expected in twin.items():
        got = prompt[node_id]
        assert got["class_type"] == expected["class_type"], node_id
        assert got["inputs"] == expected["inputs"], f"{name} node {node_id} ({expected['class_type']})"
        # The frontend writes _meta.title too; the twins carry the same titles.
        assert got.get("_meta") == expected.get("_meta"), node_id


# ---------------------------------------------------------------------------------------- face picker


def close_to(color, expected, tolerance=40):
    return all(abs(a - b) <= tolerance for a, b in zip(color, expected))


def edge_is(frontend, node_id, x, y, expected):
    """A box edge drawn at a fractional canvas position is anti-aliased over two pixels: look at the
    pixels either side of it too."""
    return any(close_to(frontend.canvas_pixel(node_id, x + dx, y), expected) for dx in (-1, 0, 1))


def test_face_picker_shows_the_faces_and_a_click_sets_face_index(frontend, client):
    from pulid_flux.tiny.insightface_pack import paint_faces

    # A fresh file name: the run must not come from ComfyUI's cache of an earlier session.
    name = f"two_faces_{uuid.uuid4().hex[:8]}.png"
    client.upload_image(png_bytes(paint_faces(640, 480, [(5, 8), (13, 8)])), filename=name, overwrite=True)
    assert frontend.load_workflow(ui_workflow("03_lora_pulid")) == []
    since = len(frontend.console)
    prompt = {k: v for k, v in adapt_for_tiny(api_workflow("03_lora_pulid")).items() if k in FACE_PICKER_NODES}
    prompt["30"]["inputs"]["image"] = name
    prompt[str(ENCODE_ID)]["inputs"]["face_choice"] = "left_to_right"
    frontend.queue_prompt(with_preview_sink(prompt, str(ENCODE_ID), 1))
    # (before the run the picker shows the Load Image photo: wait for the run's own result)
    frontend.wait_for("(id) => { const p = window.app.graph.getNodeById(id).pulidFacePicker; return p && !p.fromInput; }",
                      ENCODE_ID, timeout_s=180)

    data = frontend.evaluate("(id) => window.app.graph.getNodeById(id).pulidFacePicker.data", ENCODE_ID)
    (image,) = data["images"]
    assert data["face_order"] == "left_to_right" and data["face_index"] == 0
    assert image["image_size"] == [640, 480] and image["faces_detected"] == 2
    boxes = image["face_boxes"]
    assert len(boxes) == 2 and boxes[0][0] < boxes[1][0], boxes          # left to right
    assert image["bbox"] == boxes[0]                                       # index 0 was encoded
    preview = Image.open(io.BytesIO(client.view(image["preview"]["filename"], image["preview"]["subfolder"],
                                                image["preview"]["type"])))
    assert preview.size == (512, 384)                                      # long side 512, aspect kept

    frontend.show_node(ENCODE_ID)
    frontend.wait_for("""(id) => { const p = window.app.graph.getNodeById(id).pulidFacePicker;
        return p.previews[0] && p.previews[0].complete && p.previews[0].naturalWidth > 0 && p.hits.length === 2; }""",
                      ENCODE_ID, timeout_s=30)
    hits = frontend.evaluate("(id) => window.app.graph.getNodeById(id).pulidFacePicker.hits", ENCODE_ID)
    first, second = sorted(hits, key=lambda h: h["index"])
    # The canvas widget still says "largest", so the run's own choice (face 0) is highlighted.
    assert edge_is(frontend, ENCODE_ID, first["x"], first["y"] + first["h"] / 2, GREEN)
    assert edge_is(frontend, ENCODE_ID, second["x"], second["y"] + second["h"] / 2, ORANGE)

    # A click beside the faces changes nothing.
    frontend.click(*frontend.client_point(ENCODE_ID, second["x"] + second["w"] + 20, second["y"] - 10))
    widgets = dict(frontend.evaluate("(id) => window.app.graph.getNodeById(id).widgets.map((w) => [w.name, w.value])",
                                     ENCODE_ID))
    assert (widgets["face_choice"], widgets["face_index"]) == ("largest", 0)

    frontend.click(*frontend.client_point(ENCODE_ID, second["x"] + second["w"] / 2, second["y"] + second["h"] / 2))
    widgets = dict(frontend.evaluate("(id) => window.app.graph.getNodeById(id).widgets.map((w) => [w.name, w.value])",
                                     ENCODE_ID))
    assert (widgets["face_choice"], widgets["face_index"]) == ("left_to_right", 1)
    assert edge_is(frontend, ENCODE_ID, second["x"], second["y"] + second["h"] / 2, GREEN)
    assert edge_is(frontend, ENCODE_ID, first["x"], first["y"] + first["h"] / 2, ORANGE)
    # What the user queues next carries the picked face.
    inputs = frontend.graph_to_prompt()[str(ENCODE_ID)]["inputs"]
    assert (inputs["face_choice"], inputs["face_index"]) == ("left_to_right", 1)
    assert not frontend.unexpected_errors(since), describe(frontend.unexpected_errors(since))


# ---------------------------------------------------------------------------------------- pose previews


def test_pose_nodes_preview_the_skeleton_at_the_generation_size(frontend, client):
    assert frontend.load_workflow(ui_workflow("04_full")) == []
    prompt = {k: v for k, v in adapt_for_tiny(api_workflow("04_full")).items() if k in POSE_NODES}
    latent = prompt["6"]["inputs"]
    size = [latent["width"], latent["height"]]
    frontend.queue_prompt(with_preview_sink(prompt, str(POSE_CN_ID), 2))
    frontend.wait_for("""(ids) => ids.every((id) => { const n = window.app.graph.getNodeById(id);
        return n.imgs && n.imgs.length === 1 && n.imgs[0].complete && n.imgs[0].naturalWidth > 0; })""",
                      [POSE_ID, POSE_CN_ID], timeout_s=180)
    for node_id in (POSE_ID, POSE_CN_ID):
        shown = frontend.evaluate("(id) => { const img = window.app.graph.getNodeById(id).imgs[0]; "
                                  "return [img.naturalWidth, img.naturalHeight]; }", node_id)
        assert shown == size, f"node {node_id} previews {shown}, the generation size is {size}"
        outputs = frontend.evaluate("(id) => window.app.nodeOutputs[String(id)]", node_id)
        assert outputs["images"][0]["type"] == "temp"


# ---------------------------------------------------------------------------------------- schemas in the UI


def ours(object_info):
    return {k: v for k, v in object_info.items() if k.startswith("PulidStudio")}


def test_node_library_shows_the_categories_and_descriptions(frontend, object_info):
    page = frontend.page
    categories = {info["category"] for info in ours(object_info).values()}
    top = {c.split("/")[0] for c in categories}
    assert top == {"PuLID-Flux Studio"}
    page.click("button.node-library-tab-button")
    try:
        page.get_by_text("PuLID-Flux Studio", exact=True).first.click()
        for sub in sorted({c.split("/")[1] for c in categories if "/" in c}):
            page.get_by_text(sub, exact=True).first.wait_for(state="visible", timeout=5000)
        encode = object_info["PulidStudioEncodeIdentity"]
        page.get_by_text(encode["category"].split("/")[1], exact=True).first.click()
        page.get_by_text(encode["display_name"], exact=True).first.hover()
        # The preview renders the description as Markdown ("->" becomes an arrow): look for a plain sentence.
        sentence = next(s for s in encode["description"].split(". ") if re.fullmatch(r"[A-Za-z ,]+", s))
        page.get_by_text(sentence).first.wait_for(state="visible", timeout=5000)
    finally:
        page.click("button.node-library-tab-button")   # close the panel again


def test_canvas_tooltip_of_a_widget_is_the_schema_tooltip(frontend, object_info):
    assert frontend.load_workflow(ui_workflow("03_lora_pulid")) == []
    frontend.show_node(ENCODE_ID)
    expected = object_info["PulidStudioEncodeIdentity"]["input"]["required"]["face_index"][1]["tooltip"]
    y = frontend.evaluate("""(id) => { const w = window.app.graph.getNodeById(id).widgets
        .find((w) => w.name === 'face_index'); return w.y + (w.computedHeight || 24) / 2; }""", ENCODE_ID)
    width = frontend.evaluate("(id) => window.app.graph.getNodeById(id).size[0]", ENCODE_ID)
    x, y = frontend.client_point(ENCODE_ID, width / 2, y)
    frontend.page.mouse.move(x - 5, y)
    frontend.page.mouse.move(x, y)
    tooltip = frontend.page.locator(".node-tooltip")
    tooltip.wait_for(state="visible", timeout=5000)
    assert tooltip.inner_text().strip() == expected


# ---------------------------------------------------------------------------------------- screenshot


def _screenshot_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_screenshot_canvas", ROOT / "tools" / "screenshot_canvas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_screenshot_of_the_full_workflow_shows_the_graph(frontend, tmp_path):
    """tools/screenshot_canvas.py's capture (what docs/canvas_04_full.png is made with)."""
    tool = _screenshot_tool()
    path = tool.capture(frontend, WORKFLOWS / "04_full.json", tmp_path / "canvas.png")
    assert path.stat().st_size <= tool.MAX_BYTES
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert pixels.shape[0] > 500 and pixels.shape[1] > 800
    background = np.median(pixels.reshape(-1, 3), axis=0)
    drawn = np.abs(pixels - background).sum(axis=-1) > 30
    assert drawn.mean() > 0.15, f"only {drawn.mean():.1%} of the screenshot differs from the background"
    # Every node is inside the picture.
    inside = frontend.evaluate("""() => { const ds = window.app.canvas.ds, r = window.app.canvas.canvas.getBoundingClientRect();
        return window.app.graph.nodes.every((n) => { const x = (n.pos[0] + ds.offset[0]) * ds.scale,
            y = (n.pos[1] + ds.offset[1]) * ds.scale; return x >= 0 && y >= 0 &&
            x + n.size[0] * ds.scale <= r.width && y + n.size[1] * ds.scale <= r.height; }); }""")
    assert inside
