"""The dataset nodes inside a real (in-process, CPU) ComfyUI: filter -> crop -> caption -> save.

Run with COMFYUI_PATH=/path/to/ComfyUI; skipped without it.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pulid_flux.face import load_engine
from pulid_flux.images import load_rgb

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("obama_01.jpg", "obama_02.jpg", "biden_02.jpg", "obama_04.jpg", "lecun_01.jpg")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def nodes(pack_nodes):
    return pack_nodes("dataset")


@pytest.fixture(scope="module")
def engine():
    return load_engine("dlib", detect_max_side=768)


@pytest.fixture
def progress(comfy):
    """Every ProgressBar update the nodes send, as (value, total)."""
    calls = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    yield calls
    comfy.utils.set_progress_bar_global_hook(None)


def as_image(rgb):
    return torch.from_numpy(rgb).float().div(255.0).unsqueeze(0)


@pytest.fixture(scope="module")
def photos(faces_dir):
    return {name: load_rgb(faces_dir / "photos" / name) for name in PHOTOS}


class DoublingModel:
    """The parts of an UPSCALE_MODEL ComfyUI's upscale node uses: x2 nearest-neighbour.

    ComfyUI 0.33 reads ``patcher`` (a ModelPatcher it loads), 0.8.0 the spandrel descriptor's
    ``model`` (its size) and ``to(device)``; both call it on tiles and read ``scale``.
    """

    scale = 2.0

    def __init__(self, comfy):
        import comfy.model_patcher
        self.model = torch.nn.Upsample(scale_factor=2, mode="nearest")
        self.patcher = comfy.model_patcher.ModelPatcher(self.model, load_device=torch.device("cpu"),
                                                        offload_device=torch.device("cpu"))
        self.calls = 0

    def to(self, device):
        self.model.to(device)
        return self

    def __call__(self, x):
        self.calls += 1
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def test_schemas_compile(nodes):
    ids = set()
    for node in nodes.NODE_LIST:
        schema = node.define_schema()
        ids.add(schema.node_id)
        assert schema.category.startswith("PuLID-Flux Studio/Dataset") and schema.description
        for inp in schema.inputs:
            assert inp.tooltip, f"{schema.node_id}.{inp.id} has no tooltip"
        node.INPUT_TYPES()                      # the V1 view ComfyUI's server builds must not fail
    assert ids == {"PulidStudioDatasetFilter", "PulidStudioDatasetCrop", "PulidStudioDatasetCaption",
                   "PulidStudioDatasetSave"}
    assert nodes.DatasetFilter.define_schema().is_input_list


def test_filter_crop_caption_save(nodes, comfy, engine, photos, progress, tmp_path, monkeypatch):
    import folder_paths
    monkeypatch.setattr(folder_paths, "get_output_directory", lambda: str(tmp_path))
    # Photos of different sizes arrive as a list of batches (is_input_list).
    images = [as_image(photos[name]) for name in PHOTOS]
    out = nodes.DatasetFilter.execute(images=images, face_engine=[engine], similarity_threshold=[0.0],
                                      competing_face_ratio=[0.6], min_face_px=[64], min_face_share=[0.05],
                                      min_source_side=[384], blur_threshold=[30.0], duplicate_distance=[10])
    batch, accepted, report = out.result
    assert [i.name for i in batch.items] == [f"image_{n:04d}" for n in range(1, 6)]
    verdicts = [(i.status, i.reason) for i in batch.items]
    assert verdicts == [("accepted", None), ("accepted", None), ("rejected", "not_subject"), ("accepted", None),
                        ("rejected", "not_subject")]
    assert len(accepted) == 3 and tuple(accepted[0].shape) == (1, 1137, 910, 3)
    assert report.startswith("3 of 5 accepted") and "not_subject" in report
    assert progress[-1] == (5, 5)

    model = DoublingModel(comfy)
    progress.clear()
    out = nodes.DatasetCrop.execute(batch, min_aspect=0.5, max_aspect=2.0, min_side=1024, max_side=2048,
                                    blur_other_faces=True, upscale_model=model)
    cropped, crops = out.result
    assert model.calls > 0                      # obama_01 (910 px wide) needed enlarging
    assert batch.items[0].rendered is None      # the input batch is left as it was (ComfyUI caches it)
    for image in crops:
        _, h, w, _ = image.shape
        assert min(w, h) >= 1024 and max(w, h) <= 2048 and 0.5 <= w / h <= 2.0 and w % 32 == h % 32 == 0
    assert progress and progress[-1][0] == progress[-1][1]

    out = nodes.DatasetCaption.execute(cropped, trigger="ohwx man", text="photo")
    captioned, captions = out.result
    assert len(captions) == 3 and all(c.startswith("ohwx man, ") and c.endswith(", photo") for c in captions)

    with pytest.raises(ValueError, match="relative sub-folder"):
        nodes.DatasetSave.execute(captioned, folder="../escape")
    out = nodes.DatasetSave.execute(captioned, folder="lora/ohwx", steps=1200, learning_rate=2e-4)
    (folder,) = out.result
    folder = Path(folder)
    assert folder == tmp_path / "lora" / "ohwx"
    files = sorted(p.name for p in (folder / "dataset").iterdir())
    assert files == ["image_0001.jpg", "image_0001.txt", "image_0002.jpg", "image_0002.txt",
                     "image_0004.jpg", "image_0004.txt"]
    config = yaml.safe_load((folder / "ai-toolkit.yaml").read_text())
    process = config["config"]["process"][0]
    assert process["train"]["steps"] == 1200 and process["train"]["lr"] == 2e-4
    assert process["datasets"][0]["folder_path"] == str((folder / "dataset").resolve())
    report = json.loads((folder / "report.json").read_text())
    assert [i["status"] for i in report["items"]] == ["accepted", "accepted", "rejected", "accepted", "rejected"]
    assert (folder / "report.html").is_file()


def test_save_needs_captions(nodes, engine, photos, tmp_path, monkeypatch):
    import folder_paths
    monkeypatch.setattr(folder_paths, "get_output_directory", lambda: str(tmp_path))
    out = nodes.DatasetFilter.execute(images=[as_image(photos["obama_02.jpg"])], face_engine=[engine],
                                      similarity_threshold=[0.0], competing_face_ratio=[0.6], min_face_px=[64],
                                      min_face_share=[0.05], min_source_side=[384], blur_threshold=[30.0],
                                      duplicate_distance=[10], references=[as_image(photos["obama_01.jpg"])])
    batch = out.result[0]
    assert batch.subject["method"] == "reference" and batch.accepted
    with pytest.raises(ValueError, match="not cropped yet"):
        nodes.DatasetCaption.execute(batch, trigger="ohwx man")
    cropped = nodes.DatasetCrop.execute(batch, 0.5, 2.0, 1024, 2048).result[0]
    with pytest.raises(ValueError, match="caption it"):
        nodes.DatasetSave.execute(cropped, folder="x")
    with pytest.raises(ValueError, match="comma"):
        nodes.DatasetCaption.execute(cropped, trigger="ohwx, man")


def test_blurred_face_in_a_node_run(nodes, engine, photos):
    """A small second face pasted beside the subject's shoulder stays in the crop and is blurred."""
    subject = photos["obama_01.jpg"].copy()
    other = photos["biden_02.jpg"]
    faces = engine.detect(other)
    x0, y0, x1, y1 = (int(v) for v in faces[0].bbox)
    pad = (x1 - x0) // 3
    patch = other[y0 - pad:y1 + pad, x0 - pad:x1 + pad]
    import cv2
    patch = cv2.resize(patch, (150, 150 * patch.shape[0] // patch.shape[1]), interpolation=cv2.INTER_AREA)
    subject[480:480 + patch.shape[0], 620:770] = patch          # on his shoulder, inside head-and-shoulders
    out = nodes.DatasetFilter.execute(images=[as_image(subject)], face_engine=[engine],
                                      similarity_threshold=[0.0], competing_face_ratio=[0.6], min_face_px=[64],
                                      min_face_share=[0.05], min_source_side=[384], blur_threshold=[30.0],
                                      duplicate_distance=[10], references=[as_image(photos["obama_02.jpg"])])
    batch = out.result[0]
    (item,) = batch.items
    assert item.accepted and len(item.faces) == 2
    assert "blurred" in item.detail
    cropped = nodes.DatasetCrop.execute(batch, 0.5, 2.0, 1024, 2048).result[0]
    (done,) = cropped.accepted
    assert len(done.crop.blurred) == 1
    # The blurred face is no longer a face to the detector; the subject still is.
    found = engine.detect(done.rendered)
    assert len(found) == 1
    assert found[0].center[0] < done.rendered.shape[1] * 0.6
    assert np.isclose(np.linalg.norm(found[0].normed_embedding), 1.0)
