"""Tiny model builders: key layouts and shapes of the users' formats, determinism, caching, PuLID load.

No ComfyUI here; tests/integration/test_tiny_models_comfy.py loads the same files with ComfyUI.
"""

import json
import os
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from pulid_flux import PulidFlux
from pulid_flux.tiny import FILES, build_tiny_models
from pulid_flux.tiny.clip_l import CLIP_L, ClipLConfig, clip_l_state_dict
from pulid_flux.tiny.controlnet import UNION_PRO, UNION_PRO2, controlnet_state_dict
from pulid_flux.tiny.files import FINGERPRINT_KEY, is_current
from pulid_flux.tiny.flux import TINY_FLUX, TinyFluxConfig, flux_state_dict, write_flux
from pulid_flux.tiny.lora import lora_state_dict, lora_targets
from pulid_flux.tiny.pulid import TinyPulidConfig, pulid_state_dict, write_pulid
from pulid_flux.tiny.random_weights import SeededTensors
from pulid_flux.tiny.vae import vae_state_dict

SMALL_FLUX = TinyFluxConfig(depth=2, depth_single_blocks=3)


def shapes(sd):
    return {k: tuple(v.shape) for k, v in sd.items()}


def block_pattern(key):
    return re.sub(r"^(double_blocks|single_blocks)\.\d+\.", r"\1.N.", key)


# -- Flux ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flux_sd():
    return flux_state_dict()


def test_flux_has_the_golden_bfl_layout_at_real_depth(flux_sd, golden_dir):
    with safe_open(str(golden_dir / "flux.safetensors"), "pt") as f:
        golden = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    # Same hidden/context/vec widths as the golden file, so every per-block shape must agree.
    assert {block_pattern(k): s for k, s in golden.items()} == {block_pattern(k): s for k, s in shapes(flux_sd).items()}
    doubles = {int(k.split(".")[1]) for k in flux_sd if k.startswith("double_blocks.")}
    singles = {int(k.split(".")[1]) for k in flux_sd if k.startswith("single_blocks.")}
    assert doubles == set(range(19)) and singles == set(range(38))
    assert flux_sd["img_in.weight"].shape == (128, 64)
    assert flux_sd["txt_in.weight"].shape == (128, 768)
    assert flux_sd["vector_in.in_layer.weight"].shape == (128, 768)
    assert "guidance_in.in_layer.weight" in flux_sd
    assert all(v.dtype == torch.bfloat16 for v in flux_sd.values())


def test_flux_weights_are_finite_and_at_init_scale(flux_sd):
    qkv = flux_sd["double_blocks.7.img_attn.qkv.weight"].float()
    assert torch.isfinite(qkv).all()
    assert qkv.std().item() == pytest.approx(128 ** -0.5, rel=0.05)
    scale = flux_sd["single_blocks.3.norm.key_norm.scale"].float()
    assert scale.mean().item() == pytest.approx(1.0, abs=0.01)


def test_flux_rejects_a_hidden_size_comfyui_cannot_split_into_heads():
    with pytest.raises(ValueError, match="multiple of 128"):
        TinyFluxConfig(hidden_size=192)


def test_generation_is_deterministic_and_seeded():
    a, b = flux_state_dict(SMALL_FLUX, seed=3), flux_state_dict(SMALL_FLUX, seed=3)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    c = flux_state_dict(SMALL_FLUX, seed=4)
    assert not torch.equal(a["img_in.weight"], c["img_in.weight"])


def test_a_tensor_depends_on_seed_and_name_only_not_on_creation_order():
    first, second = SeededTensors(7), SeededTensors(7)
    first.linear("a", 4, 8)
    first.linear("b", 4, 8)
    second.linear("b", 4, 8)
    second.linear("a", 4, 8)
    assert all(torch.equal(first.tensors[k], second.tensors[k]) for k in first.tensors)
    assert not torch.equal(first.tensors["a.weight"], first.tensors["b.weight"])


def test_bf16_rounding_matches_torch():
    fp32 = flux_state_dict(SMALL_FLUX, seed=1, dtype=torch.float32)
    bf16 = flux_state_dict(SMALL_FLUX, seed=1, dtype=torch.bfloat16)
    assert all(torch.equal(fp32[k].to(torch.bfloat16), bf16[k]) for k in fp32)


# -- file cache ------------------------------------------------------------------------------------

