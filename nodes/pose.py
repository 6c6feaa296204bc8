"""ComfyUI nodes for OpenPose keypoints and pose ControlNets (glue over ``pulid_flux.pose``)."""

import logging
import os

import numpy as np
import torch
from comfy_api.v0_0_2 import io, ui

from ..pulid_flux import pose as posekit
from .compat import advanced
from .paths import POSES
from .previews import UIParts, image_preview, persistent_ui
from .types import PoseKeypointType, category, display_name, node_id

log = logging.getLogger(__name__)

CATEGORY = category("Pose")
MAX_SIZE = 16384
ASPECT_TOLERANCE = 0.02
TEXT_SOURCE = "(json_text below)"
ARM_CHOICES = ("none", "left", "right", "both")
PLACEMENTS = ("keep", "pad_head_margin", "fit_to_size")


# --------------------------------------------------------------------------------------------------
# Helpers


def pose_dirs() -> list[str]:
    """The ``poses`` model folder(s) (registered by ``paths.register_model_folders``), else
    ``models/poses``."""
    import folder_paths

    if POSES in folder_paths.folder_names_and_paths:
        return list(folder_paths.get_folder_paths(POSES))
    return [os.path.join(folder_paths.models_dir, POSES)]


def _pose_files() -> dict[str, str]:
    found = {}
    for folder in pose_dirs():
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                if name.lower().endswith(".json") and name not in found:
                    found[name] = os.path.join(folder, name)
    return found


def to_image_batch(maps) -> torch.Tensor:
    """RGB uint8 (H, W, 3) maps -> ComfyUI IMAGE (B, H, W, 3) float in 0-1."""
    return torch.from_numpy(np.stack(maps)).float() / 255.0


def _stick_input():
    return io.Combo.Input("stick_scaling", options=list(posekit.STICK_SCALINGS), default="none",
                          **advanced(io.Combo.Input),
                          tooltip="'none' draws like the OpenPose/DWPose preprocessors (stick half-width 4). "
                                  "'xinsir' widens sticks on big canvases: x3 at 1024 px, x4 at 2048 px.")


def _size_inputs(default, zero_means):
    minimum = 0 if zero_means else 64
    return [
        io.Int.Input("width", default=default, min=minimum, max=MAX_SIZE, step=8,
                     tooltip="Canvas width in pixels." + (f" 0 = {zero_means}." if zero_means else "")),
        io.Int.Input("height", default=default, min=minimum, max=MAX_SIZE, step=8,
                     tooltip="Canvas height in pixels." + (f" 0 = {zero_means}." if zero_means else "")),
    ]


# --------------------------------------------------------------------------------------------------
# Family detection on a loaded ComfyUI ControlNet


def describe_loaded_controlnet(control_net) -> posekit.ControlNetDescription:
    """Read a loaded ``comfy.controlnet`` object into the library's ControlNetDescription."""
    model = getattr(control_net, "control_model", None)
    if model is None:  # T2I adapters, control-LoRAs before sampling
        return posekit.ControlNetDescription("other")
    if hasattr(model, "controlnet_blocks") and hasattr(model, "double_blocks"):
        embedder = getattr(model, "controlnet_mode_embedder", None)
        modes = int(embedder.weight.shape[0]) if embedder is not None else 0
        return posekit.ControlNetDescription("flux", modes, len(model.double_blocks),
                                             len(getattr(model, "single_blocks", ())))
    if hasattr(model, "input_hint_block") and hasattr(model, "zero_convs"):
        task = getattr(model, "task_embedding", None)
        return posekit.ControlNetDescription("unet", int(task.shape[0]) if task is not None else 0)
    return posekit.ControlNetDescription("other")


def _hint_scale(control_net, vae) -> int:
    """Latent-to-pixel factor the ControlNet resizes its hint to at sampling time."""
    ratio = int(getattr(control_net, "compression_ratio", 8))
    if getattr(control_net, "latent_format", None) is not None:
        ratio *= int(vae.spacial_compression_encode()) if vae is not None else 8
    return ratio


# --------------------------------------------------------------------------------------------------
# Nodes


