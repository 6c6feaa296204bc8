"""apply_pulid through ComfyUI's own Flux: golden parity, exact no-ops, no pollution, stacking."""

import pytest
import torch
from safetensors.torch import load_file

from pulid_flux import PulidFlux, PulidIdentity
from pulid_flux.errors import PulidError
from pulid_flux.engine.inject import apply_pulid

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def io(golden_dir):
    return load_file(str(golden_dir / "io.safetensors"))


@pytest.fixture(scope="module")
def pulid(golden_dir):
    return PulidFlux.from_file(golden_dir / "pulid.safetensors")


@pytest.fixture(scope="module")
def flux(comfy, golden_dir):
    import comfy.sd
    return comfy.sd.load_diffusion_model(str(golden_dir / "flux.safetensors"), model_options={"dtype": torch.float32})


def forward(model_patcher, io, **extra_options):
    """One Flux forward exactly as ComfyUI's sampler calls the transformer, with its patches."""
    dm = model_patcher.model.diffusion_model
    options = dict(model_patcher.model_options["transformer_options"])
    options.update(extra_options)
    with torch.no_grad():
        return dm.forward_orig(io["img"], io["img_ids"], io["txt"], io["txt_ids"], io["timesteps"], io["y"],
                               io["guidance"], transformer_options=options)


def maxdiff(a, b):
    return (a - b).abs().max().item()


def test_unpatched_comfy_flux_matches_reference(flux, io):
    assert maxdiff(forward(flux, io), io["expect_flux_no_id"]) <= 1e-5


@pytest.mark.parametrize("weight,key", [(1.0, "expect_flux_id_w1"), (0.6, "expect_flux_id_w0_6")])
def test_golden_parity_through_comfy_flux(flux, pulid, io, weight, key):
    patched = apply_pulid(flux, pulid, PulidIdentity(io["expect_id_embedding"]), weight=weight)
    assert maxdiff(forward(patched, io), io[key]) <= 1e-5


def test_uncond_tokens_on_the_negative_pass(flux, pulid, io):
    ident = PulidIdentity(io["expect_id_embedding"], io["expect_uncond_id_embedding"])
    patched = apply_pulid(flux, pulid, ident, uncond="uncond_tokens")
    batch = {k: torch.cat([v, v]) if k not in ("timesteps", "guidance") else torch.cat([v, v])
             for k, v in io.items() if k in ("img", "img_ids", "txt", "txt_ids", "timesteps", "y", "guidance")}
    out = forward(patched, batch, cond_or_uncond=[0, 1])
    assert maxdiff(out[0], io["expect_flux_id_w1"][0]) <= 1e-5
    assert maxdiff(out[1], io["expect_flux_uncond_id"][0]) <= 1e-5


def test_weight_zero_and_closed_window_are_exact(flux, pulid, io):
    ident = PulidIdentity(io["expect_id_embedding"])
    base = forward(flux, io)
    assert torch.equal(forward(apply_pulid(flux, pulid, ident, weight=0.0), io), base)
    assert torch.equal(forward(apply_pulid(flux, pulid, ident, start_at=0.5, end_at=0.5), io), base)


def test_sigma_outside_window_is_exact(flux, pulid, io):
    ident = PulidIdentity(io["expect_id_embedding"])
    patched = apply_pulid(flux, pulid, ident, start_at=0.6, end_at=1.0)
    sampling = flux.get_model_object("model_sampling")
    inside = sampling.percent_to_sigma(0.8)
    outside = sampling.percent_to_sigma(0.3)
    base = forward(flux, io)
    assert torch.equal(forward(patched, io, sigmas=torch.tensor([outside])), base)
    assert not torch.equal(forward(patched, io, sigmas=torch.tensor([inside])), base)


def test_model_passed_in_is_never_modified(flux, pulid, io):
    before = forward(flux, io)
    options_before = repr(flux.model_options)
    patched = apply_pulid(flux, pulid, PulidIdentity(io["expect_id_embedding"]))
    forward(patched, io)
    assert repr(flux.model_options) == options_before
    assert torch.equal(forward(flux, io), before)
    assert patched is not flux


