"""EVA02-CLIP visual tower: parity with the official EVA-CLIP/PuLID code, loading, and bad files."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from pulid_flux.errors import PulidWeightsError
from pulid_flux.engine.eva import (
    BACKGROUND_LABELS,
    HIDDEN_BLOCKS,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    EvaConfig,
    EvaVisionTower,
    _expected_shapes,
    build_trunk,
    face_features_image,
    preprocess,
)

TINY = EvaConfig(width=64, depth=21, mlp_hidden=170, patch_size=14, grid_size=2, embed_dim=32)


def _max_err(a, b):
    return (a.float() - b.float()).abs().max().item()


def _tiny_state_dict(config=TINY, seed=0, prefix="visual."):
    """Random weights in the EVA-CLIP checkpoint layout; norms near 1 so activations stay tame."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in _expected_shapes(config).items():
        t = torch.randn(shape, generator=g) * 0.05
        if key.endswith("weight") and len(shape) == 1:  # LayerNorm gains
            t = t + 1.0
        sd[prefix + key] = t
    return sd


@pytest.fixture(scope="module")
def io_eva(golden_dir):
    return load_file(str(golden_dir / "io_eva.safetensors"))


@pytest.fixture(scope="module")
def manifest(golden_dir):
    return json.loads((golden_dir / "manifest_eva.json").read_text())


@pytest.fixture(scope="module")
def golden_tower(golden_dir):
    return EvaVisionTower.from_file(golden_dir / "eva.safetensors")


@pytest.fixture(scope="module")
def golden_run(golden_tower, io_eva):
    with torch.no_grad():
        return golden_tower(io_eva["expect_eva_input"])


@pytest.fixture(scope="module")
def tiny_tower():
    return EvaVisionTower.from_state_dict(_tiny_state_dict())


# -- face features and preprocessing ----------------------------------------------------------

def test_constants_match_the_reference(manifest):
    assert BACKGROUND_LABELS == frozenset(manifest["background_labels"])
    assert OPENAI_CLIP_MEAN == tuple(manifest["normalisation"]["mean"])
    assert OPENAI_CLIP_STD == tuple(manifest["normalisation"]["std"])


def test_face_features_match_golden(io_eva):
    out = face_features_image(io_eva["face_aligned"], io_eva["parsing_labels"])
    assert out.shape == io_eva["expect_face_features"].shape
    assert _max_err(out, io_eva["expect_face_features"]) <= 1e-5


def test_face_features_whiten_exactly_the_background_classes():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 19, 4)
    labels = torch.arange(19).view(1, 1, 19, 1).expand(2, 1, 19, 4)
    out = face_features_image(image, labels)
    gray = 0.299 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2]
    for cls in range(19):
        row = out[:, :, cls]
        if cls in BACKGROUND_LABELS:
            assert torch.all(row == 1.0), cls
        else:
            assert torch.allclose(row, gray[:, cls].unsqueeze(1).expand_as(row), atol=1e-7), cls
    # (B, H, W) labels are accepted too
    assert torch.equal(face_features_image(image, labels[:, 0]), out)


def test_face_features_reject_mismatched_labels():
    with pytest.raises(ValueError, match="do not cover"):
        face_features_image(torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="RGB"):
        face_features_image(torch.rand(1, 1, 8, 8), torch.zeros(1, 1, 8, 8, dtype=torch.long))


def test_preprocess_matches_golden(io_eva):
    out = preprocess(io_eva["expect_face_features"])
    assert out.shape == (1, 3, 336, 336)
    assert _max_err(out, io_eva["expect_eva_input"]) <= 1e-5


@pytest.mark.parametrize("shape", [(2, 3, 512, 512), (1, 3, 100, 150)])
def test_preprocess_matches_torchvision(shape):
    tvf = pytest.importorskip("torchvision.transforms.functional")
    torch.manual_seed(1)
    image = torch.rand(shape)
    ref = tvf.resize(image, [336, 336], interpolation=tvf.InterpolationMode.BICUBIC, antialias=True)
    ref = tvf.normalize(ref, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)
    assert _max_err(preprocess(image), ref) <= 1e-5


# -- parity with the official tower -----------------------------------------------------------