class PoseFromBank(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        names = posekit.list_pose_bank(pose_dirs())
        return io.Schema(
            node_id=node_id("PoseFromBank"),
            **persistent_ui(),
            display_name=display_name("Pose from Bank"),
            category=CATEGORY,
            description="A ready pose (headshot, portrait, medium, full body, full body with an arm up, or a "
                        "JSON file from the 'poses' model folder) placed for the canvas: crown 18 % below the "
                        "top, centred, inside the canvas.",
            inputs=[
                io.Combo.Input("name", options=names, default="portrait",
                               tooltip="Built-in framings, then the .json files of the 'poses' model folder."),
                *_size_inputs(1024, None),
                io.Float.Input("head_margin", default=0.18, min=0.0, max=0.6, step=0.01, **advanced(io.Float.Input),
                               tooltip="Gap above the top of the head, as a fraction of the canvas height."),
                _stick_input(),
            ],
            outputs=[
                PoseKeypointType.Output("keypoints", display_name="keypoints",
                                        tooltip="The placed pose (POSE_KEYPOINT)."),
                io.Image.Output("pose_image", display_name="pose_image", tooltip="The pose drawn as an OpenPose map."),
            ],
        )

    @classmethod
    def execute(cls, name, width, height, head_margin=0.18, stick_scaling="none") -> io.NodeOutput:
        frame = posekit.pose_bank(name, width, height, pose_dirs(), head_margin=head_margin)
        image = to_image_batch([posekit.render_pose(frame, width, height, stick_scaling=stick_scaling)])
        return io.NodeOutput([frame], image, ui=image_preview(cls, image))


class RenderPose(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("RenderPose"),
            **persistent_ui(),
            display_name=display_name("Render Pose"),
            category=CATEGORY,
            description="Draw keypoints exactly as the OpenPose/DWPose preprocessors do (limbs at 60 %, "
                        "stick width 4, joint radius 4). Every frame of the list becomes one image.",
            inputs=[
                PoseKeypointType.Input("keypoints", tooltip="POSE_KEYPOINT: normalised (0-1) or pixel coordinates."),
                *_size_inputs(0, "the first frame's canvas size"),
                io.Boolean.Input("draw_body", default=True, tooltip="Draw the 18-point body skeleton."),
                io.Boolean.Input("draw_hands", default=True, tooltip="Draw hand keypoints when present."),
                io.Boolean.Input("draw_face", default=True, tooltip="Draw face keypoints when present."),
                _stick_input(),
            ],
            outputs=[io.Image.Output("pose_image", display_name="pose_image", tooltip="One OpenPose map per frame.")],
        )

    @classmethod
    def execute(cls, keypoints, width=0, height=0, draw_body=True, draw_hands=True, draw_face=True,
                stick_scaling="none") -> io.NodeOutput:
        if (width == 0) != (height == 0):
            raise ValueError(f"Render Pose: set both width and height, or both to 0 (got {width}x{height})")
        maps = posekit.render_poses(keypoints, width or None, height or None, draw_body=draw_body,
                                    draw_hands=draw_hands, draw_face=draw_face, stick_scaling=stick_scaling)
        images = to_image_batch(maps)
        return io.NodeOutput(images, ui=image_preview(cls, images))


class EditPose(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("EditPose"),
            **persistent_ui(),
            display_name=display_name("Edit Pose"),
            category=CATEGORY,
            description="Raise or lower an arm (limb lengths kept), mirror, and place the figure: keep it, "
                        "add head-room, or fit it to a new canvas size. Applied in that order, to every frame.",
            inputs=[
                PoseKeypointType.Input("keypoints", tooltip="The pose to edit (POSE_KEYPOINT)."),
                io.Combo.Input("arm", options=list(ARM_CHOICES), default="none",
                               tooltip="Which of the subject's arms to pose ('left' is on the image's right "
                                       "for a figure facing the camera)."),
                io.Float.Input("arm_raise", default=90.0, min=-180.0, max=180.0, step=1.0,
                               tooltip="Upper-arm angle from hanging down: 0 down, 90 out to the side, 180 straight "
                                       "up; negative crosses the body."),
                io.Float.Input("elbow_bend", default=0.0, min=-180.0, max=180.0, step=1.0,
                               tooltip="Forearm angle relative to the upper arm; positive keeps turning the same "
                                       "way (upwards for an arm held out)."),
                io.Boolean.Input("mirror", default=False,
                                 tooltip="Flip left-right, swapping the subject's left and right keypoints."),
                io.Combo.Input("placement", options=list(PLACEMENTS), default="keep",
                               tooltip="keep: leave the figure where it is. pad_head_margin: shrink it so the gap "
                                       "above the head is at least head_margin. fit_to_size: scale and centre it "
                                       "on a width x height canvas."),
                *_size_inputs(1024, None),
                io.Float.Input("head_margin", default=0.18, min=0.0, max=0.6, step=0.01,
                               tooltip="Gap above the top of the head, as a fraction of the canvas height "
                                       "(pad_head_margin and fit_to_size)."),
                _stick_input(),
            ],
            outputs=[
                PoseKeypointType.Output("keypoints", display_name="keypoints",
                                        tooltip="The edited pose, in the input's units."),
                io.Image.Output("pose_image", display_name="pose_image",
                                tooltip="The edited pose drawn as an OpenPose map."),
            ],
        )

    @classmethod
    def execute(cls, keypoints, arm="none", arm_raise=90.0, elbow_bend=0.0, mirror=False, placement="keep",
                width=1024, height=1024, head_margin=0.18, stick_scaling="none") -> io.NodeOutput:
        frames = posekit.as_frames(keypoints)
        sides = {"none": (), "left": ("left",), "right": ("right",), "both": ("left", "right")}[arm]
        edited = []
        for frame in frames:
            for side in sides:
                frame = posekit.pose_arm(frame, side, arm_raise, elbow_bend)
            if mirror:
                frame = posekit.mirror_pose(frame)
            if placement == "pad_head_margin":
                frame = posekit.pad_head_margin(frame, head_margin)
            elif placement == "fit_to_size":
                frame = posekit.fit_to_canvas(frame, width, height, head_margin=head_margin)
            edited.append(frame)
        images = to_image_batch(posekit.render_poses(edited, stick_scaling=stick_scaling))
        return io.NodeOutput(edited, images, ui=image_preview(cls, images))


class LoadPoseJSON(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("LoadPoseJSON"),
            **persistent_ui(),
            display_name=display_name("Load Pose JSON"),
            category=CATEGORY,
            description="Load POSE_KEYPOINT JSON (controlnet_aux's 'Save Pose Keypoints' format) from the "
                        "'poses' model folder, or from pasted text.",
            inputs=[
                io.Combo.Input("file", options=[TEXT_SOURCE] + list(_pose_files()), default=TEXT_SOURCE,
                               tooltip="A .json file of the 'poses' model folder, or the text below."),
                io.String.Input("json_text", multiline=True, default="", optional=True,
                                tooltip="Pose JSON used when 'file' is set to the text option."),
                _stick_input(),
            ],
            outputs=[
                PoseKeypointType.Output("keypoints", display_name="keypoints",
                                        tooltip="The pose as read (a list of frames)."),
                io.Image.Output("pose_image", display_name="pose_image",
                                tooltip="Every frame drawn at its canvas size."),
            ],
        )

    @classmethod
    def fingerprint_inputs(cls, file, json_text="", stick_scaling="none"):
        path = _pose_files().get(file)
        return (file, json_text, stick_scaling, os.path.getmtime(path) if path else None)

    @classmethod
    def execute(cls, file, json_text="", stick_scaling="none") -> io.NodeOutput:
        if file == TEXT_SOURCE:
            if not json_text.strip():
                raise ValueError("Load Pose JSON: choose a file or paste pose JSON into json_text")
            pose = posekit.pose_from_json_string(json_text, source="json_text")
        else:
            files = _pose_files()
            if file not in files:
                raise FileNotFoundError(f"Load Pose JSON: {file!r} is not in the pose folders {pose_dirs()}")
            pose = posekit.load_pose_json(files[file])
        frames = posekit.as_frames(pose)
        images = to_image_batch(posekit.render_poses(frames, stick_scaling=stick_scaling))
        return io.NodeOutput(frames, images, ui=image_preview(cls, images))


class PoseForPrompt(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        names = posekit.list_pose_bank(pose_dirs())
        return io.Schema(
            node_id=node_id("PoseForPrompt"),
            **persistent_ui(),
            display_name=display_name("Pose for Prompt"),
            category=CATEGORY,
            description="Choose the pose-bank framing from the prompt's shot words (close-up, portrait, medium "
                        "shot, full body, arm raised...) or an explicit tag, and place it for the canvas, so one "
                        "workflow serves mixed prompts.",
            inputs=[
                io.String.Input("prompt", multiline=True, default="",
                                tooltip="The generation prompt; its shot words pick the framing."),
                io.String.Input("tag", default="",
                                tooltip="Optional explicit choice: a pose-bank name or a shot word. Wins over "
                                        "the prompt."),
                *_size_inputs(1024, None),
                io.Combo.Input("default", options=names, default="portrait",
                               tooltip="Framing used when the prompt names none."),
                _stick_input(),
            ],
            outputs=[
                io.String.Output("composition", display_name="composition", tooltip="The chosen pose-bank name."),
                PoseKeypointType.Output("keypoints", display_name="keypoints",
                                        tooltip="The chosen pose placed for the canvas."),
                io.Image.Output("pose_image", display_name="pose_image", tooltip="The pose drawn as an OpenPose map."),
            ],
        )

    @classmethod
    def execute(cls, prompt, tag="", width=1024, height=1024, default="portrait",
                stick_scaling="none") -> io.NodeOutput:
        dirs = pose_dirs()
        name = posekit.choose_composition(prompt, tag or None, available=posekit.list_pose_bank(dirs),
                                          default=default)
        frame = posekit.pose_bank(name, width, height, dirs)
        image = to_image_batch([posekit.render_pose(frame, width, height, stick_scaling=stick_scaling)])
        return io.NodeOutput(name, [frame], image,
                             ui=UIParts(ui.PreviewText(f"composition: {name}"), image_preview(cls, image)))


class ApplyPoseControlNet(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("ApplyPoseControlNet"),
            **persistent_ui(),
            display_name=display_name("Apply Pose ControlNet"),
            category=CATEGORY,
            description="Apply a pose ControlNet with the right mode for its family: FLUX InstantX/Union-Pro v1 "
                        "gets pose mode 4 (ComfyUI's type list would send canny), Union-Pro 2.0 no mode, xinsir "
                        "SDXL union mode 0. Keypoints are rendered (and re-fitted) for the latent size; an image "
                        "whose aspect is off by more than 2 % is reported, since ComfyUI centre-crops it.",
            inputs=[
                io.Conditioning.Input("positive", tooltip="Positive conditioning to attach the ControlNet to."),
                io.Conditioning.Input("negative", tooltip="Negative conditioning to attach the ControlNet to."),
                io.ControlNet.Input("control_net", tooltip="A loaded pose or union ControlNet."),
                io.Vae.Input("vae", optional=True,
                             tooltip="The VAE; required by FLUX InstantX-format ControlNets (they encode the pose "
                                     "map to latents)."),
                io.Image.Input("image", optional=True, tooltip="A ready pose map. Used instead of keypoints."),
                PoseKeypointType.Input("keypoints", optional=True,
                                       tooltip="Keypoints to render at the target size (used when no image)."),
                io.Latent.Input("latent", optional=True,
                                tooltip="The latent to generate; sets the target size the pose must match."),
                *_size_inputs(0, "take the size from the latent, else from the keypoints' canvas"),
                io.Combo.Input("family", options=list(posekit.FAMILY_CHOICES), default="auto",
                               tooltip="auto detects the family from the model; or force one."),
                io.Float.Input("strength", default=-1.0, min=-1.0, max=10.0, step=0.01,
                               tooltip="ControlNet strength; -1 = the family default (Union-Pro 2.0: 0.9, "
                                       "InstantX/Union v1: 0.85, others: 1.0)."),
                io.Float.Input("start_percent", default=0.0, min=0.0, max=1.0, step=0.001, **advanced(io.Float.Input),
                               tooltip="Sampling progress at which the ControlNet starts acting."),
                io.Float.Input("end_percent", default=-1.0, min=-1.0, max=1.0, step=0.001,
                               tooltip="Sampling progress at which it stops; -1 = the family default "
                                       "(Union-Pro 2.0: 0.65, InstantX/Union v1: 0.8, others: 1.0)."),
                _stick_input(),
            ],
            outputs=[
                io.Conditioning.Output("positive", display_name="positive",
                                       tooltip="Positive conditioning with the ControlNet."),
                io.Conditioning.Output("negative", display_name="negative",
                                       tooltip="Negative conditioning with the ControlNet."),
                io.Image.Output("pose_image", display_name="pose_image",
                                tooltip="The pose map given to the ControlNet."),
                io.String.Output("info", display_name="info",
                                 tooltip="Family, mode, strength and range used, plus any warnings."),
            ],
        )

    @classmethod
    def execute(cls, positive, negative, control_net, vae=None, image=None, keypoints=None, latent=None,
                width=0, height=0, family="auto", strength=-1.0, start_percent=0.0, end_percent=-1.0,
                stick_scaling="none") -> io.NodeOutput:
        notes, warnings = [], []

        desc = describe_loaded_controlnet(control_net)
        detected = posekit.detect_family(desc)
        chosen = posekit.resolve_family(family, detected)
        settings = posekit.family_settings(chosen)
        if chosen != detected:
            warnings.append(f"family forced to {chosen.value}; the model looks like {detected.value}")
        mode_problem = posekit.check_pose_mode(chosen, desc)
        if mode_problem:
            warnings.append(mode_problem)
        strength = settings.strength if strength < 0 else strength
        end_percent = settings.end_percent if end_percent < 0 else end_percent
        if start_percent >= end_percent:
            warnings.append(f"start_percent {start_percent} >= end_percent {end_percent}: the ControlNet never acts")

        if getattr(control_net, "latent_format", None) is not None and vae is None and strength != 0:
            raise ValueError("Apply Pose ControlNet: this ControlNet encodes the pose map with the VAE; connect "
                             "the 'vae' input")
        target = cls._target_size(control_net, vae, latent, width, height)
        hint_image = cls._hint(image, keypoints, target, stick_scaling, notes, warnings)

        mode = settings.pose_control_type
        notes.insert(0, f"family {chosen.value} ({'auto' if family == 'auto' else 'forced'}); pose mode "
                        f"{mode if mode is not None else 'none'}; strength {strength:g}; "
                        f"range {start_percent:g}-{end_percent:g}")
        for message in warnings:
            log.warning("Apply Pose ControlNet: %s", message)
        info = "\n".join(notes + [f"WARNING: {w}" for w in warnings])

        preview = UIParts(ui.PreviewText(info), image_preview(cls, hint_image))
        if strength == 0:
            return io.NodeOutput(positive, negative, hint_image, info, ui=preview)
        net = control_net.copy()
        if mode is not None:
            net.set_extra_arg("control_type", [mode])
        # Core's Apply ControlNet (Advanced) puts the net on every entry and chains nets already there.
        from nodes import ControlNetApplyAdvanced    # ComfyUI's own top-level ``nodes`` module

        positive, negative = ControlNetApplyAdvanced().apply_controlnet(positive, negative, net, hint_image, strength,
                                                                        start_percent, end_percent, vae=vae)
        return io.NodeOutput(positive, negative, hint_image, info, ui=preview)

    @staticmethod
    def _target_size(control_net, vae, latent, width, height):
        if latent is not None:
            samples = latent["samples"]
            scale = _hint_scale(control_net, vae)
            return int(samples.shape[-1]) * scale, int(samples.shape[-2]) * scale
        if width > 0 and height > 0:
            return int(width), int(height)
        if width or height:
            raise ValueError(f"Apply Pose ControlNet: set both width and height, or both to 0 (got {width}x{height})")
        return None

    @staticmethod
    def _hint(image, keypoints, target, stick_scaling, notes, warnings):
        if image is not None:
            if keypoints is not None:
                warnings.append("both image and keypoints are connected; the image is used")
            h, w = int(image.shape[1]), int(image.shape[2])
            if target is not None:
                mismatch = posekit.target_aspect_mismatch(w, h, *target)
                if mismatch > ASPECT_TOLERANCE:
                    warnings.append(f"pose image {w}x{h} differs in aspect from the target {target[0]}x{target[1]} "
                                    f"by {mismatch:.1%}; ComfyUI will centre-crop it. Render the pose at the "
                                    f"target size (or connect keypoints instead)")
            else:
                notes.append("no latent or size given: the pose image's aspect was not checked")
            return image
        if keypoints is None:
            raise ValueError("Apply Pose ControlNet: connect a pose image or keypoints")
        frames = posekit.as_frames(keypoints)
        if target is None:
            target = (round(frames[0]["canvas_width"]), round(frames[0]["canvas_height"]))
        fitted = []
        for i, frame in enumerate(frames):
            cw, ch = frame["canvas_width"], frame["canvas_height"]
            if posekit.target_aspect_mismatch(cw, ch, *target) > ASPECT_TOLERANCE:
                frame = posekit.fit_to_canvas(frame, *target)
                notes.append(f"frame {i}: keypoints on a {cw}x{ch} canvas re-fitted for {target[0]}x{target[1]}")
            fitted.append(frame)
        maps = posekit.render_poses(fitted, *target, stick_scaling=stick_scaling)
        notes.append(f"pose rendered at {target[0]}x{target[1]}")
        return to_image_batch(maps)


NODE_LIST = [PoseFromBank, RenderPose, EditPose, LoadPoseJSON, PoseForPrompt, ApplyPoseControlNet]
