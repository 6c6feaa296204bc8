"""The pose nodes inside a real (in-process, CPU) ComfyUI, on ControlNets loaded by ComfyUI itself.

Run with COMFYUI_PATH=/path/to/ComfyUI; skipped without it.
"""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from pulid_flux.pose import pose_bank

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pose_nodes(pack_nodes):
    return pack_nodes("pose")


@pytest.fixture(scope="module")
def controlnets(comfy, tmp_path_factory):
    """Tiny InstantX-format FLUX ControlNets written to disk and loaded by ComfyUI's own loader,
    plus a tiny xinsir-style SDXL union ControlNet built in-process."""
    from comfy.cldm.cldm import ControlNet as UnetControlNet

    from pulid_flux.tiny.controlnet import UNION_PRO, UNION_PRO2, TinyControlNetConfig, write_controlnet

    folder = tmp_path_factory.mktemp("controlnet")
    configs = {"union_v1": UNION_PRO, "union_pro_2": UNION_PRO2,
               "plain_flux": TinyControlNetConfig(num_layers=2, num_single_layers=1, num_modes=0)}
    nets = {name: comfy.controlnet.load_controlnet(str(write_controlnet(folder / f"{name}.safetensors", cfg)))
            for name, cfg in configs.items()}
    unet = UnetControlNet(image_size=None, in_channels=4, model_channels=32, hint_channels=3, num_res_blocks=1,
                          channel_mult=(1,), num_head_channels=32, use_spatial_transformer=True,
                          transformer_depth=[0], transformer_depth_middle=0, context_dim=32,
                          use_linear_in_transformer=True, union_controlnet_num_control_type=8)
    nets["sdxl_union"] = comfy.controlnet.ControlNet(unet)
    return nets


class FluxVae:
    """The one VAE method the apply node and ComfyUI's set_cond_hint use before sampling."""

    def spacial_compression_encode(self):
        return 8


def conditioning():
    return [[torch.zeros(1, 4, 8), {"pooled_output": torch.zeros(1, 8)}]]


