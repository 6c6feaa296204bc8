"""Which pose ControlNet family a model is, and what pose mode and defaults that family needs.

======================  =====================================================  ===========  ===============
family                  recognised by                                          pose mode    strength / end
======================  =====================================================  ===========  ===============
``instantx_union_v1``   FLUX ControlNet with a mode embedder (InstantX Union,  index 4      0.85 / 0.8
                        Shakker Union-Pro v1: canny 0 tile 1 depth 2 blur 3
                        pose 4 gray 5 lq 6)
``union_pro_2``         FLUX ControlNet without a mode embedder, 6 double and  none         0.9 / 0.65
                        0 single blocks (Shakker Union-Pro 2.0)
``sdxl_union``          UNet ControlNet with a task embedding (xinsir union)   index 0      1.0 / 1.0
``plain``               anything else (single-purpose pose ControlNets)        none         1.0 / 1.0
======================  =====================================================  ===========  ===============

ComfyUI's "Set Union ControlNet Type" list is xinsir's order (openpose = 0), which on the FLUX v1
union selects *canny*; its pose is the entry ComfyUI calls "normal" (4). Union-Pro 2.0 has no mode
input at all. Union-Pro 2.0's defaults are its model card's pose settings; v1's card recommends
0.3-0.8 overall, pose being its weakest mode, hence the upper end.

``describe_state_dict`` reads a checkpoint's keys (diffusers/InstantX or ComfyUI names);
the ComfyUI node reads a loaded ControlNet object into the same ``ControlNetDescription``.
"""

import re
from dataclasses import dataclass
from enum import Enum


class ControlNetFamily(str, Enum):
    INSTANTX_UNION_V1 = "instantx_union_v1"
    UNION_PRO_2 = "union_pro_2"
    SDXL_UNION = "sdxl_union"
    PLAIN = "plain"


@dataclass(frozen=True)
class ControlNetDescription:
    """What family detection needs to know about a ControlNet.

    ``architecture``: "flux" (a FLUX ControlNet), "unet" (SD1.x/SDXL ControlNet) or "other".
    ``union_modes``: rows of the FLUX mode embedder, or of the SDXL union task embedding; 0 if none.
    """

    architecture: str
    union_modes: int = 0
    double_blocks: int = 0
    single_blocks: int = 0


@dataclass(frozen=True)
class FamilySettings:
    pose_control_type: int | None   # the ``control_type`` index for pose, None = set no mode
    strength: float
    end_percent: float


FAMILY_SETTINGS = {
    ControlNetFamily.INSTANTX_UNION_V1: FamilySettings(4, 0.85, 0.8),
    ControlNetFamily.UNION_PRO_2: FamilySettings(None, 0.9, 0.65),
    ControlNetFamily.SDXL_UNION: FamilySettings(0, 1.0, 1.0),
    ControlNetFamily.PLAIN: FamilySettings(None, 1.0, 1.0),
}
FAMILY_CHOICES = ("auto",) + tuple(f.value for f in ControlNetFamily)
UNION_PRO_2_BLOCKS = (6, 0)


def detect_family(desc: ControlNetDescription) -> ControlNetFamily:
    if desc.architecture == "flux":
        if desc.union_modes > 0:
            return ControlNetFamily.INSTANTX_UNION_V1
        if (desc.double_blocks, desc.single_blocks) == UNION_PRO_2_BLOCKS:
            return ControlNetFamily.UNION_PRO_2
        return ControlNetFamily.PLAIN
    if desc.architecture == "unet" and desc.union_modes > 0:
        return ControlNetFamily.SDXL_UNION
    return ControlNetFamily.PLAIN


def resolve_family(choice: str, detected: ControlNetFamily) -> ControlNetFamily:
    """``choice`` is "auto" (use ``detected``) or a family value that overrides it."""
    if choice == "auto":
        return detected
    try:
        return ControlNetFamily(choice)
    except ValueError:
        raise ValueError(f"unknown ControlNet family {choice!r}; choose one of {', '.join(FAMILY_CHOICES)}") from None


def family_settings(family: ControlNetFamily) -> FamilySettings:
    return FAMILY_SETTINGS[ControlNetFamily(family)]


def check_pose_mode(family: ControlNetFamily, desc: ControlNetDescription) -> str | None:
    """A warning when the family's pose mode cannot work on the described model, else None."""
    idx = family_settings(family).pose_control_type
    if idx is not None and desc.union_modes and idx >= desc.union_modes:
        return (f"family {family.value} selects pose mode {idx}, but the model has only "
                f"{desc.union_modes} modes")
    if idx is not None and desc.union_modes == 0 and desc.architecture in ("flux", "unet"):
        return (f"family {family.value} selects pose mode {idx}, but this ControlNet has no mode embedding, "
                f"so the mode is ignored")
    return None


def _count(keys, pattern):
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in keys for m in [rx.match(k)] if m}
    return max(found) + 1 if found else 0


def _rows(value) -> int:
    shape = getattr(value, "shape", value)
    return int(shape[0])


def describe_state_dict(state_dict) -> ControlNetDescription:
    """Describe a ControlNet checkpoint from its keys; values may be tensors or shapes."""
    keys = list(state_dict)
    if "controlnet_blocks.0.weight" in keys or "controlnet_blocks.0.linear.weight" in keys:
        double = max(_count(keys, r"transformer_blocks\.(\d+)\."), _count(keys, r"double_blocks\.(\d+)\."))
        single = max(_count(keys, r"single_transformer_blocks\.(\d+)\."), _count(keys, r"single_blocks\.(\d+)\."))
        modes = _rows(state_dict["controlnet_mode_embedder.weight"]) if "controlnet_mode_embedder.weight" in keys else 0
        return ControlNetDescription("flux", modes, double, single)
    unet_markers = ("controlnet_cond_embedding.conv_in.weight", "input_hint_block.0.weight",
                    "control_model.input_hint_block.0.weight", "zero_convs.0.0.weight")
    if any(m in keys for m in unet_markers):
        modes = _rows(state_dict["task_embedding"]) if "task_embedding" in keys else 0
        return ControlNetDescription("unet", modes)
    return ControlNetDescription("other")
