"""Adapt the shipped workflows to the tiny random-weight models (tests and ``--tiny`` runs).

Only what the tiny models require changes: model file names, the T5 + CLIP-L text encoder pair, or
Chroma's T5 alone (a T5-XXL cannot be made small), for a CLIP-L alone, the number of steps and, for
speed on a CPU, the image size (halved, same aspect: random-weight pictures show nothing at any
size). PuLID and ControlNet settings stay as shipped.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from .overrides import find_nodes, rename_model, set_input

#: shipped file name -> tiny file name (see pulid_flux.tiny.build.FILES)
TINY_FILE_NAMES = {
    "EVA02_CLIP_L_336_psz14_s6B.pt": "EVA02_CLIP_L_336_psz14_s6B.safetensors",
}
TINY_STEPS = 2
TINY_SIZE_DIVISOR = 2
#: node classes whose width/height set the generation size (kept in step so poses fit the latent)
SIZE_NODES = ("EmptySD3LatentImage", "EmptyLatentImage", "PulidStudioPoseFromBank", "PulidStudioHeadPoseView")


def adapt_for_tiny(prompt: Mapping[str, Any], *, steps: int = TINY_STEPS,
                   size_divisor: int = TINY_SIZE_DIVISOR) -> dict:
    """A copy of ``prompt`` that runs on the tiny models."""
    result = copy.deepcopy(dict(prompt))
    for cls in SIZE_NODES:
        for node_id in find_nodes(result, class_type=cls):
            inputs = result[node_id]["inputs"]
            for key in ("width", "height"):
                if isinstance(inputs.get(key), int) and inputs[key] > 0:
                    # Multiples of 16: Flux latents are patchified 2x2 after the VAE's 8x.
                    inputs[key] = max(16, inputs[key] // size_divisor // 16 * 16)
    for old, new in TINY_FILE_NAMES.items():
        result, _ = rename_model(result, old, new, in_place=True)
    for node_id in find_nodes(result, class_type="DualCLIPLoader"):
        inputs = result[node_id]["inputs"]
        # CLIP-L alone gives Flux-shaped conditioning (768-d tokens + pooled 768) on the tiny Flux.
        clip_l = next((v for k, v in inputs.items() if k.startswith("clip_name") and "clip_l" in str(v)),
                      "clip_l.safetensors")
        result[node_id]["class_type"] = "CLIPLoader"
        result[node_id]["inputs"] = {"clip_name": clip_l, "type": "stable_diffusion", "device": "default"}
    for node_id in find_nodes(result, class_type="CLIPLoader"):
        inputs = result[node_id]["inputs"]
        if "t5" in str(inputs.get("clip_name", "")).lower():
            # Chroma's T5 alone: the tiny Chroma reads CLIP-L's 768-wide tokens the same way.
            result[node_id]["inputs"] = {**inputs, "clip_name": "clip_l.safetensors", "type": "stable_diffusion"}
    for node_id in find_nodes(result, class_type="BasicScheduler"):
        set_input(result, node_id, "steps", steps, in_place=True)
    for node_id in find_nodes(result, class_type="KSampler"):
        set_input(result, node_id, "steps", steps, in_place=True)
    return result
