"""The block hooks' arithmetic, gating and stacking, on golden PuLID weights without ComfyUI.

The real Flux path (ComfyUI's own Flux with apply_pulid against the golden Flux outputs) is in
tests/integration/test_inject_comfy.py.
"""

import pytest
import torch

from pulid_flux import PulidFlux
from pulid_flux.errors import PulidError
from pulid_flux.engine.inject import Injection, PulidBlockHook, hook_positions

TXT, IMG, DIM = 5, 12, 128


@pytest.fixture(scope="module")
def pulid(golden_dir):
    return PulidFlux.from_file(golden_dir / "pulid.safetensors")


@pytest.fixture(scope="module")
def tokens(pulid):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(1, pulid.num_tokens, pulid.token_dim, generator=g)
    b = torch.randn(1, pulid.num_tokens, pulid.token_dim, generator=g)
    return a, b


def make_injection(pulid, tok, weight=1.0, sigma_start=1.0, sigma_end=0.0, uncond="same", uncond_tokens=None,
                   mask=None):
    return Injection(pulid=pulid, tokens=tok, uncond_tokens=uncond_tokens, weight=weight,
                     sigma_start=sigma_start, sigma_end=sigma_end, uncond=uncond, mask=mask)


def double_block(args):
    # Stands in for Flux's DoubleStreamBlock: any deterministic function of the inputs.
    return {"img": args["img"] * 1.5 + 0.25, "txt": args["txt"] - 0.5}


def single_block(args):
    return {"img": torch.tanh(args["img"]) + args["img"]}


def run_double(hook, img, txt, **options):
    return hook({"img": img, "txt": txt, "transformer_options": dict(options)}, {"original_block": double_block})


def run_single(hook, x, **options):
    return hook({"img": x, "transformer_options": dict(options)}, {"original_block": single_block})


