"""Golden parity of IDFormer and CA, dimension inference, and refusal of wrong files."""

import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from pulid_flux import PulidFlux, PulidWeightsError


@pytest.fixture(scope="module")
def golden_io(golden_dir):
    return load_file(str(golden_dir / "io.safetensors"))


@pytest.fixture(scope="module")
def pulid(golden_dir):
    return PulidFlux.from_file(golden_dir / "pulid.safetensors")


def hidden(io):
    return [io[f"id_vit_hidden_{i}"] for i in range(5)]


def test_dimensions_inferred_from_weights(pulid, golden_dir):
    import json
    manifest = json.loads((golden_dir / "manifest.json").read_text())
    idf, ca = manifest["idformer"], manifest["perceiver_attention_ca"]
    c = pulid.encoder.config
    assert (c.dim, c.depth, c.heads, c.num_id_token, c.num_queries, c.output_dim) == (
        idf["dim"], idf["depth"], idf["heads"], idf["num_id_token"], idf["num_queries"], idf["output_dim"])
    assert c.ff_inner == idf["dim"] * idf["ff_mult"]
    assert pulid.num_ca == ca["count"]
    assert pulid.ca[0].heads == ca["heads"] and pulid.ca_dim == ca["dim"]
    assert pulid.ca[0].to_kv.in_features == ca["kv_dim"]


def test_idformer_matches_golden(pulid, golden_io):
    out = pulid.encode(golden_io["id_cond"], hidden(golden_io))
    assert out.shape == golden_io["expect_id_embedding"].shape
    assert (out - golden_io["expect_id_embedding"]).abs().max() <= 1e-5


def test_uncond_matches_golden_and_is_not_zero(pulid, golden_io):
    out = pulid.encode_uncond(1)
    assert (out - golden_io["expect_uncond_id_embedding"]).abs().max() <= 1e-5
    assert out.abs().max() > 0.1


def test_ca_matches_golden(pulid, golden_io):
    with torch.no_grad():
        out = pulid.ca[0](golden_io["expect_id_embedding"], golden_io["ca_probe"])
        cast = pulid.ca[0].forward_cast(golden_io["expect_id_embedding"], golden_io["ca_probe"])
    assert (out - golden_io["expect_ca0"]).abs().max() <= 1e-5
    assert (cast - golden_io["expect_ca0"]).abs().max() <= 1e-5


def test_ca_broadcasts_one_identity_over_a_batch(pulid, golden_io):
    probe = golden_io["ca_probe"].repeat(3, 1, 1)
    with torch.no_grad():
        out = pulid.ca[0](golden_io["expect_id_embedding"], probe)
    assert out.shape == probe.shape
    assert (out[2] - golden_io["expect_ca0"][0]).abs().max() <= 1e-5


def test_half_precision_load(golden_dir, golden_io):
    model = PulidFlux.from_file(golden_dir / "pulid.safetensors", dtype=torch.bfloat16)
    out = model.encode(golden_io["id_cond"], hidden(golden_io))
    assert out.dtype == torch.bfloat16
    assert (out.float() - golden_io["expect_id_embedding"]).abs().max() < 0.1


def test_torch_pickle_loads_like_safetensors(tmp_path, golden_dir, golden_io):
    sd = load_file(str(golden_dir / "pulid.safetensors"))
    torch.save(sd, tmp_path / "pulid.pth")
    model = PulidFlux.from_file(tmp_path / "pulid.pth")
    assert (model.encode_uncond() - golden_io["expect_uncond_id_embedding"]).abs().max() <= 1e-5


def test_head_count_from_metadata(tmp_path, golden_dir):
    sd = load_file(str(golden_dir / "pulid.safetensors"))
    save_file(sd, str(tmp_path / "p.safetensors"), metadata={"pulid.ca.heads": "2", "pulid.encoder.heads": "8"})
    model = PulidFlux.from_file(tmp_path / "p.safetensors")
    assert model.ca[0].heads == 2 and model.encoder.config.heads == 8


# -- files that are not PuLID-Flux weights --------------------------------------------------------

def test_sdxl_pulid_is_refused(tmp_path):
    path = tmp_path / "pulid_v1.1.safetensors"
    save_file({"id_adapter.latents": torch.zeros(1, 32, 64),
               "id_adapter_attn_layers.1.id_to_k.weight": torch.zeros(640, 2048)}, str(path))
    with pytest.raises(PulidWeightsError) as err:
        PulidFlux.from_file(path)
    assert "pulid_v1.1.safetensors" in str(err.value) and "SDXL" in str(err.value)
    assert "id_adapter.latents" in err.value.unexpected


def test_truncated_file_is_refused(tmp_path, golden_dir):
    data = (golden_dir / "pulid.safetensors").read_bytes()
    path = tmp_path / "pulid_flux_v0.9.1.safetensors"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PulidWeightsError, match="pulid_flux_v0.9.1.safetensors.*truncated"):
        PulidFlux.from_file(path)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    with pytest.raises(PulidWeightsError, match="empty.safetensors: the file is empty"):
        PulidFlux.from_file(path)


def test_header_only_file_is_refused(tmp_path):
    path = tmp_path / "none.safetensors"
    header = b"{}"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(PulidWeightsError, match="none.safetensors.*no tensors"):
        PulidFlux.from_file(path)


def test_lora_is_refused(tmp_path):
    path = tmp_path / "my_lora.safetensors"
    save_file({"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 128)}, str(path))
    with pytest.raises(PulidWeightsError, match="my_lora.safetensors.*LoRA"):
        PulidFlux.from_file(path)


def test_missing_adapter_keys_are_named(tmp_path, golden_dir):
    sd = load_file(str(golden_dir / "pulid.safetensors"))
    del sd["pulid_ca.3.to_out.weight"]
    path = tmp_path / "broken.safetensors"
    save_file(sd, str(path))
    with pytest.raises(PulidWeightsError) as err:
        PulidFlux.from_file(path)
    assert "pulid_ca.3.to_out.weight" in err.value.missing
    assert "broken.safetensors" in str(err.value)


def test_unexpected_keys_are_named(tmp_path, golden_dir):
    sd = load_file(str(golden_dir / "pulid.safetensors"))
    sd["pulid_encoder.extra_bias"] = torch.zeros(3)
    path = tmp_path / "extra.safetensors"
    save_file(sd, str(path))
    with pytest.raises(PulidWeightsError) as err:
        PulidFlux.from_file(path)
    assert "pulid_encoder.extra_bias" in err.value.unexpected


def test_pickle_with_code_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"pulid_ca.0.x": Evil()}))
    with pytest.raises(PulidWeightsError, match="evil.pt"):
        PulidFlux.from_file(path)
