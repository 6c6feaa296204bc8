"""The .pulidembd identity file: GGUF layout stable-diffusion.cpp reads, and exact round trips."""

import numpy as np
import pytest
import torch
from gguf import GGUFReader, GGUFWriter

from pulid_flux import IdentityFormatError, PulidIdentity, load_identity, save_identity


def tokens(seed, shape=(1, 32, 2048)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_layout_is_what_sd_cpp_reads(tmp_path):
    path = save_identity(PulidIdentity(tokens(0)), tmp_path / "me.pulidembd")
    reader = GGUFReader(str(path))
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "pulid"
    version = reader.fields["pulid.version"]
    assert int(version.parts[version.data[0]][0]) == 1
    (t,) = [t for t in reader.tensors if t.name == "pulid_id"]
    assert [int(x) for x in t.shape] == [2048, 32]          # ggml order: ne0 = token_dim
    assert t.tensor_type.name == "F16"


def test_round_trip_within_f16(tmp_path):
    ident = PulidIdentity(tokens(1), tokens(2), info={"images": ["a.png"], "fusion": "mean"})
    back = load_identity(save_identity(ident, tmp_path / "x.pulidembd"))
    expected = ident.tokens.to(torch.float16).float()
    assert torch.equal(back.tokens, expected)
    assert torch.equal(back.uncond_tokens, ident.uncond_tokens.to(torch.float16).float())
    assert back.info == {"images": ["a.png"], "fusion": "mean"}


def test_uncond_is_optional(tmp_path):
    back = load_identity(save_identity(PulidIdentity(tokens(3, (8, 48))), tmp_path / "small.pulidembd"))
    assert back.tokens.shape == (1, 8, 48) and back.uncond_tokens is None


def test_reads_a_file_written_like_sd_cpp_does(tmp_path):
    # stable-diffusion.cpp's extractor: GGUFWriter(arch="pulid"), pulid.version, one tensor pulid_id.
    data = np.random.default_rng(0).standard_normal((32, 2048)).astype(np.float16)
    path = tmp_path / "sdcpp.pulidembd"
    w = GGUFWriter(str(path), arch="pulid")
    w.add_uint32("pulid.version", 1)
    w.add_tensor("pulid_id", data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    back = load_identity(path)
    assert torch.equal(back.tokens[0], torch.from_numpy(data.astype(np.float32)))


def test_wrong_architecture_is_refused(tmp_path):
    path = tmp_path / "llama.gguf"
    w = GGUFWriter(str(path), arch="llama")
    w.add_tensor("pulid_id", np.zeros((4, 8), np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(IdentityFormatError, match="llama.gguf.*'llama'.*'pulid'"):
        load_identity(path)


def test_not_gguf_is_refused(tmp_path):
    path = tmp_path / "junk.pulidembd"
    path.write_bytes(b"not a gguf file at all")
    with pytest.raises(IdentityFormatError, match="junk.pulidembd"):
        load_identity(path)


def test_mismatched_uncond_shape_is_refused():
    with pytest.raises(ValueError, match="uncond_tokens"):
        PulidIdentity(tokens(0, (1, 32, 64)), tokens(0, (1, 16, 64)))
