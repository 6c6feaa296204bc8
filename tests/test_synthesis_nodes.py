"""The synthesis nodes inside a real (in-process, CPU) ComfyUI: head-pose view bank, geometric caption,
identity-and-pose filter. Run with COMFYUI_PATH=/path/to/ComfyUI; skipped without it."""

import numpy as np
import pytest
import torch

from pulid_flux.images import load_rgb
from pulid_flux.pose.keypoints import BODY, L_EAR, NOSE, R_EAR

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def nodes(pack_nodes):
    return pack_nodes("synthesis")


@pytest.fixture(scope="module")
def engine(dlib_engine):
    return dlib_engine


def as_image(rgb):
    return torch.from_numpy(np.ascontiguousarray(rgb)).float().div(255.0).unsqueeze(0)


@pytest.fixture(scope="module")
def photo(faces_dir):
    return lambda name: load_rgb(faces_dir / "photos" / name)


def test_schemas_compile(nodes):
    ids = set()
    for node in nodes.NODE_LIST:
        schema = node.define_schema()
        ids.add(schema.node_id)
        assert schema.category == "PuLID-Flux Studio/Dataset" and schema.description
        for inp in schema.inputs:
            assert inp.tooltip, f"{schema.node_id}.{inp.id} has no tooltip"
        node.INPUT_TYPES()
    assert ids == {"PulidStudioHeadPoseView", "PulidStudioGeometricCaption", "PulidStudioIdentityPoseFilter"}


def test_head_pose_view(nodes):
    out = nodes.HeadPoseView.execute("portrait", 60.0, 0.0, 0.0, 512, 640, 0.5)
    frames, image = out.result
    body = np.array(frames[0]["people"][0][BODY]).reshape(18, 3)
    assert body[L_EAR, 2] == 0 and body[R_EAR, 2] == 1 and body[NOSE, 2] == 1     # turned to the image's right
    assert tuple(image.shape) == (1, 640, 512, 3) and float(image.max()) > 0.5
    with pytest.raises(ValueError, match="unknown framing"):
        nodes.HeadPoseView.execute("wide", 0.0, 0.0, 0.0, 512, 512, 0.5)


def test_geometric_caption(nodes, engine, photo, comfy_progress_calls):
    images = [as_image(photo("group_two_people.jpg")), as_image(photo("obama_04.jpg"))]
    out = nodes.GeometricCaption.execute(images, [engine], ["ohwx man"], ["medium shot"], ["photo"],
                                         reference=[as_image(photo("biden_02.jpg"))])
    captions = out.result[0]
    assert captions[0] == "ohwx man, on the right, with one other person on the left, frontal view, medium shot, photo"
    assert captions[1].startswith("ohwx man, in the center, ") and captions[1].endswith("medium shot, photo")
    assert comfy_progress_calls[-1] == (2, 2)          # the canvas shows the loop's bar
    with pytest.raises(ValueError, match="image 1: no face found"):
        nodes.GeometricCaption.execute([as_image(np.zeros((64, 64, 3), np.uint8))], [engine], ["ohwx man"],
                                       ["none"], [""])


def test_identity_pose_filter(nodes, engine, photo, comfy_progress_calls):
    images = [as_image(photo(n)) for n in ("biden_02.jpg", "obama_04.jpg", "obama_05_1080p.jpg", "obama_02.jpg")]
    out = nodes.IdentityPoseFilter.execute(images, [engine], [as_image(photo("obama_01.jpg"))], [0.0], [0.0], [1],
                                           [0.0], [0.0])
    kept, report = out.result
    lines = report.splitlines()
    assert lines[0] == "1 of 4 kept" and len(kept) == 1
    assert comfy_progress_calls[0] == (1, 4) and comfy_progress_calls[-1] == (4, 4)
    assert "image_1: rejected (not_subject)" in lines[1]
    assert sum("surplus" in line or "duplicate" in line for line in lines) >= 1
    assert tuple(kept[0].shape[1:3]) in {tuple(images[1].shape[1:3]), tuple(images[2].shape[1:3])}
