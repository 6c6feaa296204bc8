"""Which models the hooks reach, the per-call wrapper, and the model-family tiny builders; no ComfyUI.

ComfyUI's own models (tiny Chroma, Radiance, Kontext, fp8, GGUF, SD1.5) are exercised in
tests/integration/test_flux_family_comfy.py and test_flux_family_server.py.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from api_client.tiny_profile import adapt_for_tiny
from pulid_flux import PulidFlux
from pulid_flux.errors import PulidError
from pulid_flux.families import inspect_model
from pulid_flux.inject import (
    GRID_KEY,
    REACHED_KEY,
    CallWrapper,
    Injection,
    PulidBlockHook,
)
from pulid_flux.tiny.chroma import (
    TINY_CHROMA,
    TINY_CHROMA_RADIANCE,
    TinyChromaConfig,
    chroma_state_dict,
)
from pulid_flux.tiny.detection import install, size_overrides
from pulid_flux.tiny.flux import TinyFluxConfig, flux_state_dict
from pulid_flux.tiny.fp8 import FP8, fp8_state_dict
from pulid_flux.tiny.pulid import pulid_state_dict
from pulid_flux.tiny.sd15 import sd15_state_dict

SMALL_FLUX = TinyFluxConfig(depth=2, depth_single_blocks=3)


def comfy_class(module: str, name: str, base=nn.Module):
    """A class that looks, by qualified name, like one of ComfyUI's."""
    return type(name, (base,), {"__module__": module})


Flux = comfy_class("comfy.ldm.flux.model", "Flux")
Chroma = comfy_class("comfy.ldm.chroma.model", "Chroma")
ChromaRadiance = comfy_class("comfy.ldm.chroma_radiance.model", "ChromaRadiance", Chroma)
UNetModel = comfy_class("comfy.ldm.modules.diffusionmodules.openaimodel", "UNetModel")


def diffusion_model(cls, double=19, single=38, hidden=3072, patch=2):
    dm = cls()
    dm.double_blocks = nn.ModuleList(nn.Identity() for _ in range(double))
    dm.single_blocks = nn.ModuleList(nn.Identity() for _ in range(single))
    dm.hidden_size, dm.patch_size = hidden, patch
    return dm


class FakePatcher:
    """The parts of a ComfyUI ModelPatcher that inspect_model reads."""

    def __init__(self, dm, config_name="Flux", image_model="flux"):
        config = type(config_name, (), {})()
        config.unet_config = {"image_model": image_model} if image_model else {}
        self.model = SimpleNamespace(model_config=config)
        self.dm = dm

    def get_model_object(self, name):
        assert name == "diffusion_model"
        return self.dm

    def clone(self):
        return self

    def set_model_patch_replace(self, *args):
        pass


# -- families --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,image_model,patch,family", [
    (Flux, "flux", 2, "flux"),
    (Chroma, "chroma", 2, "chroma"),
    (ChromaRadiance, "chroma_radiance", 16, "chroma_radiance"),
    (Flux, None, 2, "flux"),                    # no model_config: the class decides
])
def test_flux_family_models_are_described_from_the_model(cls, image_model, patch, family):
    target = inspect_model(FakePatcher(diffusion_model(cls, patch=patch), image_model=image_model))
    assert (target.family, target.num_double, target.num_single) == (family, 19, 38)
    assert (target.hidden_size, target.patch_size) == (3072, patch)


def test_a_unet_is_refused_naming_what_it_is():
    with pytest.raises(PulidError) as err:
        inspect_model(FakePatcher(UNetModel(), config_name="SD15", image_model=None))
    message = str(err.value)
    assert "SD15 (diffusion model UNetModel)" in message and "no FLUX.1 double/single blocks" in message
    assert "FLUX.1" in message and "Chroma" in message and "GGUF" in message


def test_a_model_merely_shaped_like_flux_is_refused():
    # Double/single block lists are not enough: the class's forward must be one that calls the hooks.
    other = diffusion_model(comfy_class("comfy.ldm.hunyuan_video.model", "HunyuanVideo"), double=20, single=40)
    with pytest.raises(PulidError, match="HunyuanVideo"):
        inspect_model(FakePatcher(other, config_name="HunyuanVideo", image_model="hunyuan_video"))


def test_flux2_is_refused_although_it_is_ComfyUIs_flux_class():
    with pytest.raises(PulidError, match="FLUX.2"):
        inspect_model(FakePatcher(diffusion_model(Flux, 8, 48, 6144, 1), config_name="Flux2", image_model="flux2"))


def test_something_other_than_a_model_patcher_is_refused():
    with pytest.raises(PulidError, match="needs a ComfyUI MODEL .* got a Flux"):
        inspect_model(diffusion_model(Flux))


# -- the per-call wrapper --------------------------------------------------------------------------

class Executor:
    """Stands in for ComfyUI's WrapperExecutor around a diffusion model's ``_forward``."""

    def __init__(self, original, patch_size=2):
        self.original = original
        self.class_obj = SimpleNamespace(patch_size=patch_size)

    def __call__(self, *args, **kwargs):
        return self.original(*args, **kwargs)


def reaching_hooks(seen):
    def hooks(options):
        seen.append(options)
        options[REACHED_KEY].append(0)      # what PulidBlockHook does when Flux calls it
    return hooks


def chroma_forward(hooks):
    def _forward(x, timestep, context, guidance, control=None, transformer_options={}, **kwargs):  # noqa: B006 (ComfyUI's)
        hooks(transformer_options)
        return x
    return _forward


