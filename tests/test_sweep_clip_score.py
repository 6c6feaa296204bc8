"""CLIP score and memorization equal open_clip's own computation on a tiny model, with no network access."""

import socket

import numpy as np
import pytest

from pulid_flux.sweep.clip_score import (
    ClipModelError,
    load_clip_scorer,
    memorization,
    parse_clip_model,
)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to resolve or connect fails the test (and is recorded)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield attempts
    assert not attempts


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from pulid_flux.tiny.open_clip_tiny import write_tiny_open_clip

    folder = tmp_path_factory.mktemp("clip_score")
    arch, weights = write_tiny_open_clip(folder)
    return folder, arch, weights


def images(n, size=48, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size + 8 * i, 3), dtype=np.uint8) for i in range(n)]


TEXTS = ["photo of ohwx man in a park", "a red fox in the snow", "close-up portrait, studio light"]


def test_clip_score_equals_open_clips_own_computation(tiny_clip, no_network):
    import open_clip
    import torch
    from PIL import Image

    folder, arch, weights = tiny_clip
    scorer = load_clip_scorer(parse_clip_model(f"{arch}:{weights.name}", [folder]))
    pictures = images(3)
    ours = scorer.clip_scores(pictures, TEXTS)

    # open_clip's documented recipe, one pair at a time, through the model's forward pass.
    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(weights))
    model.eval()
    tokenizer = open_clip.get_tokenizer(arch)
    expected = []
    with torch.no_grad():
        for picture, text in zip(pictures, TEXTS):
            image_features, text_features, _ = model(preprocess(Image.fromarray(picture)).unsqueeze(0),
                                                     tokenizer([text]))
            expected.append(float((image_features @ text_features.T).item()))
    assert ours == pytest.approx(expected, abs=2e-6)
    # Not a constant: the pairs differ, and swapping the texts changes the scores.
    assert len({round(v, 4) for v in ours}) == 3
    assert scorer.clip_scores(pictures, TEXTS[::-1]) != ours


def test_memorization_is_the_best_image_image_cosine(tiny_clip, no_network):
    _, arch, weights = tiny_clip
    scorer = load_clip_scorer(parse_clip_model(f"{arch}:{weights}", []))
    dataset = images(4, seed=1)
    generated = [dataset[2], images(1, seed=7)[0]]
    scores = memorization(scorer.image_features(generated), scorer.image_features(dataset))
    assert scores[0] == pytest.approx(1.0, abs=1e-5)           # a copy of a training image
    features = scorer.image_features(generated[1:] + dataset)
    assert scores[1] == pytest.approx(max(float(features[0] @ f) for f in features[1:]), abs=1e-6)
    assert scores[1] < 1.0 - 1e-4


def test_a_missing_file_is_one_error_naming_file_and_folder(tmp_path, no_network):
    with pytest.raises(ClipModelError) as error:
        parse_clip_model("ViT-L-14-quickgelu:ViT-L-14-openai.safetensors", [tmp_path / "models" / "clip_score"])
    message = str(error.value)
    assert "'ViT-L-14-openai.safetensors' not found" in message
    assert str(tmp_path / "models" / "clip_score") in message and "nothing is downloaded" in message


@pytest.mark.parametrize("text", ["ViT-L-14", ":file.safetensors", "ViT-L-14:"])
def test_the_spec_must_be_arch_colon_file(text):
    with pytest.raises(ClipModelError, match="expected ARCH:FILE"):
        parse_clip_model(text)


def test_unknown_or_downloading_architectures_are_refused(tiny_clip, no_network):
    _, _, weights = tiny_clip
    with pytest.raises(ClipModelError, match="not an open_clip architecture"):
        load_clip_scorer(parse_clip_model(f"ViT-Q-99:{weights}"))
    with pytest.raises(ClipModelError, match="Hugging Face"):
        load_clip_scorer(parse_clip_model(f"xlm-roberta-base-ViT-B-32:{weights}"))


def test_a_wrong_weights_file_names_the_file(tiny_clip, tmp_path, no_network):
    _, arch, _ = tiny_clip
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(ClipModelError, match="bogus.pt: cannot be loaded as open_clip pulid-tiny-clip"):
        load_clip_scorer(parse_clip_model(f"{arch}:{bogus}"))