def test_files_are_reused_only_when_complete_and_from_the_same_recipe(tmp_path):
    path = tmp_path / "diffusion_models" / "flux1-dev.safetensors"
    write_flux(path, SMALL_FLUX, seed=0)
    with safe_open(str(path), "pt") as f:
        assert FINGERPRINT_KEY in f.metadata()
    stamp = os.stat(path).st_mtime_ns
    write_flux(path, SMALL_FLUX, seed=0)
    assert os.stat(path).st_mtime_ns == stamp                    # reused

    write_flux(path, SMALL_FLUX, seed=1)                          # other seed -> rebuilt
    assert not torch.equal(load_file(str(path))["img_in.weight"], flux_state_dict(SMALL_FLUX, 0)["img_in.weight"])

    data = path.read_bytes()
    with safe_open(str(path), "pt") as f:
        fp = f.metadata()[FINGERPRINT_KEY]
    assert is_current(path, fp)
    path.write_bytes(data[:-10])                                  # truncated (interrupted download/write)
    assert not is_current(path, fp)
    write_flux(path, SMALL_FLUX, seed=1)
    assert path.read_bytes() == data
    assert not list(path.parent.glob(".*.tmp"))                   # no temporary files left behind


# -- CLIP-L ----------------------------------------------------------------------------------------

def test_clip_l_defaults_are_comfyuis_fixed_clip_l():
    # comfy/sd1_clip_config.json: hidden 768, intermediate 3072, 12 layers, vocab 49408, 77 positions.
    assert (CLIP_L.hidden_size, CLIP_L.intermediate_size, CLIP_L.num_layers, CLIP_L.vocab_size,
            CLIP_L.max_positions) == (768, 3072, 12, 49408, 77)


def test_clip_l_uses_the_hf_text_model_layout():
    small = ClipLConfig(hidden_size=32, intermediate_size=64, num_layers=2, vocab_size=50, max_positions=77)
    sd = clip_l_state_dict(config=small)
    per_layer = {k.split(".", 4)[4] for k in sd if k.startswith("text_model.encoder.layers.0.")}
    assert per_layer == {f"{m}.{p}" for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                               "self_attn.out_proj", "layer_norm1", "layer_norm2",
                                               "mlp.fc1", "mlp.fc2") for p in ("weight", "bias")}
    assert len(sd) == 2 * 16 + 5
    assert sd["text_model.embeddings.token_embedding.weight"].shape == (50, 32)
    assert sd["text_model.embeddings.position_embedding.weight"].shape == (77, 32)
    assert sd["text_model.encoder.layers.1.mlp.fc1.weight"].shape == (64, 32)
    assert sd["text_projection.weight"].shape == (32, 32)
    assert "text_model.final_layer_norm.weight" in sd
    assert all(v.dtype == torch.float16 for v in sd.values())


# -- VAE -------------------------------------------------------------------------------------------

def test_vae_has_the_taesd_layout_with_16_latent_channels():
    sd = vae_state_dict()
    assert sd["taesd_encoder.0.weight"].shape == (64, 3, 3, 3)
    assert sd["taesd_encoder.14.weight"].shape == (16, 64, 3, 3)       # 16 latent channels out
    assert sd["taesd_decoder.1.weight"].shape == (64, 16, 3, 3)        # ComfyUI reads latent_channels here
    assert sd["taesd_decoder.19.weight"].shape == (3, 64, 3, 3)
    # Three stride-2 convs (8x down), three convs after the 2x upsamples; none has a bias.
    for prefix, indices in (("taesd_encoder", (2, 6, 10)), ("taesd_decoder", (7, 12, 17))):
        for i in indices:
            assert sd[f"{prefix}.{i}.weight"].shape == (64, 64, 3, 3) and f"{prefix}.{i}.bias" not in sd
    assert {k.split(".")[1] for k in sd if k.startswith("taesd_encoder.")} == {str(i) for i in range(15)}
    assert {k.split(".")[1] for k in sd if k.startswith("taesd_decoder.")} == {
        "1", "3", "4", "5", "7", "8", "9", "10", "12", "13", "14", "15", "17", "18", "19"}
    assert len([k for k in sd if k.startswith("taesd_decoder.18.conv.")]) == 6   # a block: 3 convs
    assert float(sd["vae_scale"]) == 1.0 and float(sd["vae_shift"]) == 0.0
    assert sum(v.numel() for v in sd.values()) < 2_500_000              # 1.2 M each way


