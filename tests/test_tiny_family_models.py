"""The model-family tiny builders (Chroma, Chroma Radiance, fp8, GGUF, SD1.5), the detection sizes
they need, and the tiny profile for Chroma's text encoder; no ComfyUI (loaded with ComfyUI in
tests/integration/test_flux_family_comfy.py)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from api_client.tiny_profile import adapt_for_tiny
from pulid_flux.tiny.chroma import (
    TINY_CHROMA,
    TINY_CHROMA_RADIANCE,
    TinyChromaConfig,
    chroma_state_dict,
)
from pulid_flux.tiny.detection import install, size_overrides
from pulid_flux.tiny.flux import TinyFluxConfig, flux_state_dict
from pulid_flux.tiny.fp8 import FP8, fp8_state_dict
from pulid_flux.tiny.sd15 import sd15_state_dict

SMALL_FLUX = TinyFluxConfig(depth=2, depth_single_blocks=3)


# -- tiny builders ---------------------------------------------------------------------------------

def test_tiny_chroma_has_chromas_keys_and_no_flux_modulation():
    sd = chroma_state_dict(TINY_CHROMA)
    assert not [k for k in sd if k.startswith(("time_in", "vector_in", "guidance_in")) or "_mod." in k
                or ".modulation." in k or "adaLN" in k]
    assert sd["distilled_guidance_layer.in_proj.weight"].shape == (64, 64)
    assert sd["distilled_guidance_layer.out_proj.weight"].shape == (128, 64)
    assert sd["img_in.weight"].shape == (128, 64) and sd["final_layer.linear.weight"].shape == (64, 128)
    assert len({k.split(".")[1] for k in sd if k.startswith("double_blocks.")}) == 19
    assert len({k.split(".")[1] for k in sd if k.startswith("single_blocks.")}) == 38


def test_tiny_radiance_reads_16_pixel_patches():
    sd = chroma_state_dict(TINY_CHROMA_RADIANCE)
    assert sd["img_in_patch.weight"].shape == (128, 3, 16, 16)
    assert "img_in.weight" not in sd and "final_layer.linear.weight" not in sd
    assert sd["nerf_final_layer_conv.conv.weight"].shape == (3, 16, 3, 3)


def test_chroma_config_refuses_other_depths():
    with pytest.raises(ValueError, match="344"):
        TinyChromaConfig(depth=2)


def test_detection_sizes_come_from_the_tiny_files_and_real_files_change_nothing():
    chroma = chroma_state_dict(TINY_CHROMA)
    detected = {"image_model": "chroma", "hidden_size": 128, "num_heads": 24, "axes_dim": [16, 56, 56],
                "hidden_dim": 5120, "out_dim": 3072, "n_layers": 5}
    assert size_overrides(detected, chroma) == {"num_heads": 1, "hidden_dim": 64, "out_dim": 128}
    radiance = chroma_state_dict(TINY_CHROMA_RADIANCE)
    detected = {**detected, "image_model": "chroma_radiance", "in_channels": 3, "patch_size": 16,
                "nerf_hidden_size": 64, "nerf_max_freqs": 8, "nerf_depth": 4, "nerf_mlp_ratio": 4}
    assert size_overrides(detected, radiance) == {"num_heads": 1, "hidden_dim": 64, "out_dim": 128,
                                                  "nerf_hidden_size": 16, "nerf_max_freqs": 4, "nerf_depth": 2,
                                                  "nerf_mlp_ratio": 2}
    # Full-size shapes: what ComfyUI assumes is right, nothing changes.
    full = {"distilled_guidance_layer.in_proj.weight": torch.empty(5120, 64, device="meta"),
            "distilled_guidance_layer.out_proj.weight": torch.empty(3072, 5120, device="meta"),
            **{f"distilled_guidance_layer.layers.{i}.in_layer.weight": torch.empty(1, device="meta") for i in range(5)}}
    real = {"image_model": "chroma", "hidden_size": 3072, "num_heads": 24, "axes_dim": [16, 56, 56],
            "hidden_dim": 5120, "out_dim": 3072, "n_layers": 5}
    assert size_overrides(real, full) == {}
    assert size_overrides({"image_model": "sd15"}, chroma) == {}


def test_detection_install_wraps_once():
    module = SimpleNamespace(detect_unet_config=lambda sd, prefix, metadata=None: {
        "image_model": "flux", "hidden_size": 128, "num_heads": 24, "axes_dim": [16, 56, 56]})
    install(module)
    first = module.detect_unet_config
    install(module)
    assert module.detect_unet_config is first
    assert module.detect_unet_config({}, "")["num_heads"] == 1


@pytest.mark.parametrize("layout", ["fp8_e4m3fn", "scaled_fp8"])
def test_fp8_files_hold_the_bf16_tensors_in_fp8(layout):
    bf16 = flux_state_dict(SMALL_FLUX)
    fp8 = fp8_state_dict(layout, SMALL_FLUX)
    matrices = [k for k, v in bf16.items() if v.ndim == 2]
    assert matrices and all(fp8[k].dtype == FP8 for k in matrices)
    assert all(torch.equal(fp8[k], v) for k, v in bf16.items() if v.ndim != 2)
    for k in matrices:
        scale = fp8[k[:-len(".weight")] + ".scale_weight"] if layout == "scaled_fp8" else torch.tensor(1.0)
        restored = fp8[k].float() * scale
        # e4m3 keeps 3 mantissa bits: at most 1/16 relative rounding error for its normal values (>= 2^-6)
        big = (bf16[k].float() / scale).abs() >= 2 ** -6
        assert big.float().mean() > 0.5
        assert (restored - bf16[k].float())[big].abs().le(bf16[k].float()[big].abs() / 16 + 1e-6).all()
    assert ("scaled_fp8" in fp8) == (layout == "scaled_fp8")


def test_gguf_file_is_quantized_like_comfyui_ggufs_flux_files(tmp_path):
    gguf = pytest.importorskip("gguf", reason="the gguf package writes GGUF files (a dependency of the pack)")
    from pulid_flux.tiny.gguf_flux import write_flux_gguf
    bf16 = flux_state_dict(SMALL_FLUX)
    for qtype, tolerance in (("Q8_0", 0.01), ("Q4_0", 0.2)):
        path = write_flux_gguf(tmp_path / f"flux-{qtype}.gguf", qtype, SMALL_FLUX)
        reader = gguf.GGUFReader(path)
        arch = reader.get_field("general.architecture")
        assert bytes(arch.parts[arch.data[-1]]).decode() == "flux"
        kinds = {t.name: t.tensor_type.name for t in reader.tensors}
        assert set(kinds) == set(bf16)
        for t in reader.tensors:
            value = bf16[t.name].float()
            expected = qtype if value.ndim == 2 and value.numel() > 1024 else "F32"
            assert kinds[t.name] == expected
            restored = torch.from_numpy(np.array(gguf.quants.dequantize(t.data, t.tensor_type))).reshape(value.shape)
            assert (restored - value).abs().max() <= tolerance * value.abs().max()
        mtime = path.stat().st_mtime_ns
        assert write_flux_gguf(path, qtype, SMALL_FLUX).stat().st_mtime_ns == mtime       # reused
    with pytest.raises(ValueError, match="Q5_K"):
        write_flux_gguf(tmp_path / "x.gguf", "Q5_K")


def test_sd15_unet_is_sd15_sized():
    sd = sd15_state_dict()
    assert sd["model.diffusion_model.input_blocks.0.0.weight"].shape == (320, 4, 3, 3)
    assert sd["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"].shape == (320, 768)
    assert not [k for k in sd if "double_blocks" in k]
    assert 10e6 < sum(v.numel() for v in sd.values()) < 20e6


def test_tiny_profile_swaps_chromas_t5_for_clip_l():
    prompt = {"2": {"class_type": "CLIPLoader", "inputs": {"clip_name": "t5xxl_fp16.safetensors", "type": "chroma",
                                                          "device": "default"}},
              "3": {"class_type": "CLIPLoader", "inputs": {"clip_name": "clip_l.safetensors", "type": "sd3"}}}
    tiny = adapt_for_tiny(prompt)
    assert tiny["2"]["inputs"] == {"clip_name": "clip_l.safetensors", "type": "stable_diffusion", "device": "default"}
    assert tiny["3"] == prompt["3"]
