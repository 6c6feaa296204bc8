"""The tiny models load with ComfyUI's own loaders, are detected as what they imitate, and run.

In-process (the ``comfy`` fixture), CPU. Every file comes from ``build_tiny_models`` through the
``tiny_models`` fixture, i.e. exactly what the server tests and the CLI ``--tiny`` mode use.
"""

import logging

import pytest
import torch
from safetensors.torch import load_file

from pulid_flux.tiny import FILES

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("single_torch_thread")]

LATENT = (1, 16, 8, 8)          # a 64x64 image
HINT = (1, 64, 64, 3)


@pytest.fixture(scope="module")
def paths(tiny_models):
    return {name: tiny_models / rel for name, rel in FILES.items()}


@pytest.fixture(scope="module")
def flux(comfy, paths):
    import comfy.sd
    return comfy.sd.load_diffusion_model(str(paths["flux"]))


@pytest.fixture(scope="module")
def clip(comfy, paths):
    """What CLIPLoader(type="stable_diffusion") returns (the node has no "flux" type)."""
    import comfy.sd
    return comfy.sd.load_clip([str(paths["clip_l"])], clip_type=comfy.sd.CLIPType.STABLE_DIFFUSION)


@pytest.fixture(scope="module")
def vae(comfy, paths):
    import comfy.sd
    import comfy.utils
    sd, metadata = comfy.utils.load_torch_file(str(paths["vae"]), return_metadata=True)
    return comfy.sd.VAE(sd=sd, metadata=metadata)


def encode(clip, text):
    """CLIPTextEncode + FluxGuidance(3.5)."""
    return [[c, {**d, "guidance": 3.5}] for c, d in clip.encode_from_tokens_scheduled(clip.tokenize(text))]


def forward(model_patcher, seed=0):
    import comfy.model_management
    comfy.model_management.load_models_gpu([model_patcher])
    g = torch.Generator().manual_seed(seed)
    x, ctx, y = torch.randn(LATENT, generator=g), torch.randn(1, 77, 768, generator=g), torch.randn(1, 768, generator=g)
    with torch.no_grad():
        return model_patcher.model.apply_model(x, torch.tensor([0.7]), c_crossattn=ctx, y=y,
                                               guidance=torch.tensor([3.5]))


def sample(model_patcher, positive, negative, steps=2):
    import comfy.sample
    latent = torch.zeros(LATENT)
    noise = comfy.sample.prepare_noise(latent, 7)
    return comfy.sample.sample(model_patcher, noise, steps, 1.0, "euler", "simple", positive, negative, latent,
                               denoise=1.0, seed=7, disable_pbar=True)


def with_control(conditioning, control_net, hint, vae, strength=0.8):
    """What ControlNetApplyAdvanced does to one conditioning list."""
    c_net = control_net.copy().set_cond_hint(hint.movedim(-1, 1), strength, (0.0, 1.0), vae=vae)
    return [[c, {**d, "control": c_net, "control_apply_to_uncond": False}] for c, d in conditioning]


def messages(caplog, needle):
    return [r.getMessage() for r in caplog.records if needle in r.getMessage()]


# -- Flux ------------------------------------------------------------------------------------------

def test_flux_is_detected_as_flux_dev_with_real_depths(comfy, flux, paths):
    import comfy.supported_models
    config = flux.model.model_config
    assert type(config) is comfy.supported_models.Flux            # dev (guidance), not Schnell/Chroma
    unet = config.unet_config
    assert (unet["depth"], unet["depth_single_blocks"]) == (19, 38)
    assert (unet["hidden_size"], unet["num_heads"], unet["in_channels"]) == (128, 1, 16)
    assert (unet["context_in_dim"], unet["vec_in_dim"], unet["guidance_embed"]) == (768, 768, True)
    # Every tensor of the file is a parameter of ComfyUI's Flux and vice versa (the RMSNorm gain is
    # ".scale" in the file and in ComfyUI 0.8.0's Flux, ".weight" in 0.33's).
    def gains_alike(keys):
        return {k[:-len(".scale")] + ".weight" if k.endswith("_norm.scale") else k for k in keys}
    assert gains_alike(load_file(str(paths["flux"]))) == gains_alike(flux.model.diffusion_model.state_dict())


def test_flux_forward_runs(flux):
    out = forward(flux)
    assert out.shape == LATENT and torch.isfinite(out).all() and out.std() > 0.1


# -- text encoder ----------------------------------------------------------------------------------