# -- LoRA ------------------------------------------------------------------------------------------

def test_lora_has_ai_toolkit_keys_that_fit_the_tiny_flux(flux_sd):
    lora = lora_state_dict()
    key_re = re.compile(r"^transformer\.(transformer_blocks|single_transformer_blocks)\.\d+\.[\w.]+\.lora_[AB]\.weight$")
    assert all(key_re.match(k) for k in lora)
    assert len(lora) == 2 * (19 * 14 + 38 * 6)
    assert not any(k.endswith(".alpha") for k in lora)

    h = 128
    # Where each diffusers module lands in the BFL file (rows of the fused weight).
    def bfl_rows(module):
        block = re.match(r"(transformer_blocks|single_transformer_blocks)\.(\d+)\.(.+)$", module)
        kind, i, name = block.group(1), block.group(2), block.group(3)
        if kind == "transformer_blocks":
            fused = {"attn.to_q": ("img_attn.qkv", 0), "attn.to_k": ("img_attn.qkv", h), "attn.to_v": ("img_attn.qkv", 2 * h),
                     "attn.add_q_proj": ("txt_attn.qkv", 0), "attn.add_k_proj": ("txt_attn.qkv", h),
                     "attn.add_v_proj": ("txt_attn.qkv", 2 * h)}
            plain = {"attn.to_out.0": "img_attn.proj", "attn.to_add_out": "txt_attn.proj", "norm1.linear": "img_mod.lin",
                     "norm1_context.linear": "txt_mod.lin", "ff.net.0.proj": "img_mlp.0", "ff.net.2": "img_mlp.2",
                     "ff_context.net.0.proj": "txt_mlp.0", "ff_context.net.2": "txt_mlp.2"}
            prefix = f"double_blocks.{i}."
        else:
            fused = {"attn.to_q": ("linear1", 0), "attn.to_k": ("linear1", h), "attn.to_v": ("linear1", 2 * h),
                     "proj_mlp": ("linear1", 3 * h)}
            plain = {"proj_out": "linear2", "norm.linear": "modulation.lin"}
            prefix = f"single_blocks.{i}."
        if name in fused:
            target, start = fused[name]
            return flux_sd[prefix + target + ".weight"], start
        return flux_sd[prefix + plain[name] + ".weight"], 0

    for module in lora_targets():
        a = lora[f"transformer.{module}.lora_A.weight"]
        b = lora[f"transformer.{module}.lora_B.weight"]
        weight, start = bfl_rows(module)
        assert a.shape == (4, weight.shape[1]) and b.shape[1] == 4, module
        assert start + b.shape[0] <= weight.shape[0], module
        assert b.float().abs().max() > 0, module                          # a B of zero would be a no-op


# -- ControlNets -----------------------------------------------------------------------------------

@pytest.mark.parametrize("config,doubles,singles,modes", [(UNION_PRO, 5, 10, 10), (UNION_PRO2, 6, 0, 0)])
def test_union_controlnets_have_the_instantx_layout(config, doubles, singles, modes):
    sd = controlnet_state_dict(config)
    assert {int(k.split(".")[1]) for k in sd if k.startswith("transformer_blocks.")} == set(range(doubles))
    assert {int(k.split(".")[1]) for k in sd if k.startswith("single_transformer_blocks.")} == set(range(singles))
    assert {int(k.split(".")[1]) for k in sd if k.startswith("controlnet_blocks.")} == set(range(doubles))
    assert {int(k.split(".")[1]) for k in sd if k.startswith("controlnet_single_blocks.")} == set(range(singles))
    assert sd["controlnet_x_embedder.weight"].shape == (128, 64)          # 16 latent channels x 2 x 2
    assert sd["x_embedder.weight"].shape == (128, 64)
    assert sd["context_embedder.weight"].shape == (128, 768)
    assert sd["transformer_blocks.0.attn.norm_added_k.weight"].shape == (128,)
    if modes:
        assert sd["controlnet_mode_embedder.weight"].shape == (modes, 128)
    else:
        assert "controlnet_mode_embedder.weight" not in sd
    # None of the markers ComfyUI uses to route to the XLabs, SD3 or Qwen loaders.
    for marker in ("double_blocks.0.img_attn.norm.key_norm.scale", "pos_embed_input.proj.weight",
                   "transformer_blocks.0.img_mlp.net.0.proj.weight"):
        assert marker not in sd
    assert not any(k.startswith(("norm_out", "proj_out")) for k in sd)