def test_config_is_read_from_the_weights(golden_tower, manifest):
    c = golden_tower.config
    vc = manifest["vision_cfg"]
    assert (c.width, c.depth, c.patch_size, c.image_size) == (vc["width"], vc["layers"], vc["patch_size"],
                                                              vc["image_size"])
    assert c.heads == vc["width"] // vc["head_width"]
    assert c.mlp_hidden == int(vc["width"] * vc["mlp_ratio"])
    assert c.embed_dim == manifest["embed_dim"]
    assert c.num_tokens == 577


def test_cls_matches_golden(golden_run, io_eva):
    cls, _ = golden_run
    assert cls.shape == (1, 768)
    assert _max_err(cls, io_eva["expect_eva_cls"]) <= 1e-4


@pytest.mark.parametrize("index", range(len(HIDDEN_BLOCKS)))
def test_hidden_matches_golden(golden_run, io_eva, index):
    _, hidden = golden_run
    assert len(hidden) == 5
    expect = io_eva[f"expect_eva_hidden_{index}"]
    assert hidden[index].shape == expect.shape == (1, 577, 128)
    assert _max_err(hidden[index], expect) <= 1e-4


def test_hidden_is_the_residual_stream_entering_blocks_4_to_20(tiny_tower):
    """Independent of timm's intermediate bookkeeping: capture block inputs with hooks."""
    entering, last_out = {}, {}
    blocks = tiny_tower.trunk.blocks
    handles = [blocks[i].register_forward_pre_hook(lambda m, args, i=i: entering.__setitem__(i, args[0]))
               for i in HIDDEN_BLOCKS]
    handles.append(blocks[-1].register_forward_hook(lambda m, args, out: last_out.__setitem__("x", out)))
    torch.manual_seed(2)
    x = torch.randn(2, 3, 28, 28)
    try:
        with torch.no_grad():
            cls, hidden = tiny_tower(x)
    finally:
        for h in handles:
            h.remove()
    assert [h.shape for h in hidden] == [(2, 5, 64)] * 5
    for h, i in zip(hidden, HIDDEN_BLOCKS):
        assert torch.equal(h, entering[i])
    trunk = tiny_tower.trunk
    with torch.no_grad():
        expect_cls = trunk.head(trunk.norm(last_out["x"])[:, 0])
    assert torch.allclose(cls, expect_cls, atol=1e-6)


def test_encode_face_preprocesses_and_normalises(tiny_tower):
    torch.manual_seed(3)
    faces = torch.rand(2, 3, 40, 40)
    cls_normed, hidden = tiny_tower.encode_face(faces)
    with torch.no_grad():
        cls, expect_hidden = tiny_tower(preprocess(faces, 28))
    assert torch.allclose(cls_normed, cls / cls.norm(dim=1, keepdim=True), atol=1e-6)
    assert torch.allclose(cls_normed.norm(dim=1), torch.ones(2), atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(hidden, expect_hidden))


def test_bfloat16_tower_tracks_float32(tiny_tower):
    tower16 = EvaVisionTower.from_state_dict(_tiny_state_dict(), dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in tower16.parameters())
    faces = torch.rand(1, 3, 28, 28, generator=torch.Generator().manual_seed(4))
    cls16, hidden16 = tower16.encode_face(faces)
    cls32, _ = tiny_tower.encode_face(faces)
    assert cls16.dtype == torch.bfloat16 and len(hidden16) == 5
    assert torch.nn.functional.cosine_similarity(cls16.float(), cls32).item() > 0.99


def test_forward_rejects_the_wrong_input_size(tiny_tower):
    with pytest.raises(ValueError, match=r"\(B, 3, 28, 28\)"):
        tiny_tower(torch.zeros(1, 3, 27, 27))


# -- file formats -----------------------------------------------------------------------------

def _params(tower):
    return {k: v for k, v in tower.trunk.state_dict().items()}


