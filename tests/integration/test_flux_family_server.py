"""The Flux family on a real ComfyUI server: GGUF through ComfyUI-GGUF, the Kontext and Chroma example
workflows, and the Apply node's refusal of a model its hooks cannot reach.

One server for the module, with ComfyUI-GGUF installed beside this pack (the ``comfyui_gguf``
fixture) and the tiny models, family files included.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from comfy_server import ComfyServer
from conftest_paths import WORKFLOWS
from test_workflows import face_image, png_bytes, run_pixels

from api_client import ExecutionError
from api_client.client import ComfyClient
from api_client.overrides import find_nodes, set_input
from api_client.tiny_profile import adapt_for_tiny
from pulid_flux.tiny.build import FAMILY, FILES, build_tiny_models

pytestmark = pytest.mark.integration

SIZE = 128                       # 8x8 Flux tokens: the graphs are the shipped ones, only smaller
GGUF_PACK = "ComfyUI-GGUF"


@pytest.fixture(scope="module")
def family_server(comfyui_path, tiny_models, comfyui_gguf, tmp_path_factory):
    build_tiny_models(tiny_models, include=list(FAMILY))
    server = ComfyServer(comfyui_path, tmp_path_factory.mktemp("family_server"), models_dir=tiny_models,
                         extra_custom_nodes={GGUF_PACK: comfyui_gguf})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(family_server):
    with ComfyClient(family_server.url) as c:
        c.upload_image(png_bytes(face_image()), filename="reference.png", overwrite=True)
        c.upload_image(png_bytes(np.random.default_rng(0).integers(0, 255, (96, 160, 3), np.uint8)),
                       filename="kontext_input.png", overwrite=True)
        yield c


def load(name: str) -> dict:
    prompt = adapt_for_tiny(json.loads((WORKFLOWS / f"{name}_api.json").read_text()))
    for node in find_nodes(prompt, title="Latent"):
        prompt = set_input(prompt, node, "width", SIZE)
        prompt = set_input(prompt, node, "height", SIZE)
    return prompt


def pixels(client, prompt) -> np.ndarray:
    return run_pixels(client, prompt, None)


# -- GGUF ------------------------------------------------------------------------------------------

def gguf_prompt(qtype: str, weight: float, lora: float) -> dict:
    """03_lora_pulid with the tiny Flux quantized to ``qtype`` through ComfyUI-GGUF's UnetLoaderGGUF."""
    prompt = load("03_lora_pulid")
    (loader,) = find_nodes(prompt, title="Flux model")
    prompt[loader] = {"class_type": "UnetLoaderGGUF", "_meta": {"title": "Flux model"},
                      "inputs": {"unet_name": Path(FILES[f"flux_gguf_{qtype.lower()}"]).name}}
    prompt = set_input(prompt, "PuLID", "weight", weight)
    return set_input(prompt, "LoRA", "strength_model", lora)


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0"])
def test_gguf_flux_takes_the_identity_with_a_lora(client, family_server, qtype):
    with_id = pixels(client, gguf_prompt(qtype, weight=1.0, lora=1.0))
    assert f"{qtype} (" in family_server.log_text()                # ComfyUI-GGUF logged its qtypes
    without_id = pixels(client, gguf_prompt(qtype, weight=0.0, lora=1.0))
    without_lora = pixels(client, gguf_prompt(qtype, weight=1.0, lora=0.0))
    assert with_id.shape == (SIZE, SIZE, 3)
    assert not np.array_equal(with_id, without_id)                 # PuLID reaches the GGUF model
    assert not np.array_equal(with_id, without_lora)               # so does the LoRA, with PuLID on


# -- the example workflows -------------------------------------------------------------------------

def kontext(weight: float = 0.8, image: str = "kontext_input.png") -> dict:
    """05_kontext_pulid; the image to edit is scaled to the test size instead of Kontext's preferred
    ~1 megapixel (4096 reference tokens would make each CPU run minutes long)."""
    prompt = set_input(load("05_kontext_pulid"), "Image to edit", "image", image)
    (scale,) = find_nodes(prompt, class_type="FluxKontextImageScale")
    prompt[scale] = {"class_type": "ImageScale", "_meta": {"title": "Kontext scale"},
                     "inputs": {"image": prompt[scale]["inputs"]["image"], "upscale_method": "bilinear",
                                "width": SIZE, "height": SIZE, "crop": "disabled"}}
    return set_input(prompt, "PuLID", "weight", weight)


def test_kontext_workflow_edits_the_image_and_takes_the_identity(client):
    with_id = pixels(client, kontext())
    assert with_id.shape == (SIZE, SIZE, 3)
    assert not np.array_equal(with_id, pixels(client, kontext(weight=0.0)))
    # The image to edit reaches the model (as reference tokens), beside the identity.
    assert not np.array_equal(with_id, pixels(client, kontext(image="reference.png")))


def test_chroma_workflow_takes_the_identity_with_true_cfg(client):
    prompt = load("06_chroma_pulid")
    with_id = pixels(client, prompt)
    assert with_id.shape == (SIZE, SIZE, 3)
    assert not np.array_equal(with_id, pixels(client, set_input(prompt, "PuLID", "weight", 0.0)))
    # CFG > 1: the negative pass runs, and what it gets (the "no identity" tokens, or nothing) matters.
    assert not np.array_equal(with_id, pixels(client, set_input(prompt, "PuLID", "uncond", "none")))


# -- a model the hooks cannot reach ----------------------------------------------------------------

def test_sd15_unet_fails_in_the_apply_node_with_the_reason(client):
    prompt = set_input(load("03_lora_pulid"), "Flux model", "unet_name", Path(FILES["sd15_unet"]).name)
    with pytest.raises(ExecutionError) as err:
        client.run(prompt, timeout=600)
    assert err.value.data.get("node_type") == "PulidStudioApplyPulidFlux"
    message = err.value.data.get("exception_message", "")
    assert "cannot reach this model" in message and "SD15" in message and "FLUX.1" in message
    assert client.system_stats()                                   # the server keeps serving