# -- PuLID -----------------------------------------------------------------------------------------

def test_pulid_file_loads_and_fits_the_tiny_flux_and_golden_eva(tmp_path, golden_dir):
    path = write_pulid(tmp_path / "pulid" / "pulid_flux_v0.9.1.safetensors")
    model = PulidFlux.from_file(path)
    eva = json.loads((golden_dir / "manifest_eva.json").read_text())
    assert model.num_ca == 20
    assert model.ca_dim == TINY_FLUX.hidden_size
    assert model.vit_dim == eva["vision_cfg"]["width"] == 128
    assert model.id_cond_dim == 1280
    assert model.ca[0].to_kv.in_features == model.token_dim
    generator = torch.Generator().manual_seed(0)
    tokens = model.encode(torch.randn(2, 1280, generator=generator),
                          [torch.randn(2, 577, 128, generator=generator) for _ in range(5)])
    assert tokens.shape == (2, 32, model.token_dim) and torch.isfinite(tokens).all()
    uncond = model.encode_uncond(2)
    assert not torch.allclose(tokens, uncond)
    out = model.ca[19](tokens, torch.randn(2, 16, 128, generator=generator))
    assert out.shape == (2, 16, 128) and torch.isfinite(out).all() and out.abs().max() > 0


def test_pulid_keys_are_the_official_ones():
    sd = pulid_state_dict()
    assert all(k.startswith(("pulid_encoder.", "pulid_ca.")) for k in sd)
    assert {int(k.split(".")[1]) for k in sd if k.startswith("pulid_ca.")} == set(range(20))
    assert sd["pulid_encoder.id_embedding_mapping.0.weight"].shape[1] == 1280
    assert sd["pulid_encoder.mapping_4.0.weight"].shape[1] == 128
    with pytest.raises(ValueError, match="multiple"):
        TinyPulidConfig(depth=7)


# -- build_tiny_models -----------------------------------------------------------------------------

def test_build_writes_the_standard_tree_and_reuses_it(tmp_path, golden_dir):
    include = ["lora", "controlnet_union_pro", "controlnet_union_pro2", "pulid", "eva"]
    eva = golden_dir / "eva.safetensors"
    manifest = build_tiny_models(tmp_path, include=include, eva_source=eva)
    assert list(manifest) == include
    for name, path in manifest.items():
        assert path == tmp_path / FILES[name] and path.is_file()
    assert manifest["eva"].read_bytes() == eva.read_bytes()
    assert manifest["lora"].relative_to(tmp_path).as_posix() == "loras/identity_lora.safetensors"
    assert manifest["pulid"].relative_to(tmp_path).as_posix() == "pulid/pulid_flux_v0.9.1.safetensors"

    # The two ControlNets are seeded differently: their shared keys hold different values.
    pro, pro2 = load_file(str(manifest["controlnet_union_pro"])), load_file(str(manifest["controlnet_union_pro2"]))
    assert not torch.equal(pro["x_embedder.weight"], pro2["x_embedder.weight"])

    stamps = {n: os.stat(p).st_mtime_ns for n, p in manifest.items()}
    again = build_tiny_models(tmp_path, include=include, eva_source=eva)
    assert {n: os.stat(p).st_mtime_ns for n, p in again.items()} == stamps


def test_build_rejects_unknown_names_and_missing_eva_source(tmp_path):
    with pytest.raises(ValueError, match="unknown tiny model"):
        build_tiny_models(tmp_path, include=["flux", "t5xxl"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_tiny_models(tmp_path, include=["eva"], eva_source=tmp_path / "missing.safetensors")
    assert not any(tmp_path.rglob("*.safetensors"))


def test_generated_eva_and_face_models_load(tmp_path):
    from pulid_flux.engine.eva import EvaVisionTower
    from pulid_flux.face import load_bisenet, load_engine
    from pulid_flux.engine.model import PulidFlux

    files = build_tiny_models(tmp_path, include=["eva", "bisenet", "insightface", "pulid"])
    tower = EvaVisionTower.from_file(files["eva"])
    pulid = PulidFlux.from_file(files["pulid"])
    # The tiny IDFormer reads hidden states as wide as the generated tower writes them.
    assert tower.config.width == pulid.vit_dim and tower.config.depth == 24
    assert load_bisenet(files["bisenet"]) is not None
    assert load_engine("insightface", pack_dir=files["insightface"]).embedding_size == 512