def test_stacked_identities_sum(flux, pulid, io):
    a = PulidIdentity(io["expect_id_embedding"])
    b = PulidIdentity(io["expect_uncond_id_embedding"])
    one = apply_pulid(flux, pulid, a, weight=0.5)
    both = apply_pulid(one, pulid, b, weight=0.3)
    hooks = both.model_options["transformer_options"]["patches_replace"]["dit"]
    assert len(hooks) == pulid.num_ca and all(len(h.injections) == 2 for h in hooks.values())
    # The additional model (adapters for ComfyUI's loader) is attached once, not per identity.
    assert len(both.get_additional_models_with_key("pulid_flux_studio")) == 1
    assert not torch.equal(forward(both, io), forward(one, io))
    # Contributions add at every hook (each adapter reads the same block output), so one identity
    # stacked twice at 0.5 is that identity at 1.0: the golden w1 output.
    twice = apply_pulid(one, pulid, a, weight=0.5)
    assert maxdiff(forward(twice, io), io["expect_flux_id_w1"]) <= 1e-5


def test_existing_replace_patch_is_chained(flux, pulid, io):
    calls = []

    def skip_layer(args, extra, **kwargs):
        calls.append(1)
        return extra["original_block"](args)

    m = flux.clone()
    m.set_model_patch_replace(skip_layer, "dit", "double_block", 0)
    patched = apply_pulid(m, pulid, PulidIdentity(io["expect_id_embedding"]))
    out = forward(patched, io)
    assert calls == [1]
    assert maxdiff(out, io["expect_flux_id_w1"]) <= 1e-5


def test_wrong_identity_size_is_refused(flux, pulid):
    with pytest.raises(PulidError, match="identity tokens are 64-d"):
        apply_pulid(flux, pulid, PulidIdentity(torch.zeros(1, 8, 64)))


def test_reference_latents_and_text_get_no_identity(flux, pulid, io, monkeypatch):
    """Kontext-style reference latents through Flux's whole forward (wrappers included): in every hooked
    block the identity reaches the generated tokens only, never the text or the reference tokens.

    ComfyUI 0.33 says where they are (img_slice, reference_image_num_tokens); 0.8.0 says neither, so
    there the pack's own DIFFUSION_MODEL wrapper (the generated-token grid) and double-block hook (the
    text length) do.
    """
    from pulid_flux.engine.inject import PulidBlockHook, hook_positions

    seen = []
    hook_call = PulidBlockHook.__call__

    def spy(self, args, extra, **kwargs):
        block = extra["original_block"]
        captured = {}

        def original_block(block_args):
            out = block(block_args)
            captured["img"] = out["img"].clone()
            return out

        result = hook_call(self, args, {**extra, "original_block": original_block}, **kwargs)
        # Copies: the next block adds to its input in place.
        seen.append((self.block_type, captured["img"], result["img"].clone()))
        return result

    monkeypatch.setattr(PulidBlockHook, "__call__", spy)
    patched = apply_pulid(flux, pulid, PulidIdentity(io["expect_id_embedding"]))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 8, 8, generator=g)                    # 4x4 = 16 generated tokens
    reference = torch.randn(1, 16, 4, 6, generator=g)            # 2x3 = 6 reference tokens
    import comfy.patcher_extension
    options = dict(patched.model_options["transformer_options"])
    # As ComfyUI's sampler does before sampling (sampler_helpers): the patcher's wrappers, the pack's
    # token-grid wrapper among them, join transformer_options.
    options["wrappers"] = comfy.patcher_extension.merge_nested_dicts({}, patched.wrappers)
    with torch.no_grad():
        out = patched.model.diffusion_model.forward(x, io["timesteps"], io["txt"], y=io["y"], guidance=io["guidance"],
                                                    ref_latents=[reference], transformer_options=options)
    assert out.shape == x.shape and torch.isfinite(out).all()
    txt, gen, refs = io["txt"].shape[1], 16, 6
    dm = patched.model.diffusion_model
    assert [kind for kind, *_ in seen] == [kind for kind, _ in hook_positions(len(dm.double_blocks),
                                                                              len(dm.single_blocks))]
    for kind, block_out, result in seen:
        start = 0 if kind == "double_block" else txt             # single blocks carry the text first
        assert block_out.shape[1] == start + gen + refs
        assert torch.equal(result[:, :start], block_out[:, :start]), kind
        assert torch.equal(result[:, start + gen:], block_out[:, start + gen:]), kind
        assert not torch.equal(result[:, start:start + gen], block_out[:, start:start + gen]), kind
