"""BiSeNet face parser: loading facexlib-layout weights safely, input handling, output labels."""

import numpy as np
import pytest
import torch

from pulid_flux import PulidWeightsError
from pulid_flux.face import BiSeNet, load_bisenet, parse_labels
from pulid_flux.face.parsing import IMAGENET_MEAN, IMAGENET_STD
from pulid_flux.tiny.bisenet import random_bisenet_state_dict, save_random_bisenet

SIZE = 64  # fully convolutional; 512 is the real input but costs seconds on a CPU


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    return save_random_bisenet(tmp_path_factory.mktemp("facexlib") / "parsing_bisenet.pth", seed=3)


@pytest.fixture(scope="module")
def parser(weights_file):
    return load_bisenet(weights_file)


def faces(batch=2, seed=0):
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_loads_through_the_real_loader(parser):
    reference = random_bisenet_state_dict(3)
    state = parser.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference.items())
    assert not parser.training


def test_output_labels(parser):
    labels = parse_labels(parser, faces())
    assert labels.shape == (2, 1, SIZE, SIZE) and labels.dtype == torch.int64
    assert 0 <= int(labels.min()) and int(labels.max()) <= 18
    assert len(torch.unique(labels)) > 1            # random weights still give a non-constant map


def test_normalisation_and_argmax(parser):
    x = faces(1, seed=5)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = parser((x - mean) / std)
    assert torch.equal(parse_labels(parser, x), logits.argmax(1, keepdim=True))


def test_uint8_arrays_are_accepted(parser):
    array = (faces(1, seed=7)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    as_tensor = torch.from_numpy(array).float().div(255).permute(2, 0, 1)[None]
    assert torch.equal(parse_labels(parser, array), parse_labels(parser, as_tensor))
    with pytest.raises(ValueError, match="RGB uint8"):
        parse_labels(parser, array.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        parse_labels(parser, torch.rand(3, SIZE, SIZE))


def test_same_network_as_facexlib(parser):
    bisenet = pytest.importorskip("facexlib.parsing.bisenet")
    reference = bisenet.BiSeNet(num_class=19).eval()
    reference.load_state_dict(parser.state_dict())
    x = faces(1, seed=9)
    with torch.no_grad():
        ours, theirs = parser(x), reference(x)[0]
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_bad_files_are_refused(tmp_path, weights_file):
    with pytest.raises(PulidWeightsError, match="file not found"):
        load_bisenet(tmp_path / "parsing_bisenet.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(weights_file.read_bytes()[:5000])
    with pytest.raises(PulidWeightsError, match="truncated.pth.*parsing_bisenet"):
        load_bisenet(truncated)
    state = random_bisenet_state_dict(0)
    del state["cp.arm16.conv_atten.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "wrong_keys.pth")
    with pytest.raises(PulidWeightsError, match="missing keys: cp.arm16.conv_atten.weight.*unexpected keys: "
                                                 "extra.weight"):
        load_bisenet(tmp_path / "wrong_keys.pth")
    state = random_bisenet_state_dict(0)
    state["conv_out.conv_out.weight"] = torch.zeros(11, 256, 1, 1)       # a parser with other classes
    torch.save(state, tmp_path / "classes.pth")
    with pytest.raises(PulidWeightsError, match=r"conv_out.conv_out.weight \(11, 256, 1, 1\)"):
        load_bisenet(tmp_path / "classes.pth")
    # A pickle that needs code to load is refused, not executed.
    torch.save({"model": BiSeNet()}, tmp_path / "pickled_module.pth")
    with pytest.raises(PulidWeightsError, match="tensor-only"):
        load_bisenet(tmp_path / "pickled_module.pth")


def test_checkpoints_without_batchnorm_counters_load(tmp_path):
    state = {k: v for k, v in random_bisenet_state_dict(1).items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    assert isinstance(load_bisenet(tmp_path / "old.pth"), BiSeNet)
