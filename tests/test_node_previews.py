"""Canvas previews of the nodes (nodes/previews.py, the pose nodes' PreviewImage, the face picker's
payload), in an in-process CPU ComfyUI. Run with COMFYUI_PATH=/path/to/ComfyUI; skipped without it.
"""

import importlib
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "_pulid_studio_previews_under_test"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def comfy(comfyui_path):
    if str(comfyui_path) not in sys.path:
        sys.path.insert(0, str(comfyui_path))
    from comfy.cli_args import args
    args.cpu = True
    import comfy.model_management
    return comfy


@pytest.fixture(scope="module")
def pack(comfy):
    """The pack's node modules imported as a package, without registering anything."""
    for name, path in ((PACKAGE, ROOT), (f"{PACKAGE}.nodes", ROOT / "nodes")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            sys.modules[name] = module
    return types.SimpleNamespace(previews=importlib.import_module(f"{PACKAGE}.nodes.previews"),
                                 pose=importlib.import_module(f"{PACKAGE}.nodes.pose"),
                                 face=importlib.import_module(f"{PACKAGE}.nodes.face"),
                                 face_region=importlib.import_module(f"{PACKAGE}.nodes.face_region"))


@pytest.fixture(scope="module")
def persistent_flag(comfy):
    """Whether this ComfyUI's io.Schema has ``has_intermediate_output`` (0.33 does, 0.8.0 does not)."""
    import dataclasses

    from comfy_api.v0_0_2 import io
    return "has_intermediate_output" in {f.name for f in dataclasses.fields(io.Schema)}


def kept_when_cached(info, flag_supported) -> bool:
    """The node info says "keep my UI output" exactly where ComfyUI has the flag, and it is no output node."""
    expected = True if flag_supported else None
    return info.get("has_intermediate_output") is expected and not info["output_node"]


@pytest.fixture
def temp_dir(comfy, tmp_path):
    """ComfyUI's temp folder pointed at a pytest folder for one test."""
    import folder_paths
    previous = folder_paths.get_temp_directory()
    folder_paths.set_temp_directory(str(tmp_path))
    yield tmp_path
    folder_paths.set_temp_directory(previous)


def in_executor(node_cls):
    """The class as ComfyUI's executor calls it (a clone carrying the hidden inputs)."""
    return node_cls.PREPARE_CLASS_CLONE(None)


def saved_size(temp_dir, entry):
    assert entry["type"] == "temp"
    with Image.open(temp_dir / entry["subfolder"] / entry["filename"]) as image:
        return image.size


def test_helpers(pack, temp_dir, persistent_flag):
    p = pack.previews
    assert p.thumbnail(np.zeros((1200, 600, 3), np.uint8)).shape == (512, 256, 3)
    small = np.zeros((100, 50, 3), np.uint8)
    assert p.thumbnail(small) is small
    red, blue = np.zeros((20, 30, 3), np.uint8), np.zeros((40, 10, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    saved = p.save_temp_images([red, blue])
    assert [saved_size(temp_dir, s) for s in saved] == [(30, 20), (10, 40)]
    with Image.open(temp_dir / saved[1]["filename"]) as image:
        assert image.convert("RGB").getpixel((0, 0)) == (0, 0, 255)
    assert p.save_temp_images([]) == []
    merged = p.UIParts({"text": ("a",)}, None, types.SimpleNamespace(as_dict=lambda: {"images": [1]})).as_dict()
    assert merged == {"text": ("a",), "images": [1]}
    assert p.persistent_ui() == ({"has_intermediate_output": True} if persistent_flag else {})


def test_pose_nodes_preview_only_inside_the_executor(pack, temp_dir):
    node = pack.pose.PoseFromBank
    direct = node.execute("portrait", 320, 448)
    assert direct.ui is None and not any(temp_dir.iterdir())         # scripts/tests write nothing
    run = in_executor(node).execute("portrait", 320, 448)
    (entry,) = run.ui.as_dict()["images"]
    assert saved_size(temp_dir, entry) == (320, 448)
    with Image.open(temp_dir / entry["filename"]) as image:
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")),
                                      (run[1][0].numpy() * 255).round().astype(np.uint8))
    prompt = in_executor(pack.pose.PoseForPrompt).execute("a full body photo", "", 256, 384)
    ui = prompt.ui.as_dict()
    assert ui["text"] == (f"composition: {prompt[0]}",) and saved_size(temp_dir, ui["images"][0]) == (256, 384)


@pytest.mark.parametrize("name", ["PoseFromBank", "RenderPose", "EditPose", "LoadPoseJSON", "PoseForPrompt",
                                  "ApplyPoseControlNet"])
def test_preview_nodes_keep_their_ui_when_cached(pack, name, persistent_flag):
    assert kept_when_cached(getattr(pack.pose, name).GET_NODE_INFO_V1(), persistent_flag)


class FakeEngine:
    name = "fake engine"


def test_face_picker_payload(pack, temp_dir, persistent_flag):
    from pulid_flux.engine.encoder import ImageStatus

    statuses = [ImageStatus("image 1", True, 2, "left_to_right", 1, bbox=[300.0, 10.0, 380.0, 90.0], score=0.9,
                            image_size=(800, 600), face_boxes=[[10.0, 10.0, 90.0, 90.0], [300.0, 10.0, 380.0, 90.0]],
                            image_hash="ab" * 32),
                ImageStatus("image 2", False, image_size=(64, 48))]
    frames = [np.full((600, 800, 3), 200, np.uint8), np.zeros((48, 64, 3), np.uint8)]
    face, region = pack.face, pack.face_region
    assert kept_when_cached(face.EncodeIdentity.GET_NODE_INFO_V1(), persistent_flag)
    engine = FakeEngine()

    direct = region.picker_data(face.EncodeIdentity, frames, statuses, "left_to_right", 1, engine)
    assert [("preview" in i) for i in direct["images"]] == [False, False] and not any(temp_dir.iterdir())
    assert "engine" not in direct

    data = region.picker_data(in_executor(face.EncodeIdentity), frames, statuses, "left_to_right", 1, engine)
    assert (data["face_order"], data["face_index"]) == ("left_to_right", 1)
    first, second = data["images"]
    assert first["face_boxes"] == statuses[0].face_boxes and first["image_size"] == (800, 600)
    assert first["image_hash"] == "ab" * 32 and first["region"] is None
    assert saved_size(temp_dir, first["preview"]) == (512, 384) and saved_size(temp_dir, second["preview"]) == (64, 48)
    assert saved_size(temp_dir, first["source"]) == (800, 600)             # the source copy keeps the pixels
    assert second["face_found"] is False and second["face_boxes"] == []
    assert region._ENGINES[data["engine"]] is engine                        # the preview route finds it
    json.dumps(data)                                                   # travels over the websocket as JSON


def test_big_photos_are_shrunk_for_the_source_copy(pack, temp_dir):
    from pulid_flux.engine.encoder import ImageStatus

    data = pack.face_region.picker_data(in_executor(pack.face.EncodeIdentity), [np.zeros((3000, 4000, 3), np.uint8)],
                                        [ImageStatus("image 1", False, image_size=(4000, 3000))], "largest", 0, FakeEngine())
    assert saved_size(temp_dir, data["images"][0]["source"]) == (2048, 1536)


def data_url_image(url):
    import base64
    import io

    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def test_crop_preview_route_shows_the_boxed_face(pack, temp_dir, faces_dir):
    """What POST /pulid_studio/face_region/preview answers: the aligned crop of the drawn box."""
    from pulid_flux.face import load_engine
    from pulid_flux.images import load_rgb

    region = pack.face_region
    engine = load_engine("dlib")
    photo = load_rgb(faces_dir / "photos" / "group_two_people.jpg")
    faces = sorted(engine.detect(photo), key=lambda f: f.center[0])
    (saved,) = pack.previews.save_temp_images([photo[::2, ::2].copy()])     # a half-size source copy
    token = region.engine_token(engine)
    for face in faces:
        x0, y0, x1, y1 = (float(v) for v in face.bbox)
        body = {"source": saved, "image_size": [photo.shape[1], photo.shape[0]], "engine": token,
                "region": {"box": [x0 - 20, y0 - 30, x1 - x0 + 40, y1 - y0 + 50]}}
        answer = region.preview(body)
        assert answer["mode"] == "redetected" and answer["engine"] is True and answer["visible_share"] is None
        crop = data_url_image(answer["crop"])
        assert crop.shape == (256, 256, 3)
        (seen,) = engine.detect(np.ascontiguousarray(crop))
        assert abs(seen.center[0] - 128) < 20 and abs(seen.center[1] - 140) < 30      # the face, centred
        same = seen.normed_embedding @ face.normed_embedding
        assert same > 0.93, same                                                        # and it is that person
    # No engine (ComfyUI dropped it, or never ran): box-only, said so.
    answer = region.preview({**body, "engine": "unknown"})
    assert answer["mode"] == "box-only" and answer["message"].startswith("no face engine at hand")
    with pytest.raises(region.FaceRegionError, match="not in ComfyUI's temp folder"):
        region.preview({**body, "source": {**saved, "filename": "../../etc/passwd"}})
    with pytest.raises(region.FaceRegionError, match="'image_size' must be"):
        region.preview({**body, "image_size": [0, 5]})
    with pytest.raises(region.FaceRegionError, match="face_region: 'box' is missing"):
        region.preview({**body, "region": {}})


def test_preview_image_of_a_batch_is_one_file_per_frame(pack, temp_dir):
    batch = torch.rand(2, 40, 24, 3)
    ui = pack.previews.image_preview(in_executor(pack.pose.RenderPose), batch).as_dict()
    assert [saved_size(temp_dir, e) for e in ui["images"]] == [(24, 40), (24, 40)]
    assert pack.previews.image_preview(pack.pose.RenderPose, batch) is None
