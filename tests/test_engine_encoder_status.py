"""What the face picker draws comes from ImageStatus: every detected face's box, in the order
face_index counts in, in the reference image's own pixels, and the image size."""

import numpy as np
import pytest

from pulid_flux import PulidFlux
from pulid_flux.engine.eva import EvaVisionTower
from pulid_flux.face import load_bisenet, load_engine
from pulid_flux.engine.encoder import FaceModels, encode_identity
from pulid_flux.tiny import insightface_pack as synth
from pulid_flux.tiny.bisenet import save_random_bisenet
from pulid_flux.tiny.pulid import pulid_state_dict


@pytest.fixture(scope="module")
def models(tmp_path_factory, golden_dir):
    tmp = tmp_path_factory.mktemp("picker")
    engine = load_engine("insightface", pack_dir=synth.build_pack(tmp / "antelopev2", decoys=False), device="cpu")
    return FaceModels(engine, engine, load_bisenet(save_random_bisenet(tmp / "parsing_bisenet.pth")),
                      EvaVisionTower.from_file(golden_dir / "eva.safetensors"),
                      PulidFlux.from_state_dict(pulid_state_dict(), source="tiny_pulid.safetensors"))


def cell_box(col, row, scale):
    """The synthetic detector's box for a face painted in stride-32 cell (col, row), in image pixels."""
    left, top, right, bottom = synth.BOX_DISTANCES
    cx, cy = col * 32, row * 32                      # SCRFD anchor points sit on the cell corner
    return np.array([cx - left * 32, cy - top * 32, cx + right * 32, cy + bottom * 32]) / scale


@pytest.mark.parametrize("order, index, expected_cols", [
    ("left_to_right", 1, [3, 10, 16]),
    ("right_to_left", 0, [16, 10, 3]),
])
def test_every_face_box_in_the_chosen_order(models, order, index, expected_cols):
    # 2000 x 1500: shrunk to 1024 x 768 for detection, so boxes must be scaled back to the photo.
    image = synth.paint_faces(2000, 1500, [(10, 8), (3, 8), (16, 8)])
    result = encode_identity([image], models, face_order=order, face_index=index)
    (status,) = result.images
    assert status.image_size == (2000, 1500) and status.resized_from == (2000, 1500)
    assert status.faces_detected == len(status.face_boxes) == 3
    # paint_faces letterboxes into a 640 detector input: cell (c, r) covers 2000/640 image px per input px.
    scale = 640 / 2000
    for box, col in zip(status.face_boxes, expected_cols):
        np.testing.assert_allclose(box, cell_box(col, 8, scale), atol=1.0)
    assert status.bbox == status.face_boxes[index]       # the encoded face is the one at face_index
    assert status.as_dict()["face_boxes"] == status.face_boxes


def test_an_image_without_faces_still_has_its_size(models):
    blank = np.full((300, 400, 3), 128, np.uint8)
    result = encode_identity([blank, synth.paint_faces(640, 480, [(9, 7)])], models)
    empty, found = result.images
    assert not empty.face_found and empty.face_boxes == [] and empty.image_size == (400, 300)
    assert found.face_found and len(found.face_boxes) == 1 and found.image_size == (640, 480)
