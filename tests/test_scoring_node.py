"""The "Score identity" node, imported the way ComfyUI imports the pack (needs COMFYUI_PATH)."""

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from pulid_flux.images import load_rgb
from pulid_flux.scoring import DLIB_THRESHOLD

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scoring_nodes(pack_nodes):
    return pack_nodes("scoring")


def batch(*images, size=400):
    from PIL import Image
    frames = []
    for image in images:
        picture = Image.fromarray(image)
        picture.thumbnail((size, size))
        canvas = np.full((size, size, 3), 100, np.uint8)
        canvas[:picture.height, :picture.width] = np.asarray(picture)
        frames.append(canvas)
    return torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)


def test_score_identity_node(scoring_nodes, faces_dir, comfy_progress_calls):
    node = scoring_nodes.ScoreIdentity
    schema = node.GET_SCHEMA()          # validated and finalised by ComfyUI
    assert schema.node_id == "PulidStudioScoreIdentity"
    info = node.GET_NODE_INFO_V1()
    assert info["output"] == ["STRING", "IMAGE"] and "face_engine" in info["input"]["optional"]
    assert [i.id for i in schema.inputs][:3] == ["images", "reference_images", "engine"]
    assert scoring_nodes.NODE_LIST == [node]
    photos = faces_dir / "photos"
    references = batch(load_rgb(photos / "obama_01.jpg"), load_rgb(photos / "obama_02.jpg"))
    images = batch(load_rgb(photos / "obama_04.jpg"), load_rgb(photos / "hinton_01.jpg"),
                   np.full((64, 64, 3), 128, np.uint8))
    out = node.execute(images, references, engine="dlib", threshold=-1.0, columns=3)
    text, grid = out.args
    assert comfy_progress_calls[0] == (1, 3) and comfy_progress_calls[-1] == (3, 3)   # the canvas's bar
    lines = text.splitlines()
    assert any(line.startswith("image 0: dlib") and "pass" in line for line in lines)
    assert any(line.startswith("image 1: dlib") and "fail" in line for line in lines)
    assert "image 2: dlib NO FACE" in text
    assert f"threshold {DLIB_THRESHOLD:g} (calibrated" in text
    assert grid.ndim == 4 and grid.shape[0] == 1 and grid.shape[-1] == 3 and grid.dtype == torch.float32
    assert grid.shape[2] > 3 * 400 > grid.shape[2] - 50        # three 400 px tiles side by side
    assert out.ui is not None
    no_face_error = importlib.import_module(scoring_nodes.__name__.rsplit(".nodes", 1)[0] + ".pulid_flux.errors").NoFaceError
    with pytest.raises(no_face_error, match="reference image 0: no face found"):
        node.execute(images, batch(np.full((64, 64, 3), 128, np.uint8)), engine="dlib")