def latent(width, height):
    return {"samples": torch.zeros(1, 16, height // 8, width // 8)}


def apply(pose_nodes, control_net, **kwargs):
    args = {"positive": conditioning(), "negative": conditioning(), "control_net": control_net, **kwargs}
    return pose_nodes.ApplyPoseControlNet.execute(**args)


def attached(out):
    return out[0][0][1]["control"]


# --------------------------------------------------------------------------------------------------


def test_schemas_follow_the_pack_conventions(pose_nodes):
    assert len(pose_nodes.NODE_LIST) == 6
    for node in pose_nodes.NODE_LIST:
        schema = node.define_schema()
        assert schema.node_id.startswith("PulidStudio")
        assert schema.display_name.endswith("(PuLID-Flux Studio)")
        assert schema.category == "PuLID-Flux Studio/Pose"
        for item in schema.inputs + schema.outputs:
            assert item.tooltip, f"{schema.node_id}: {item.id} has no tooltip"
        schema.validate()


def test_loaded_flux_controlnets_are_described_like_their_files(pose_nodes, controlnets):
    describe = pose_nodes.describe_loaded_controlnet
    assert describe(controlnets["union_v1"]) == pose_nodes.posekit.ControlNetDescription("flux", 10, 5, 10)
    assert describe(controlnets["union_pro_2"]) == pose_nodes.posekit.ControlNetDescription("flux", 0, 6, 0)
    assert describe(controlnets["plain_flux"]) == pose_nodes.posekit.ControlNetDescription("flux", 0, 2, 1)
    assert describe(controlnets["sdxl_union"]) == pose_nodes.posekit.ControlNetDescription("unet", 8)


@pytest.mark.parametrize("name,family,mode,strength,end", [
    ("union_v1", "instantx_union_v1", [4], 0.85, 0.8),
    ("union_pro_2", "union_pro_2", None, 0.9, 0.65),
    ("plain_flux", "plain", None, 1.0, 1.0),
    ("sdxl_union", "sdxl_union", [0], 1.0, 1.0),
])
def test_apply_sets_the_family_mode_and_defaults(pose_nodes, controlnets, name, family, mode, strength, end):
    source = controlnets[name]
    out = apply(pose_nodes, source, vae=FluxVae(), keypoints=[pose_bank("full_body", 832, 1216)],
                latent=latent(832, 1216))
    net = attached(out)
    assert net.extra_args.get("control_type") == mode
    assert "control_type" not in source.extra_args          # the loaded ControlNet is not modified
    assert net.strength == pytest.approx(strength)
    assert net.timestep_percent_range == (0.0, pytest.approx(end))
    assert net.cond_hint_original.shape == (1, 3, 1216, 832)
    assert out[1][0][1]["control"] is net and out[1][0][1]["control_apply_to_uncond"] is False
    assert out[3].startswith(f"family {family} (auto)")
    assert "WARNING" not in out[3]
    assert out.ui is not None


def test_explicit_strength_and_end_override_the_family_defaults(pose_nodes, controlnets):
    out = apply(pose_nodes, controlnets["union_pro_2"], vae=FluxVae(), keypoints=[pose_bank("medium", 512, 512)],
                strength=0.5, start_percent=0.1, end_percent=0.9)
    net = attached(out)
    assert net.strength == 0.5 and net.timestep_percent_range == (0.1, 0.9)


def test_forced_family_and_its_warning(pose_nodes, controlnets, caplog):
    with caplog.at_level(logging.WARNING):
        out = apply(pose_nodes, controlnets["union_pro_2"], vae=FluxVae(), family="instantx_union_v1",
                    keypoints=[pose_bank("medium", 512, 512)])
    assert attached(out).extra_args["control_type"] == [4]
    assert "forced" in out[3] and "no mode embedding" in out[3]
    assert any("union_pro_2" in r.getMessage() for r in caplog.records)


def test_a_latent_input_controlnet_needs_the_vae(pose_nodes, controlnets):
    with pytest.raises(ValueError, match="vae"):
        apply(pose_nodes, controlnets["union_v1"], keypoints=[pose_bank("medium", 512, 512)])
    # A UNet ControlNet takes the pose image itself: no VAE needed, hint at latent x 8.
    out = apply(pose_nodes, controlnets["sdxl_union"], keypoints=[pose_bank("medium", 512, 512)],
                latent=latent(768, 512))
    assert attached(out).cond_hint_original.shape == (1, 3, 512, 768)


def test_image_aspect_mismatch_is_reported(pose_nodes, controlnets, caplog):
    square = torch.zeros(1, 512, 512, 3)
    with caplog.at_level(logging.WARNING):
        out = apply(pose_nodes, controlnets["union_pro_2"], vae=FluxVae(), image=square, latent=latent(832, 1216))
    assert "WARNING" in out[3] and "centre-crop" in out[3]
    assert out.ui.as_dict()["text"][0] == out[3]
    assert any("centre-crop" in r.getMessage() for r in caplog.records)
    assert out[2] is square
    close = torch.zeros(1, 1216, 840, 3)                      # within 2 %
    assert "WARNING" not in apply(pose_nodes, controlnets["union_pro_2"], vae=FluxVae(), image=close,
                                  latent=latent(832, 1216))[3]
    sized = apply(pose_nodes, controlnets["union_pro_2"], vae=FluxVae(), image=square, width=1344, height=768)
    assert "WARNING" in sized[3]


def test_keypoints_are_refitted_and_rendered_for_the_latent(pose_nodes, controlnets):
    square_pose = [pose_bank("full_body", 1024, 1024)]
    out = apply(pose_nodes, controlnets["union_v1"], vae=FluxVae(), keypoints=square_pose, latent=latent(832, 1216))
    hint = out[2]
    assert hint.shape == (1, 1216, 832, 3) and hint.dtype == torch.float32
    assert "re-fitted" in out[3] and "WARNING" not in out[3]
    expected = pose_nodes.posekit.render_pose(pose_nodes.posekit.fit_to_canvas(square_pose[0], 832, 1216))
    assert np.array_equal((hint[0].numpy() * 255).round().astype(np.uint8), expected)
    same_aspect = apply(pose_nodes, controlnets["union_v1"], vae=FluxVae(),
                        keypoints=[pose_bank("full_body", 416, 608)], latent=latent(832, 1216))
    assert "re-fitted" not in same_aspect[3] and same_aspect[2].shape == (1, 1216, 832, 3)


def test_chaining_and_zero_strength(pose_nodes, controlnets):
    first = apply(pose_nodes, controlnets["union_v1"], vae=FluxVae(), keypoints=[pose_bank("medium", 512, 512)])
    second = apply(pose_nodes, controlnets["union_pro_2"], positive=first[0], negative=first[1], vae=FluxVae(),
                   keypoints=[pose_bank("medium", 512, 512)])
    assert attached(second).previous_controlnet is attached(first)
    assert second[1][0][1]["control"] is attached(second)
    positive, negative = conditioning(), conditioning()
    zero = apply(pose_nodes, controlnets["union_v1"], positive=positive, negative=negative,  # no VAE needed
                 keypoints=[pose_bank("medium", 512, 512)], strength=0.0)
    assert zero[0] is positive and zero[1] is negative
    with pytest.raises(ValueError, match="image or keypoints"):
        apply(pose_nodes, controlnets["union_v1"], vae=FluxVae())


def test_bank_render_edit_load_and_prompt_nodes(pose_nodes, tmp_path, monkeypatch, comfy_progress_calls):
    monkeypatch.setattr(pose_nodes, "pose_dirs", lambda: [str(tmp_path)])
    kps, image = pose_nodes.PoseFromBank.execute("full_body_arm_up", 832, 1216)
    assert isinstance(kps, list) and kps[0]["canvas_width"] == 832 and image.shape == (1, 1216, 832, 3)

    (rendered,) = pose_nodes.RenderPose.execute(kps, 416, 608, stick_scaling="none")
    assert rendered.shape == (1, 608, 416, 3) and rendered.max() == 1.0
    comfy_progress_calls.clear()
    (frames,) = pose_nodes.RenderPose.execute(kps * 3, 416, 608)         # three frames: ComfyUI's bar counts them
    assert frames.shape[0] == 3 and comfy_progress_calls[0] == (1, 3) and comfy_progress_calls[-1] == (3, 3)
    with pytest.raises(ValueError, match="both width and height"):
        pose_nodes.RenderPose.execute(kps, 416, 0)

    edited, edited_image = pose_nodes.EditPose.execute(kps, arm="left", arm_raise=0.0, mirror=True,
                                                       placement="fit_to_size", width=1024, height=1024)
    assert edited[0]["canvas_width"] == 1024 and edited_image.shape == (1, 1024, 1024, 3)
    assert pose_nodes.posekit.arm_angles(edited[0], "right")[0] == pytest.approx(0.0, abs=1e-6)

    saved = tmp_path / "mine.json"
    pose_nodes.posekit.save_pose_json(kps, saved)
    assert "mine.json" in pose_nodes.LoadPoseJSON.define_schema().inputs[0].options
    loaded, loaded_image = pose_nodes.LoadPoseJSON.execute("mine.json")
    assert loaded == json.loads(saved.read_text()) and loaded_image.shape == (1, 1216, 832, 3)
    from_text, _ = pose_nodes.LoadPoseJSON.execute(pose_nodes.TEXT_SOURCE, json.dumps(kps[0]))
    assert from_text == kps
    with pytest.raises(ValueError, match="paste pose JSON"):
        pose_nodes.LoadPoseJSON.execute(pose_nodes.TEXT_SOURCE, "  ")

    out = pose_nodes.PoseForPrompt.execute("full body photo of a hiker waving", "", 768, 1344)
    assert out[0] == "full_body_arm_up" and out[2].shape == (1, 1344, 768, 3)
    assert pose_nodes.PoseForPrompt.execute("a close-up", "mine", 512, 512)[0] == "mine"


def test_the_pose_mode_reaches_the_union_model(pose_nodes, controlnets):
    """Run the attached v1 union model as ComfyUI's sampler does (extra args as keywords): the node's
    pose mode changes its residuals, and differs from what ComfyUI's 'openpose' (0, canny) gives."""
    net = attached(apply(pose_nodes, controlnets["union_v1"], vae=FluxVae(), keypoints=[pose_bank("medium", 64, 64)]))
    g = torch.Generator().manual_seed(0)
    inputs = {"x": torch.randn(1, 16, 8, 8, generator=g), "hint": torch.randn(1, 16, 8, 8, generator=g),
              "timesteps": torch.tensor([0.5]), "context": torch.randn(1, 4, 768, generator=g),
              "y": torch.randn(1, 768, generator=g), "guidance": torch.tensor([3.5])}
    model = net.control_model.float()

    def residuals(**extra):
        with torch.no_grad():
            return torch.cat([t.flatten() for t in model(**inputs, **extra)["input"]])

    pose = residuals(**net.extra_args)
    assert net.extra_args == {"control_type": [4]}
    assert not torch.allclose(pose, residuals(control_type=[0]))
    assert torch.equal(pose, residuals(control_type=[4]))
