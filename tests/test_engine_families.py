"""Which models the hooks reach (``engine.families``), the per-call wrapper and the hook's token split;
no ComfyUI.

ComfyUI's own models (tiny Chroma, Radiance, Kontext, fp8, GGUF, SD1.5) are exercised in
tests/integration/test_flux_family_comfy.py and test_flux_family_server.py.
"""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from pulid_flux import PulidFlux
from pulid_flux.engine.families import inspect_model
from pulid_flux.engine.inject import (
    GRID_KEY,
    REACHED_KEY,
    CallWrapper,
    Injection,
    PulidBlockHook,
    _token_grid,
)
from pulid_flux.errors import PulidError
from pulid_flux.tiny.pulid import pulid_state_dict


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


def test_token_grid_matches_comfyuis_padding():
    # ComfyUI pads to the patch size, so a partial patch is a token of its own.
    assert _token_grid(torch.zeros(1, 3, 65, 64), 16) == (math.ceil(65 / 16), 4)
    assert _token_grid(torch.zeros(2, 16, 64), 2) is None
