"""The four shipped comparison workflows, executed by a real ComfyUI server on the tiny models."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from api_client import ExecutionError, WorkflowValidationError
from api_client.client import ComfyClient
from api_client.overrides import find_nodes, set_input
from api_client.tiny_profile import adapt_for_tiny
from conftest_paths import WORKFLOWS

pytestmark = pytest.mark.integration

NAMES = ["01_base", "02_lora", "03_lora_pulid", "04_full"]
# Half the shipped 896x1216 (same aspect): a quarter of the tokens keeps the tier within minutes on
# two CPU cores; the graphs are otherwise exactly the shipped ones.
TEST_SIZE = (448, 608)


def face_image():
    """A picture the synthetic SCRFD detector sees a face in (a red 32-px cell of its 640 input)."""
    from pulid_flux.tiny.insightface_pack import paint_faces
    return paint_faces(640, 640, [(9, 8)])


def png_bytes(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(comfy_server):
    with ComfyClient(comfy_server.url) as c:
        c.upload_image(png_bytes(face_image()), filename="reference.png", overwrite=True)
        c.upload_image(png_bytes(np.full((256, 256, 3), 128, np.uint8)), filename="no_face.png", overwrite=True)
        yield c


def load(name):
    prompt = adapt_for_tiny(json.loads((WORKFLOWS / f"{name}_api.json").read_text()))
    for node in find_nodes(prompt, title="Latent") + find_nodes(prompt, title="Pose"):
        prompt = set_input(prompt, node, "width", TEST_SIZE[0])
        prompt = set_input(prompt, node, "height", TEST_SIZE[1])
    return prompt


def run_pixels(client, prompt, tmp_path):
    result = client.run(prompt, timeout=600)
    saved = [f for f in result.files(["images"]) if f.type == "output"]   # previews go to temp
    assert len(saved) == 1, saved
    return np.asarray(Image.open(io.BytesIO(client.view(saved[0].filename, saved[0].subfolder, saved[0].type))))


@pytest.fixture(scope="module")
def images(client, tmp_path_factory):
    """Each workflow once, seed 42 (the others compare against these)."""
    out = {}
    for name in NAMES:
        out[name] = run_pixels(client, load(name), tmp_path_factory.mktemp(name))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_workflow_writes_image_of_requested_size(images, name):
    prompt = load(name)
    (latent,) = find_nodes(prompt, class_type="EmptySD3LatentImage")
    w, h = prompt[latent]["inputs"]["width"], prompt[latent]["inputs"]["height"]
    assert images[name].shape[:2] == (h, w)


def test_configurations_differ(images):
    assert not np.array_equal(images["01_base"], images["02_lora"])
    assert not np.array_equal(images["02_lora"], images["03_lora_pulid"])
    assert not np.array_equal(images["03_lora_pulid"], images["04_full"])


def test_pulid_weight_zero_is_the_lora_image(client, images, tmp_path):
    prompt = set_input(load("03_lora_pulid"), "PuLID", "weight", 0.0)
    assert np.array_equal(run_pixels(client, prompt, tmp_path), images["02_lora"])


def test_empty_window_is_the_lora_image(client, images, tmp_path):
    prompt = set_input(load("03_lora_pulid"), "PuLID", "start_at", 0.5)
    prompt = set_input(prompt, "PuLID", "end_at", 0.5)
    assert np.array_equal(run_pixels(client, prompt, tmp_path), images["02_lora"])


def test_wrong_pulid_file_is_a_node_error(client):
    prompt = set_input(load("03_lora_pulid"), "PuLID model", "pulid_file", "pulid_missing.safetensors")
    with pytest.raises(WorkflowValidationError) as err:
        client.run(prompt, timeout=120)
    assert "PuLID model" in str(err.value) and "pulid_missing.safetensors" in str(err.value)
    assert client.system_stats()  # the server keeps serving


def test_reference_without_face_fails_clearly(client):
    prompt = set_input(load("03_lora_pulid"), "Reference image", "image", "no_face.png")
    with pytest.raises(ExecutionError) as err:
        client.run(prompt, timeout=300)
    text = str(err.value)
    assert "Encode identity" in text or "PulidStudioEncodeIdentity" in text
    assert "no face" in text.lower()
    assert client.system_stats()


def test_controlnet_strength_zero_is_the_pulid_image(client, images, tmp_path):
    prompt = set_input(load("04_full"), "Pose ControlNet", "strength", 0.0)
    assert np.array_equal(run_pixels(client, prompt, tmp_path), images["03_lora_pulid"])


def test_union_pro2_file_runs_without_a_mode(client, images, tmp_path):
    prompt = set_input(load("04_full"), "Union ControlNet", "control_net_name", "flux_union_pro2.safetensors")
    result = client.run(prompt, timeout=600)
    info = next(v for k, v in result.outputs.items() if prompt[k]["class_type"] == "PulidStudioApplyPoseControlNet")
    text = " ".join(info["text"])
    assert "union_pro_2" in text and "pose mode none" in text
    saved = [f for f in result.files(["images"]) if f.type == "output"]
    pixels = np.asarray(Image.open(io.BytesIO(client.view(saved[0].filename, saved[0].subfolder, saved[0].type))))
    assert not np.array_equal(pixels, images["03_lora_pulid"])


def test_unknown_node_fails_with_its_title_and_comfyuis_message(client):
    prompt = load("01_base")
    prompt["99"] = {"class_type": "NotARealNode", "inputs": {}, "_meta": {"title": "Mystery step"}}
    with pytest.raises(WorkflowValidationError) as err:
        client.run(prompt, timeout=120)
    text = str(err.value)
    assert "Mystery step" in text and "NotARealNode" in text
    assert client.system_stats()