def test_clip_l_alone_gives_flux_shaped_conditioning_with_either_clip_type(comfy, clip, paths, caplog):
    import comfy.sd
    with caplog.at_level(logging.WARNING):
        flux_type = comfy.sd.load_clip([str(paths["clip_l"])], clip_type=comfy.sd.CLIPType.FLUX)
    assert not messages(caplog, "clip missing")
    for loaded in (clip, flux_type):
        assert type(loaded.cond_stage_model).__name__ == "SD1ClipModel"
    (cond, extra), = encode(clip, "a photo of a person")
    assert cond.shape == (1, 77, 768) and extra["pooled_output"].shape == (1, 768)
    assert torch.isfinite(cond).all() and torch.isfinite(extra["pooled_output"]).all()
    (cond_flux, extra_flux), = encode(flux_type, "a photo of a person")
    assert torch.equal(cond, cond_flux) and torch.equal(extra["pooled_output"], extra_flux["pooled_output"])
    (other, _), = encode(clip, "a red car")
    assert not torch.equal(cond, other)


# -- VAE -------------------------------------------------------------------------------------------

def test_vae_is_a_16_channel_flux_autoencoder(vae, paths):
    assert type(vae.first_stage_model).__name__ == "TAESD"
    assert vae.latent_channels == 16 and vae.downscale_ratio == 8
    assert set(load_file(str(paths["vae"]))) == set(vae.first_stage_model.state_dict())
    image = torch.rand(HINT, generator=torch.Generator().manual_seed(0))
    latent = vae.encode(image)
    assert latent.shape == LATENT and torch.isfinite(latent).all()
    decoded = vae.decode(latent)
    assert decoded.shape == HINT and torch.isfinite(decoded).all() and decoded.std() > 0.01


# -- LoRA ------------------------------------------------------------------------------------------

def test_ai_toolkit_lora_maps_every_key_and_changes_the_model(comfy, flux, paths, caplog):
    import comfy.sd
    import comfy.utils
    lora = comfy.utils.load_torch_file(str(paths["lora"]))
    with caplog.at_level(logging.WARNING):
        patched, _ = comfy.sd.load_lora_for_models(flux, None, lora, 1.0, 0)
    assert not messages(caplog, "lora key not loaded")
    # 19 double blocks x 10 BFL weights (2 qkv, 2 proj, 2 mod, 4 mlp) + 38 single x 3.
    assert len(patched.patches) == 19 * 10 + 38 * 3
    base = forward(flux)
    with_lora = forward(patched)
    assert torch.isfinite(with_lora).all()
    assert (with_lora - base).abs().max() > 1e-2
    assert torch.equal(forward(flux), base)                        # the unpatched model is untouched


# -- ControlNets -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,modes,doubles,singles", [
    ("controlnet_union_pro", 10, 5, 10),
    ("controlnet_union_pro2", 0, 6, 0),
])
def test_union_controlnet_loads_and_steers_sampling(comfy, flux, clip, vae, paths, caplog, name, modes, doubles, singles):
    import comfy.controlnet
    from comfy.ldm.flux.controlnet import ControlNetFlux
    with caplog.at_level(logging.DEBUG):
        control_net = comfy.controlnet.load_controlnet(str(paths[name]))
    assert not messages(caplog, "missing controlnet keys") and not messages(caplog, "unexpected controlnet keys")
    model = control_net.control_model
    assert isinstance(model, ControlNetFlux) and model.latent_input
    assert model.num_union_modes == modes
    assert (len(model.double_blocks), len(model.single_blocks)) == (doubles, singles)

    positive, negative = encode(clip, "a person"), encode(clip, "")
    hint = torch.rand(HINT, generator=torch.Generator().manual_seed(1))
    base = sample(flux, positive, negative)

    def controlled(mode):
        net = control_net.copy()
        net.set_extra_arg("control_type", [mode])
        return sample(flux, with_control(positive, net, hint, vae), with_control(negative, net, hint, vae))

    pose, canny = controlled(4), controlled(0)
    assert pose.shape == LATENT and torch.isfinite(pose).all()
    assert (pose - base).abs().max() > 1e-2
    if modes:
        assert (pose - canny).abs().max() > 1e-3                   # the mode token matters
    else:
        assert torch.equal(pose, canny)                            # Pro-2.0 ignores control_type
    image = vae.decode(pose)
    assert image.shape == HINT and torch.isfinite(image).all()
