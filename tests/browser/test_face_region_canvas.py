"""The face-region editor of Encode identity in ComfyUI's real frontend (headless Chromium), on a real
photo where detection finds no face (a face shrunk into a large canvas): the failed run shows the
photo, a box drawn with the mouse makes the next run produce an identity, the crop preview shows the
boxed face, the box survives saving and reloading the workflow, and the API prompt carries it.

Needs COMFYUI_PATH, the Python 'playwright' package, a system chromium and dlib; skipped otherwise.
"""

import base64
import io
import json
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from api_client.client import ComfyClient
from api_client.convert import ui_to_api
from api_client.tiny_profile import adapt_for_tiny

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ENCODE_ID, IMAGE_ID, ENGINE_ID = 35, 30, 33
RECOGNIZER_ID = 90
FACE_NODES = {"30", "31", "32", "33", "34", "35", str(RECOGNIZER_ID)}
REGION_COLOR = (0x2E, 0xE6, 0xFF)               # face_picker.js COLORS.region
CANVAS_SIZE, FACE_PX, FACE_AT = (2400, 1800), 44, (300, 260)   # (w, h), face width, top-left of the photo


def png_bytes(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def data_url_image(url) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


@pytest.fixture(scope="module")
def shrunk_photo(faces_dir, dlib_engine):
    """A real face (Obama) 44 px wide in a 2400x1800 canvas: too small for detection at full size."""
    from pulid_flux.images import load_rgb

    photo = load_rgb(faces_dir / "photos" / "obama_01.jpg")
    (face,) = dlib_engine.detect(photo)
    k = FACE_PX / face.width
    small = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    canvas = np.full((CANVAS_SIZE[1], CANVAS_SIZE[0], 3), 200, np.uint8)
    x, y = FACE_AT
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    box = face.bbox * k + (x, y, x, y)
    assert dlib_engine.detect(canvas) == [], "the test photo must defeat detection at full size"
    return canvas, box, face.normed_embedding


@pytest.fixture(scope="module")
def client(comfy_server):
    with ComfyClient(comfy_server.url) as c:
        # Workflow 03's Load Image shows reference.png until the test picks its photo: present, so no 404.
        from pulid_flux.tiny.insightface_pack import paint_faces
        c.upload_image(png_bytes(paint_faces(640, 640, [(9, 8)])), filename="reference.png", overwrite=True)
        yield c


def build_graph(frontend, image_name):
    """Workflow 03 in the canvas with the uploaded photo, dlib detecting and the tiny insightface pack
    (a second Load face engine on `recognizer`) giving the 512-d vector."""
    workflow = json.loads((ROOT / "workflows" / "03_lora_pulid.json").read_text())
    assert frontend.load_workflow(workflow) == []
    frontend.evaluate("""([imageId, engineId, encodeId, recognizerId, name]) => {
        const graph = window.app.graph, set = (node, w, v) => { node.widgets.find((x) => x.name === w).value = v; };
        const image = graph.getNodeById(imageId);
        set(image, 'image', name);
        set(graph.getNodeById(engineId), 'engine', 'dlib');
        const recognizer = window.LiteGraph.createNode('PulidStudioLoadFaceEngine');
        recognizer.id = recognizerId;
        graph.add(recognizer);
        recognizer.pos = [image.pos[0], image.pos[1] - 300];
        set(recognizer, 'engine', 'insightface');
        const encode = graph.getNodeById(encodeId);
        recognizer.connect(0, encode, encode.findInputSlot('recognizer'));
    }""", [IMAGE_ID, ENGINE_ID, ENCODE_ID, RECOGNIZER_ID, image_name])


def queue_face_nodes(frontend, sink: str) -> str:
    """What the canvas would queue, cut to the face nodes (tiny models) plus an output node."""
    prompt = {k: v for k, v in adapt_for_tiny(frontend.graph_to_prompt()).items() if k in FACE_NODES}
    prompt[sink] = {"class_type": "PulidStudioSaveIdentity",
                    "inputs": {"identity": [str(ENCODE_ID), 0], "filename_prefix": sink}}
    return frontend.queue_prompt(prompt)


def wait_history(client, prompt_id, timeout_s=240):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entry = client.history(prompt_id).get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            return entry
        time.sleep(0.5)
    raise AssertionError(f"prompt {prompt_id} did not finish in {timeout_s}s")


def picker(frontend):
    return frontend.evaluate("""(id) => { const p = window.app.graph.getNodeById(id).pulidFacePicker;
        return p && { fromInput: p.fromInput, data: p.data, tiles: p.tiles,
                      crop: p.crops[0] && { mode: p.crops[0].mode, message: p.crops[0].message, error: p.crops[0].error,
                                            url: p.crops[0].crop, loaded: !!(p.crops[0].img && p.crops[0].img.complete) } }; }""",
                             ENCODE_ID)


def look_at(frontend, node_id, local_x, local_y, scale):
    """Zoom the canvas to ``scale`` with a node-local point in the middle of the view."""
    frontend.evaluate("""([id, x, y, scale]) => {
        const app = window.app, node = app.graph.getNodeById(id), ds = app.canvas.ds;
        const rect = app.canvas.canvas.getBoundingClientRect();
        ds.scale = scale;
        ds.offset = [rect.width / (2 * scale) - node.pos[0] - x, rect.height / (2 * scale) - node.pos[1] - y];
        app.canvas.setDirty(true, true);
    }""", [node_id, local_x, local_y, scale])
    frontend.page.wait_for_timeout(200)


def region_widget(frontend):
    return frontend.evaluate("(id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === 'face_region').value",
                             ENCODE_ID)


def shows_region_edge(frontend, tile, box):
    """The left edge of the region box is drawn in the region colour (anti-aliased: look either side)."""
    x = tile["x"] + box[0] * tile["scale"]
    y = tile["y"] + (box[1] + box[3] / 2) * tile["scale"]
    return any(all(abs(a - b) <= 60 for a, b in zip(frontend.canvas_pixel(ENCODE_ID, x + dx, y), REGION_COLOR))
               for dx in (-1, -0.5, 0, 0.5, 1))


def test_draw_a_box_where_detection_fails_then_queue_save_reload(frontend, client, comfy_server, shrunk_photo,
                                                                  dlib_engine, object_info):
    from pulid_flux.engine.identity import load_identity
    from pulid_flux.images import content_hash

    canvas, face_box, obama = shrunk_photo
    name = f"shrunk_face_{uuid.uuid4().hex[:8]}.png"
    client.upload_image(png_bytes(canvas), filename=name, overwrite=True)
    build_graph(frontend, name)
    since = len(frontend.console)

    # 1. No face: the run fails with the how-to, and the node still shows the photo to draw on.
    failed = wait_history(client, queue_face_nodes(frontend, "first"))
    error = next(m for kind, m in failed["status"]["messages"] if kind == "execution_error")
    assert error["node_id"] == str(ENCODE_ID)
    assert "no face found in any reference image (image 1) by dlib:hog" in error["exception_message"]
    assert "drag a box around the face" in error["exception_message"]
    frontend.wait_for("""(id) => { const p = window.app.graph.getNodeById(id).pulidFacePicker;
        return p && !p.fromInput && p.data.images[0].face_found === false && p.previews[0] && p.previews[0].complete; }""",
                      ENCODE_ID, timeout_s=60)
    frontend.page.keyboard.press("Escape")                 # the frontend's error dialog, if it opened one
    state = picker(frontend)
    (entry,) = state["data"]["images"]
    assert entry["image_size"] == list(CANVAS_SIZE) and entry["image_hash"] == content_hash(canvas)
    assert entry["source"]["type"] == "temp" and state["data"]["engine"]

    # 2. Draw the box with the mouse: corner to corner around the face, zoomed in on it.
    tile = state["tiles"][0]
    x0, y0, x1, y1 = face_box
    side = x1 - x0
    corners = [(x0 - 0.6 * side, y0 - 0.8 * side), (x1 + 0.6 * side, y1 + 0.5 * side)]
    local = [(tile["x"] + x * tile["scale"], tile["y"] + y * tile["scale"]) for x, y in corners]
    look_at(frontend, ENCODE_ID, (local[0][0] + local[1][0]) / 2, (local[0][1] + local[1][1]) / 2, 4.0)
    start, end = (frontend.client_point(ENCODE_ID, *p) for p in local)
    mouse = frontend.page.mouse
    mouse.move(*start)
    frontend.page.wait_for_timeout(50)
    mouse.down()
    mouse.move(*end, steps=12)
    mouse.up()
    frontend.page.wait_for_timeout(200)
    (region,) = json.loads(region_widget(frontend))
    assert region["hash"] == entry["image_hash"]
    drawn = np.array(region["box"])
    expected = np.array([corners[0][0], corners[0][1], corners[1][0] - corners[0][0], corners[1][1] - corners[0][1]])
    np.testing.assert_allclose(drawn, expected, atol=2.5 / (tile["scale"] * 4.0))   # a screen pixel or two
    assert shows_region_edge(frontend, tile, region["box"])

    # 3. The crop preview, before queueing: the face re-detected in the box, aligned; it is Obama.
    frontend.wait_for("(id) => { const c = window.app.graph.getNodeById(id).pulidFacePicker.crops[0]; "
                      "return c && (c.error || (c.img && c.img.complete && c.img.naturalWidth > 0)); }",
                      ENCODE_ID, timeout_s=60)
    crop = picker(frontend)["crop"]
    assert crop["error"] is None and crop["mode"] == "redetected", crop
    image = np.ascontiguousarray(data_url_image(crop["url"]))
    (seen,) = dlib_engine.detect(image)
    assert abs(seen.center[0] - image.shape[1] / 2) < 0.1 * image.shape[1]
    assert float(seen.normed_embedding @ obama) > 0.93

    # 4. Queue again: an identity, from the drawn region.
    done = wait_history(client, queue_face_nodes(frontend, "second"))
    assert done["status"]["status_str"] == "success", done["status"]
    (file,) = (Path(comfy_server.base_dir) / "output" / "pulid_identities").glob("second_*.pulidembd")
    identity = load_identity(file)
    assert identity.tokens.shape[:2] == (1, 32) and torch_finite(identity.tokens)
    (status,) = identity.info["images"]
    assert status["face_found"] and status["region"]["mode"] == "redetected" and status["region"]["box"] == region["box"]
    frontend.wait_for("""(id) => { const p = window.app.graph.getNodeById(id).pulidFacePicker;
        return p && !p.fromInput && p.data.images[0].face_found === true; }""", ENCODE_ID, timeout_s=60)

    # 5. Save and reload the workflow: the box is still the widget value, and drawn on the photo.
    saved = json.loads(frontend.evaluate("() => JSON.stringify(window.app.graph.serialize())"))
    (node,) = [n for n in saved["nodes"] if n["id"] == ENCODE_ID]
    assert node["widgets_values"][3] == region_widget(frontend)           # after face_choice, face_index, fusion
    frontend.load_workflow(json.loads((ROOT / "workflows" / "01_base.json").read_text()))
    assert frontend.load_workflow(saved) == []
    assert json.loads(region_widget(frontend))[0]["box"] == region["box"]
    frontend.wait_for("""(id) => { const p = window.app.graph.getNodeById(id).pulidFacePicker;
        return p && p.fromInput && p.previews[0] && p.previews[0].complete && p.tiles.length === 1; }""",
                      ENCODE_ID, timeout_s=60)
    tile = picker(frontend)["tiles"][0]
    frontend.show_node(ENCODE_ID)
    assert shows_region_edge(frontend, tile, region["box"])

    # 6. The API twin carries it: the frontend's prompt, and our converter on the saved workflow.
    prompt = frontend.graph_to_prompt()
    assert prompt[str(ENCODE_ID)]["inputs"]["face_region"] == node["widgets_values"][3]
    converted = ui_to_api(saved, object_info)
    assert converted[str(ENCODE_ID)]["inputs"] == prompt[str(ENCODE_ID)]["inputs"]
    unexpected = [e for e in frontend.unexpected_errors(since) if "no face found" not in e.text]
    assert not unexpected, "\n".join(f"[{e.level}] {e.text} ({e.url})" for e in unexpected)


def torch_finite(tensor) -> bool:
    import torch

    return bool(torch.isfinite(tensor).all())


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return comfy_server.get_json("/object_info")
