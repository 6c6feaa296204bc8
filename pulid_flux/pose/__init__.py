"""OpenPose keypoints for pose ControlNets: the POSE_KEYPOINT layout, JSON files, controlnet_aux-exact
rendering, proportion-keeping edits, a bank of placed poses, prompt-driven composition choice and
ControlNet family detection. Framework-free (numpy + OpenCV); the ComfyUI nodes live in ``nodes/pose.py``.
"""

from .bank import BUILTIN_POSES, UnknownPoseError, list_pose_bank, pose_bank
from .composition import choose_composition
from .edit import (
    arm_angles,
    figure_bounds,
    fit_to_canvas,
    limb_lengths,
    mirror_pose,
    pad_head_margin,
    pose_arm,
    target_aspect_mismatch,
    transform_pose,
)
from .family import (
    FAMILY_CHOICES,
    ControlNetDescription,
    ControlNetFamily,
    FamilySettings,
    check_pose_mode,
    describe_state_dict,
    detect_family,
    family_settings,
    resolve_family,
)
from .jsonio import load_pose_json, pose_from_json_string, pose_to_json_string, save_pose_json
from .keypoints import PoseFormatError, as_frame, as_frames, is_normalized, validate_frame
from .render import STICK_SCALINGS, render_pose, render_poses

__all__ = [
    "BUILTIN_POSES",
    "FAMILY_CHOICES",
    "STICK_SCALINGS",
    "ControlNetDescription",
    "ControlNetFamily",
    "FamilySettings",
    "PoseFormatError",
    "UnknownPoseError",
    "arm_angles",
    "as_frame",
    "as_frames",
    "check_pose_mode",
    "choose_composition",
    "describe_state_dict",
    "detect_family",
    "family_settings",
    "figure_bounds",
    "fit_to_canvas",
    "is_normalized",
    "limb_lengths",
    "list_pose_bank",
    "load_pose_json",
    "mirror_pose",
    "pad_head_margin",
    "pose_arm",
    "pose_bank",
    "pose_from_json_string",
    "pose_to_json_string",
    "render_pose",
    "render_poses",
    "resolve_family",
    "save_pose_json",
    "target_aspect_mismatch",
    "transform_pose",
    "validate_frame",
]