@pytest.mark.parametrize("layout", ["pt_with_text_tower", "pt_wrapped", "bare_safetensors"])
def test_other_layouts_load_like_the_safetensors(golden_dir, golden_tower, tmp_path, layout):
    visual = load_file(str(golden_dir / "eva.safetensors"))
    if layout == "bare_safetensors":
        path = tmp_path / "eva_visual.safetensors"
        save_file({k[len("visual."):]: v for k, v in visual.items()}, str(path))
    else:
        full = dict(visual)
        full["text.token_embedding.weight"] = torch.zeros(10, 8)
        full["text.transformer.resblocks.0.attn.in_proj_weight"] = torch.zeros(24, 8)
        full["logit_scale"] = torch.tensor(4.6)
        # stored rope tables (present in some EVA-CLIP exports) are recomputed, not loaded
        full["visual.rope.freqs_cos"] = torch.full((576, 64), 7.0)
        full["visual.blocks.0.attn.rope.freqs_sin"] = torch.full((576, 64), 7.0)
        path = tmp_path / "EVA02_CLIP_tiny.pt"
        torch.save({"state_dict": full} if layout == "pt_wrapped" else full, str(path))
    tower = EvaVisionTower.from_file(path)
    assert tower.config == golden_tower.config
    expect = _params(golden_tower)
    got = _params(tower)
    assert got.keys() == expect.keys()
    for k in expect:
        assert torch.equal(got[k], expect[k]), k


def _write_bad(kind, golden_dir, tmp_path):
    src = golden_dir / "eva.safetensors"
    if kind == "truncated":
        path = tmp_path / "eva_truncated.safetensors"
        path.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
        return path, []
    if kind == "empty":
        path = tmp_path / "eva_empty.safetensors"
        path.write_bytes(b"")
        return path, []
    if kind == "unrelated":
        path = tmp_path / "not_eva.safetensors"
        save_file({"down.weight": torch.zeros(4, 4), "up.bias": torch.zeros(4)}, str(path))
        return path, ["down.weight", "pos_embed"]
    if kind == "pulid_file":
        return golden_dir / "pulid.safetensors", ["pos_embed", "pulid_ca.0"]
    sd = load_file(str(src))
    if kind == "missing_key":
        del sd["visual.blocks.23.mlp.w3.weight"]
        path = tmp_path / "eva_missing.safetensors"
        save_file(sd, str(path))
        return path, ["visual.blocks.23.mlp.w3.weight"]
    if kind == "wrong_shape":
        sd["visual.blocks.5.attn.proj.weight"] = torch.zeros(128, 64, dtype=torch.bfloat16)
        path = tmp_path / "eva_wrong.pt"
        torch.save(sd, str(path))
        return path, ["visual.blocks.5.attn.proj.weight"]
    if kind == "stray_key":
        sd["visual.blocks.3.attn.relative_position_bias_table"] = torch.zeros(3, 2)
        path = tmp_path / "eva_stray.safetensors"
        save_file(sd, str(path))
        return path, ["visual.blocks.3.attn.relative_position_bias_table"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "empty", "unrelated", "pulid_file", "missing_key",
                                  "wrong_shape", "stray_key"])
def test_bad_files_raise_a_weights_error_naming_the_file(golden_dir, tmp_path, kind):
    path, named = _write_bad(kind, golden_dir, tmp_path)
    with pytest.raises(PulidWeightsError) as info:
        EvaVisionTower.from_file(path)
    message = str(info.value)
    assert path.name in message
    assert "EVA02-CLIP" in message
    for key in named:
        assert key in message, (key, message)


def test_a_tower_too_shallow_for_pulid_is_refused(tmp_path):
    shallow = EvaConfig(width=64, depth=8, mlp_hidden=170, patch_size=14, grid_size=2, embed_dim=32)
    path = tmp_path / "eva_shallow.safetensors"
    save_file(_tiny_state_dict(shallow), str(path))
    with pytest.raises(PulidWeightsError, match="at least 21") as info:
        EvaVisionTower.from_file(path)
    assert path.name in str(info.value)


def test_non_default_sizes_are_read_from_the_weights(tiny_tower):
    assert tiny_tower.config == TINY
    assert tiny_tower.config.heads == 1 and tiny_tower.image_size == 28
    assert tiny_tower.trunk.blocks[0].mlp.fc1_g.out_features == 170


def test_loading_allocates_only_shapes_before_the_weights_arrive():
    """The 300M-parameter tower must not be randomly initialised first (about 10 s on a CPU)."""
    trunk = build_trunk(TINY, device="meta")
    assert all(p.is_meta for p in trunk.parameters())
    assert all(not b.is_meta for b in trunk.rope.buffers())  # the computed RoPE tables are real
    reference = build_trunk(TINY, device="cpu")
    assert torch.equal(trunk.rope.get_embed(), reference.rope.get_embed())