def flux_forward(hooks):
    def _forward(x, timestep, context, y=None, guidance=None, ref_latents=None, control=None,
                 transformer_options={}, **kwargs):  # noqa: B006 (ComfyUI's signature)
        hooks(transformer_options)
        return x
    return _forward


def test_chroma_positional_transformer_options_are_replaced_not_duplicated():
    """Chroma passes transformer_options as its 6th positional argument: adding it as a keyword as
    well raised "got multiple values for argument 'transformer_options'"."""
    seen = []
    x = torch.zeros(1, 16, 8, 6)
    CallWrapper()(Executor(chroma_forward(reaching_hooks(seen))), x, 0.5, None, None, None, {"mine": 1})
    assert seen[0]["mine"] == 1 and seen[0][GRID_KEY] == (4, 3)


@pytest.mark.parametrize("as_keyword", [False, True])
def test_flux_transformer_options_positional_or_keyword(as_keyword):
    seen = []
    x = torch.zeros(2, 16, 9, 8)                                   # odd height: padded to the patch
    forward = Executor(flux_forward(reaching_hooks(seen)))
    if as_keyword:
        CallWrapper()(forward, x, 0.5, None, transformer_options={"mine": 1}, guidance=3.5)
    else:
        CallWrapper()(forward, x, 0.5, None, None, 3.5, None, None, {"mine": 1})
    assert seen[0]["mine"] == 1 and seen[0][GRID_KEY] == (5, 4)


def test_grid_uses_the_models_patch_size():
    seen = []
    pixels = torch.zeros(1, 3, 64, 48)                             # Chroma Radiance: 16-px patches
    CallWrapper()(Executor(chroma_forward(reaching_hooks(seen)), patch_size=16), pixels, 0.5, None, None)
    assert seen[0][GRID_KEY] == (4, 3)


def test_a_forward_that_never_reaches_the_hooks_is_an_error_until_they_have_been_seen():
    wrapper = CallWrapper()
    silent = Executor(chroma_forward(lambda options: None))
    x = torch.zeros(1, 16, 4, 4)
    with pytest.raises(PulidError, match="without calling any PuLID block hook"):
        wrapper(silent, x, 0.5, None, None)
    wrapper(Executor(chroma_forward(reaching_hooks([]))), x, 0.5, None, None)
    wrapper(silent, x, 0.5, None, None)           # after the hooks ran once: a cached step, fine


def test_a_forward_without_transformer_options_passes_through(caplog):
    def odd_forward(*args):
        return "ran"
    assert CallWrapper()(Executor(odd_forward), torch.zeros(1, 16, 4, 4)) == "ran"
    assert "cannot find transformer_options" in caplog.text


# -- the hook's split of text, generated and reference tokens ---------------------------------------

@pytest.fixture(scope="module")
def tiny_pulid():
    return PulidFlux.from_state_dict(pulid_state_dict(dtype=torch.float32))


def test_reference_tokens_are_left_alone_with_only_the_grid_known(tiny_pulid):
    """ComfyUI 0.8: single blocks get no img_slice and no reference_image_num_tokens; the double-block
    hook's text length and the wrapper's grid place the generated tokens."""
    tokens = torch.randn(1, 32, 64, generator=torch.Generator().manual_seed(0))
    injection = Injection(pulid=tiny_pulid, tokens=tokens, uncond_tokens=None, weight=1.0, sigma_start=1.0,
                          sigma_end=0.0)
    n_txt, n_gen, n_ref = 5, 12, 7
    options = {GRID_KEY: (3, 4)}
    txt, img = torch.randn(1, n_txt, 128), torch.randn(1, n_gen + n_ref, 128)
    double = PulidBlockHook([injection], 0, "double_block")
    out = double({"img": img, "txt": txt, "transformer_options": options}, {"original_block": lambda a: dict(a)})
    assert not torch.equal(out["img"][:, :n_gen], img[:, :n_gen])
    assert torch.equal(out["img"][:, n_gen:], img[:, n_gen:])
    stream = torch.randn(1, n_txt + n_gen + n_ref, 128)
    single = PulidBlockHook([injection], 10, "single_block")
    out = single({"img": stream, "transformer_options": options}, {"original_block": lambda a: {"img": a["img"]}})
    changed = (out["img"][0] != stream[0]).any(-1)
    assert changed[n_txt:n_txt + n_gen].all() and not changed[:n_txt].any() and not changed[n_txt + n_gen:].any()


def test_a_grid_larger_than_the_tokens_is_an_error(tiny_pulid):
    injection = Injection(pulid=tiny_pulid, tokens=torch.randn(1, 32, 64), uncond_tokens=None, weight=1.0,
                          sigma_start=1.0, sigma_end=0.0)
    hook = PulidBlockHook([injection], 0, "double_block")
    with pytest.raises(PulidError, match="16 generated image tokens .* do not fit the 12 tokens"):
        hook({"img": torch.randn(1, 12, 128), "txt": torch.randn(1, 3, 128),
              "transformer_options": {GRID_KEY: (4, 4)}}, {"original_block": lambda a: dict(a)})


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


def test_token_grid_matches_comfyuis_padding():
    # ComfyUI pads to the patch size, so a partial patch is a token of its own.
    from pulid_flux.inject import _token_grid
    assert _token_grid(torch.zeros(1, 3, 65, 64), 16) == (math.ceil(65 / 16), 4)
    assert _token_grid(torch.zeros(2, 16, 64), 2) is None
