"""``dataset prepare --engine insightface`` on a synthetic insightface pack (no real weights).

The synthetic detector "sees" a face in each red stride-32 cell (see ``pulid_flux.tiny.insightface_pack``);
the backgrounds carry noise so the face regions are sharp. This checks the engine-independent path:
pack discovery from the ComfyUI layout, downscaled detection mapped back to the photo, the
insightface default threshold, crops and outputs.
"""

import json

import numpy as np
import pytest
from PIL import Image

from api_client.cli import main as pulid_studio
from pulid_flux.tiny import insightface_pack as synth


def cli_main(argv):
    """``pulid-studio dataset ARGV`` in-process."""
    return pulid_studio(["dataset", *argv])


@pytest.fixture(scope="module")
def insightface_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("insightface")
    synth.build_pack(root / "models" / "antelopev2", decoys=False)
    return root


def painted(width, height, cells, seed):
    rng = np.random.default_rng(seed)
    image = synth.paint_faces(width, height, cells).astype(np.int16)
    background = (image == np.array(synth.BACKGROUND_RGB)).all(-1)
    image[background] += rng.integers(-40, 41, size=(int(background.sum()), 1), dtype=np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_prepare_with_the_insightface_engine(tmp_path, insightface_root):
    inputs = tmp_path / "in"
    inputs.mkdir()
    # 1600x1200 photos: detection runs on a 1024 copy, then the engine's own 640 letterbox.
    for n, cell in enumerate([(9, 5), (8, 6), (10, 5)]):
        Image.fromarray(painted(1600, 1200, [cell], seed=n)).save(inputs / f"p{n}.jpg", quality=90)
    Image.fromarray(painted(1600, 1200, [], seed=9)).save(inputs / "empty.jpg", quality=90)
    output = tmp_path / "out"
    code = cli_main(["prepare", str(inputs), str(output), "--trigger", "ohwx thing", "--engine", "insightface",
                     "--insightface-root", str(insightface_root), "--device", "cpu", "--format", "png"])
    assert code == 0
    report = json.loads((output / "report.json").read_text())
    assert report["subject"]["engine"] == "insightface:antelopev2"
    assert report["subject"]["threshold"] == pytest.approx(0.40)
    items = {i["file"]: i for i in report["items"]}
    assert items["empty.jpg"]["reason"] == "no_face"
    scale = 1600 / 640                               # the detector's 640 input covers the 1600 px photo
    for n, (col, row) in enumerate([(9, 5), (8, 6), (10, 5)]):
        item = items[f"p{n}.jpg"]
        assert item["status"] == "accepted", item
        left, top, right, bottom = synth.BOX_DISTANCES
        expected = np.array([col - left, row - top, col + right, row + bottom]) * synth.FIRING_STRIDE * scale
        assert np.allclose(item["face_box"], expected, atol=3), (item["face_box"], expected)
        with Image.open(output / item["output"]) as im:
            assert im.format == "PNG" and min(im.size) >= 1024
    assert sorted(p.suffix for p in (output / "dataset").iterdir()) == [".png"] * 3 + [".txt"] * 3
