"""Hashes, sharpness, captions, options, the ai-toolkit config and the output folder rules."""

import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from pulid_flux import PulidError
from pulid_flux.dataset import (PrepareOptions, TrainingConfig, build_caption, build_config,
                                default_similarity_threshold, face_sharpness, hamming, perceptual_hash,
                                prepare_output_dir, write_config)
from pulid_flux.dataset.export import output_stem
from pulid_flux.dataset.quality import trim_uniform_borders
from pulid_flux.images import load_rgb


@pytest.fixture(scope="module")
def photos(faces_dir):
    return {name: load_rgb(faces_dir / "photos" / name) for name in ("obama_01.jpg", "biden_02.jpg", "hinton_01.jpg")}


def jpeg_roundtrip(image, quality):
    _, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def test_perceptual_hash_survives_resizing_recompression_and_letterboxing(photos):
    image = photos["obama_01.jpg"]
    h = perceptual_hash(image)
    small = cv2.resize(image, (image.shape[1] // 3, image.shape[0] // 3), interpolation=cv2.INTER_AREA)
    assert hamming(h, perceptual_hash(jpeg_roundtrip(small, 60))) <= 4
    boxed = np.zeros((image.shape[0], image.shape[1] * 2, 3), np.uint8)
    boxed[:, image.shape[1] // 2:image.shape[1] // 2 + image.shape[1]] = image
    assert hamming(h, perceptual_hash(boxed)) <= 4
    assert trim_uniform_borders(cv2.cvtColor(boxed, cv2.COLOR_RGB2GRAY)).shape == image.shape[:2]
    # Different photos are far apart (the default duplicate distance is 10).
    others = [perceptual_hash(photos[n]) for n in ("biden_02.jpg", "hinton_01.jpg")]
    assert min(hamming(h, o) for o in others) > 12 and hamming(*others) > 12
    assert hamming(0b1011, 0b0001) == 2


def test_face_sharpness_drops_with_blur(photos):
    image = photos["obama_01.jpg"]
    box = (378, 158, 626, 406)
    sharp = face_sharpness(image, box)
    soft = face_sharpness(cv2.GaussianBlur(image, (0, 0), 5), box)
    assert sharp > PrepareOptions().blur_threshold * 5 > soft * 5
    # Measured at a fixed 128 px: the same face at half the resolution scores in the same range.
    half = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    assert 0.3 < face_sharpness(half, [v / 2 for v in box]) / sharp < 3
    assert face_sharpness(image, (-50, -50, -10, -10)) == 0.0


def test_captions():
    assert build_caption("ohwx  man", "portrait") == "ohwx man, portrait"
    assert build_caption("ohwx man", "full body", "  photo, outdoors ,") == "ohwx man, full body, photo, outdoors"
    with pytest.raises(ValueError, match="empty"):
        build_caption("  ", "portrait")
    with pytest.raises(ValueError, match="comma"):
        build_caption("ohwx, man", "portrait")


def test_options_are_validated():
    with pytest.raises(ValueError, match="max_side 1800 cannot hold"):
        PrepareOptions(max_side=1800)
    PrepareOptions(max_side=1800, max_aspect=1.75, min_aspect=0.6)         # a narrower range fits
    with pytest.raises(ValueError, match="image_format"):
        PrepareOptions(image_format="gif")
    with pytest.raises(ValueError, match="shot_ratios"):
        PrepareOptions(shot_ratios=(0.2, 0.3, 0.1))
    with pytest.raises(ValueError, match="similarity_threshold"):
        PrepareOptions(similarity_threshold=1.5)
    assert PrepareOptions(**PrepareOptions(min_face_px=80).to_dict()).min_face_px == 80


def test_default_similarity_thresholds():
    assert default_similarity_threshold(SimpleNamespace(family="dlib", name="dlib:hog")) == 0.92
    assert default_similarity_threshold(SimpleNamespace(family="insightface", name="x")) == 0.40
    with pytest.raises(ValueError, match="similarity_threshold"):
        default_similarity_threshold(SimpleNamespace(family="other", name="other"))


def test_config_round_trip(tmp_path):
    dataset = tmp_path / "out" / "dataset"
    dataset.mkdir(parents=True)
    training = TrainingConfig(steps=3000, lr=5e-5, rank=16, alpha=16, name="me")
    path = write_config(tmp_path / "out" / "ai-toolkit.yaml", build_config(dataset, "sks woman", training))
    text = path.read_text()
    assert text.startswith("# ostris/ai-toolkit config")
    config = yaml.safe_load(text)
    process = config["config"]["process"][0]
    assert config["config"]["name"] == "me"
    assert process["network"] == {"type": "lora", "linear": 16, "linear_alpha": 16}
    assert (process["train"]["steps"], process["train"]["lr"]) == (3000, 5e-5)
    assert process["datasets"][0]["folder_path"] == str(dataset.resolve())
    assert process["training_folder"] == str((tmp_path / "out" / "training").resolve())
    assert all(p.startswith("sks woman, ") for p in process["sample"]["prompts"])
    assert build_config(dataset, "ohwx man")["config"]["name"] == "ohwx_man_flux_lora"


def test_output_folder_replaces_only_its_own_files(tmp_path):
    out = tmp_path / "out"
    dataset = prepare_output_dir(out)
    assert dataset == out / "dataset" and dataset.is_dir()
    for name in ("a.jpg", "a.txt"):
        (dataset / name).write_text("x")
    (out / "report.json").write_text(json.dumps({"items": [{"output": "dataset/a.jpg",
                                                            "caption_file": "dataset/a.txt"}]}))
    assert prepare_output_dir(out) == dataset and list(dataset.iterdir()) == []
    Image.new("RGB", (8, 8)).save(dataset / "mine.png")
    with pytest.raises(PulidError, match="mine.png"):
        prepare_output_dir(out)
    assert (dataset / "mine.png").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "dataset").write_text("x")
    with pytest.raises(PulidError, match="not a folder"):
        prepare_output_dir(tmp_path / "other")


def test_output_stems_are_unique_and_safe():
    used = set()
    # Case-insensitive (Windows, macOS), no characters a file system may refuse, never a hidden file.
    assert [output_stem(n, used) for n in ("a.jpg", "A.png", "a.webp", "we ird:*?.jpg", ".hidden.jpg", "..jpg")] == [
        "a", "A_2", "a_3", "we ird_", "hidden", "image"]
