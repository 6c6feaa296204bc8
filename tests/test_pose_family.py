"""ControlNet family detection from synthetic descriptions and checkpoint key sets."""

import pytest

from pulid_flux.pose import (
    FAMILY_CHOICES,
    ControlNetDescription,
    ControlNetFamily,
    check_pose_mode,
    describe_state_dict,
    detect_family,
    family_settings,
    resolve_family,
)

F = ControlNetFamily


@pytest.mark.parametrize("desc,family", [
    (ControlNetDescription("flux", union_modes=10, double_blocks=5, single_blocks=10), F.INSTANTX_UNION_V1),
    (ControlNetDescription("flux", union_modes=10, double_blocks=6, single_blocks=0), F.INSTANTX_UNION_V1),
    (ControlNetDescription("flux", union_modes=0, double_blocks=6, single_blocks=0), F.UNION_PRO_2),
    (ControlNetDescription("flux", union_modes=0, double_blocks=5, single_blocks=10), F.PLAIN),
    (ControlNetDescription("flux", union_modes=0, double_blocks=2, single_blocks=0), F.PLAIN),
    (ControlNetDescription("unet", union_modes=8), F.SDXL_UNION),
    (ControlNetDescription("unet"), F.PLAIN),
    (ControlNetDescription("other"), F.PLAIN),
])
def test_detect_family(desc, family):
    assert detect_family(desc) is family


def test_pose_modes_and_defaults():
    assert family_settings(F.INSTANTX_UNION_V1).pose_control_type == 4          # InstantX: pose = 4
    assert family_settings(F.SDXL_UNION).pose_control_type == 0                 # xinsir: openpose = 0
    assert family_settings(F.UNION_PRO_2).pose_control_type is None
    assert family_settings(F.PLAIN).pose_control_type is None
    pro2 = family_settings(F.UNION_PRO_2)
    assert (pro2.strength, pro2.end_percent) == (0.9, 0.65)
    v1 = family_settings(F.INSTANTX_UNION_V1)
    assert (v1.strength, v1.end_percent) == (0.85, 0.8)


def test_resolve_family_override():
    assert resolve_family("auto", F.UNION_PRO_2) is F.UNION_PRO_2
    assert resolve_family("instantx_union_v1", F.PLAIN) is F.INSTANTX_UNION_V1
    assert set(FAMILY_CHOICES) == {"auto", "instantx_union_v1", "union_pro_2", "sdxl_union", "plain"}
    with pytest.raises(ValueError, match="unknown ControlNet family 'flux2'"):
        resolve_family("flux2", F.PLAIN)


def test_check_pose_mode_warns_when_the_mode_cannot_work():
    assert check_pose_mode(F.INSTANTX_UNION_V1, ControlNetDescription("flux", 10, 5, 10)) is None
    assert "only 4 modes" in check_pose_mode(F.INSTANTX_UNION_V1, ControlNetDescription("flux", 4, 5, 10))
    assert "ignored" in check_pose_mode(F.INSTANTX_UNION_V1, ControlNetDescription("flux", 0, 6, 0))
    assert check_pose_mode(F.UNION_PRO_2, ControlNetDescription("flux", 10, 5, 10)) is None


def _diffusers_flux_keys(double, single, modes=None):
    keys = {"controlnet_x_embedder.weight": (3072, 64), "x_embedder.weight": (3072, 64),
            "context_embedder.weight": (3072, 4096)}
    for i in range(double):
        keys[f"transformer_blocks.{i}.attn.to_q.weight"] = (3072, 3072)
        keys[f"controlnet_blocks.{i}.weight"] = (3072, 3072)
    for i in range(single):
        keys[f"single_transformer_blocks.{i}.attn.to_q.weight"] = (3072, 3072)
        keys[f"controlnet_single_blocks.{i}.weight"] = (3072, 3072)
    if modes:
        keys["controlnet_mode_embedder.weight"] = (modes, 3072)
    return keys


def test_describe_state_dict_for_checkpoint_layouts():
    v1 = describe_state_dict(_diffusers_flux_keys(5, 10, modes=10))
    assert v1 == ControlNetDescription("flux", 10, 5, 10)
    assert detect_family(v1) is F.INSTANTX_UNION_V1
    pro2 = describe_state_dict(_diffusers_flux_keys(6, 0))
    assert pro2 == ControlNetDescription("flux", 0, 6, 0) and detect_family(pro2) is F.UNION_PRO_2
    xinsir = {"controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3), "task_embedding": (8, 320),
              "control_add_embedding.linear_1.weight": (1280, 2048)}
    assert detect_family(describe_state_dict(xinsir)) is F.SDXL_UNION
    sd15 = {"control_model.input_hint_block.0.weight": (16, 3, 3, 3), "control_model.zero_convs.0.0.weight": (1,)}
    assert describe_state_dict(sd15) == ControlNetDescription("unet")
    xlabs = {"controlnet_blocks.0.weight": (3072, 3072), "double_blocks.0.img_attn.norm.key_norm.scale": (128,),
             "double_blocks.1.img_attn.norm.key_norm.scale": (128,)}
    assert detect_family(describe_state_dict(xlabs)) is F.PLAIN
    assert describe_state_dict({"adapter.body.0.weight": (1,)}) == ControlNetDescription("other")