def rand(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_hook_positions_are_the_official_twenty():
    positions = hook_positions(19, 38)
    assert len(positions) == 20
    assert positions[:10] == [("double_block", i) for i in range(0, 19, 2)]
    assert positions[10:] == [("single_block", i) for i in range(0, 38, 4)]


def test_double_hook_adds_weighted_ca_to_image_tokens_only(pulid, tokens):
    img, txt = rand(2, IMG, DIM), rand(2, TXT, DIM, seed=2)
    hook = PulidBlockHook([make_injection(pulid, tokens[0], weight=0.6)], 3, "double_block")
    out = run_double(hook, img, txt, sigmas=torch.tensor([0.5, 0.5]), cond_or_uncond=[0])
    base = double_block({"img": img, "txt": txt})
    expected = base["img"] + 0.6 * pulid.ca[3](tokens[0], base["img"])
    torch.testing.assert_close(out["img"], expected, rtol=0, atol=1e-6)
    assert torch.equal(out["txt"], base["txt"])


def test_single_hook_leaves_text_and_reference_tokens(pulid, tokens):
    refs = 4
    x = rand(1, TXT + IMG + refs, DIM)
    hook = PulidBlockHook([make_injection(pulid, tokens[0])], 4, "single_block")
    out = run_single(hook, x, img_slice=[TXT, TXT + IMG + refs], reference_image_num_tokens=[refs])
    base = single_block({"img": x})["img"]
    assert torch.equal(out["img"][:, :TXT], base[:, :TXT])
    assert torch.equal(out["img"][:, TXT + IMG:], base[:, TXT + IMG:])
    expected = base[:, TXT:TXT + IMG] + pulid.ca[4](tokens[0], base[:, TXT:TXT + IMG])
    torch.testing.assert_close(out["img"][:, TXT:TXT + IMG], expected, rtol=0, atol=1e-6)


def test_single_hook_uses_text_length_stashed_by_double_hook(pulid, tokens):
    inj = make_injection(pulid, tokens[0])
    options = {}
    PulidBlockHook([inj], 0, "double_block")({"img": rand(1, IMG, DIM), "txt": rand(1, TXT, DIM),
                                               "transformer_options": options}, {"original_block": double_block})
    x = rand(1, TXT + IMG, DIM, seed=5)
    out = PulidBlockHook([inj], 5, "single_block")({"img": x, "transformer_options": options},
                                                     {"original_block": single_block})
    assert torch.equal(out["img"][:, :TXT], single_block({"img": x})["img"][:, :TXT])
    with pytest.raises(PulidError, match="text from image"):
        run_single(PulidBlockHook([inj], 5, "single_block"), x)


@pytest.mark.parametrize("sigma", [0.95, 0.05])
def test_outside_window_is_exactly_the_block(pulid, tokens, sigma):
    img, txt = rand(1, IMG, DIM), rand(1, TXT, DIM)
    hook = PulidBlockHook([make_injection(pulid, tokens[0], sigma_start=0.8, sigma_end=0.2)], 0, "double_block")
    out = run_double(hook, img, txt, sigmas=torch.tensor([sigma]))
    assert torch.equal(out["img"], double_block({"img": img, "txt": txt})["img"])


def test_per_sample_gating(pulid, tokens):
    img, txt = rand(2, IMG, DIM), rand(2, TXT, DIM)
    hook = PulidBlockHook([make_injection(pulid, tokens[0], sigma_start=0.8, sigma_end=0.2)], 0, "double_block")
    out = run_double(hook, img, txt, sigmas=torch.tensor([0.5, 0.9]))
    base = double_block({"img": img, "txt": txt})["img"]
    assert not torch.equal(out["img"][0], base[0])
    assert torch.equal(out["img"][1], base[1])


def test_weight_zero_is_exactly_the_block(pulid, tokens):
    img, txt = rand(1, IMG, DIM), rand(1, TXT, DIM)
    out = run_double(PulidBlockHook([make_injection(pulid, tokens[0], weight=0.0)], 0, "double_block"), img, txt)
    assert torch.equal(out["img"], double_block({"img": img, "txt": txt})["img"])


@pytest.mark.parametrize("mode", ["same", "uncond_tokens", "none"])
def test_cond_uncond_modes(pulid, tokens, mode):
    cond_tok, uncond_tok = tokens
    img, txt = rand(2, IMG, DIM), rand(2, TXT, DIM)   # row 0 = cond chunk, row 1 = uncond chunk
    inj = make_injection(pulid, cond_tok, uncond=mode, uncond_tokens=uncond_tok)
    out = run_double(PulidBlockHook([inj], 0, "double_block"), img, txt, cond_or_uncond=[0, 1])["img"]
    base = double_block({"img": img, "txt": txt})["img"]
    with_cond = base + pulid.ca[0](cond_tok, base)
    torch.testing.assert_close(out[0], with_cond[0], rtol=0, atol=1e-6)
    if mode == "same":
        torch.testing.assert_close(out[1], with_cond[1], rtol=0, atol=1e-6)
    elif mode == "uncond_tokens":
        torch.testing.assert_close(out[1], (base + pulid.ca[0](uncond_tok, base))[1], rtol=0, atol=1e-6)
    else:
        assert torch.equal(out[1], base[1])


def test_uncond_chunk_first_is_honoured(pulid, tokens):
    img, txt = rand(2, IMG, DIM), rand(2, TXT, DIM)
    inj = make_injection(pulid, tokens[0], uncond="none")
    out = run_double(PulidBlockHook([inj], 0, "double_block"), img, txt, cond_or_uncond=[1, 0])["img"]
    base = double_block({"img": img, "txt": txt})["img"]
    assert torch.equal(out[0], base[0])
    assert not torch.equal(out[1], base[1])


def test_two_identities_sum_their_contributions(pulid, tokens):
    img, txt = rand(1, IMG, DIM), rand(1, TXT, DIM)
    a = make_injection(pulid, tokens[0], weight=0.7)
    b = make_injection(pulid, tokens[1], weight=0.4)
    base = double_block({"img": img, "txt": txt})["img"]
    only_a = run_double(PulidBlockHook([a], 2, "double_block"), img, txt)["img"]
    stacked = PulidBlockHook.stacked_on(PulidBlockHook([a], 2, "double_block"), b, 2, "double_block")
    both = run_double(stacked, img, txt)["img"]
    only_b = run_double(PulidBlockHook([b], 2, "double_block"), img, txt)["img"]
    torch.testing.assert_close(both - base, (only_a - base) + (only_b - base), rtol=0, atol=1e-5)


def test_existing_foreign_patch_is_still_called(pulid, tokens):
    calls = []

    def foreign(args, extra, **kwargs):
        calls.append(args["transformer_options"].get("block_index"))
        out = extra["original_block"](args)
        return {"img": out["img"] * 0, "txt": out["txt"]}   # e.g. SkipLayerGuidance zeroing a block

    hook = PulidBlockHook.stacked_on(foreign, make_injection(pulid, tokens[0]), 0, "double_block")
    img, txt = rand(1, IMG, DIM), rand(1, TXT, DIM)
    out = run_double(hook, img, txt, block_index=0)
    assert calls == [0]
    zeros = torch.zeros_like(img)
    torch.testing.assert_close(out["img"], zeros + pulid.ca[0](tokens[0], zeros), rtol=0, atol=1e-6)


def test_mask_limits_identity_to_region(pulid, tokens):
    h, w = 3, 4
    img, txt = rand(1, h * w, DIM), rand(1, TXT, DIM)
    mask = torch.zeros(1, 24, 32)
    mask[:, :, :16] = 1.0                                    # left half of the picture
    inj = make_injection(pulid, tokens[0], mask=mask)
    out = run_double(PulidBlockHook([inj], 0, "double_block"), img, txt, pulid_studio_grid=(h, w))["img"]
    base = double_block({"img": img, "txt": txt})["img"]
    changed = (out != base).any(-1).reshape(h, w)
    assert changed[:, :2].all() and not changed[:, 2:].any()


def test_mask_grid_inferred_from_aspect_without_wrapper(pulid, tokens):
    h, w = 2, 6
    img, txt = rand(1, h * w, DIM), rand(1, TXT, DIM)
    mask = torch.zeros(1, 20, 60)
    mask[:, 10:, :] = 1.0                                    # bottom half
    inj = make_injection(pulid, tokens[0], mask=mask)
    out = run_double(PulidBlockHook([inj], 0, "double_block"), img, txt)["img"]
    base = double_block({"img": img, "txt": txt})["img"]
    changed = (out != base).any(-1).reshape(h, w)
    assert changed[1].all() and not changed[0].any()


def test_half_precision_tokens_are_cast(pulid, tokens):
    img, txt = rand(1, IMG, DIM).to(torch.bfloat16), rand(1, TXT, DIM).to(torch.bfloat16)
    out = run_double(PulidBlockHook([make_injection(pulid, tokens[0])], 0, "double_block"), img, txt)
    assert out["img"].dtype == torch.bfloat16 and torch.isfinite(out["img"].float()).all()
