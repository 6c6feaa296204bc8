"""Nodes: load PuLID-Flux weights and EVA-CLIP, apply an identity to a Flux model."""

import logging

import torch
from comfy_api.v0_0_2 import io

import comfy.model_management as mm
import folder_paths

from ..pulid_flux.engine.inject import UNCOND_MODES, apply_pulid
from ..pulid_flux.engine.model import PulidFlux
from . import paths
from .compat import advanced
from .types import EvaClipType, PulidFluxType, PulidIdentityType, category, display_name, node_id

log = logging.getLogger(__name__)

DTYPES = {"auto": None, "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def resolve_dtype(choice: str) -> torch.dtype:
    dtype = DTYPES[choice]
    if dtype is not None:
        return dtype
    device = mm.get_torch_device()
    if device.type == "cpu":
        return torch.float32
    # bf16 is what the weights were trained in; fp16-only GPUs (V100, T4, 20xx) fall back to fp16.
    return torch.bfloat16 if mm.should_use_bf16(device) else torch.float16


def _dtype_input():
    return io.Combo.Input("dtype", options=list(DTYPES), default="auto", **advanced(io.Combo.Input),
                          tooltip="auto: bfloat16 on GPUs that support it, float16 on older GPUs, float32 on the CPU.")


class LoadPulidFlux(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("LoadPulidFlux"),
            display_name=display_name("Load PuLID-Flux model"),
            category=category("PuLID"),
            description="Loads pulid_flux_v0.9.0 / v0.9.1 weights from models/pulid. Every size is read from the "
                        "file; SDXL PuLID files, LoRAs and damaged downloads are refused with the reason.",
            inputs=[
                io.Combo.Input("pulid_file", options=folder_paths.get_filename_list(paths.PULID),
                               tooltip="A PuLID-Flux safetensors file in models/pulid (or an extra_model_paths "
                                       "'pulid' folder)."),
                _dtype_input(),
            ],
            outputs=[PulidFluxType.Output(display_name="pulid_flux",
                                          tooltip="IDFormer encoder + 20 Flux cross-attention adapters.")],
        )

    @classmethod
    def execute(cls, pulid_file, dtype="auto") -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise(paths.PULID, pulid_file)
        model = PulidFlux.from_file(path, device=mm.unet_offload_device(), dtype=resolve_dtype(dtype))
        return io.NodeOutput(model)


class LoadEvaClip(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("LoadEvaClip"),
            display_name=display_name("Load EVA-CLIP"),
            category=category("PuLID"),
            description="Loads the EVA02-CLIP-L-14-336 visual tower PuLID reads faces with, from models/clip "
                        "(text_encoders): EVA02_CLIP_L_336_psz14_s6B.pt or a safetensors copy. Never downloads.",
            inputs=[
                io.Combo.Input("eva_file", options=paths.eva_files(),
                               tooltip="EVA02_CLIP_L_336_psz14_s6B.pt (only its visual tower is used)."),
                _dtype_input(),
            ],
            outputs=[EvaClipType.Output(display_name="eva_clip",
                                        tooltip="The visual tower; Encode identity reads faces with it.")],
        )

    @classmethod
    def execute(cls, eva_file, dtype="auto") -> io.NodeOutput:
        from ..pulid_flux.engine.eva import EvaVisionTower
        path = folder_paths.get_full_path_or_raise(paths.EVA, eva_file)
        tower = EvaVisionTower.from_file(path, device=mm.unet_offload_device(), dtype=resolve_dtype(dtype))
        return io.NodeOutput(tower)


class ApplyPulidFlux(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("ApplyPulidFlux"),
            display_name=display_name("Apply PuLID-Flux"),
            category=category("PuLID"),
            description="Injects a face identity into a Flux model (after double blocks 0,2,…,18 and single blocks "
                        "0,4,…,36) on a patched copy; the input model is left untouched. Chain several to stack "
                        "identities (use masks to place them). Works with FLUX.1 (Kontext included) and Chroma in any "
                        "weight format; other models are refused with the reason.",
            inputs=[
                io.Model.Input("model", tooltip="A FLUX.1 model (dev, schnell, Krea, Kontext or a fine-tune) or Chroma: "
                                                "bf16, fp8, scaled fp8 or GGUF (ComfyUI-GGUF)."),
                PulidFluxType.Input("pulid_flux", tooltip="From Load PuLID-Flux model."),
                PulidIdentityType.Input("identity", tooltip="From Encode identity or Load identity."),
                io.Float.Input("weight", default=1.0, min=0.0, max=3.0, step=0.05,
                               tooltip="Scale of every identity residual. 0.8-1.0 is the usual range; above 1 "
                                       "faces turn plastic quickly."),
                io.Float.Input("start_at", default=0.0, min=0.0, max=1.0, step=0.001,
                               tooltip="Fraction of the schedule before the identity starts. The official "
                                       "'start_step' of 4 of 28 steps is about 0.14; a later start copies the "
                                       "reference pose less."),
                io.Float.Input("end_at", default=1.0, min=0.0, max=1.0, step=0.001,
                               tooltip="Fraction of the schedule after which the identity stops."),
                io.Combo.Input("uncond", options=list(UNCOND_MODES), default="same", **advanced(io.Combo.Input),
                               tooltip="What the negative (uncond) pass gets when CFG > 1: 'same' identity, the "
                                       "official true-CFG 'uncond_tokens' (the IDFormer's no-identity tokens), "
                                       "or 'none'. Flux-dev with cfg 1 has no negative pass."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Limits the identity to this region of the image (white = identity)."),
            ],
            outputs=[io.Model.Output(tooltip="A patched copy of the model.")],
        )

    @classmethod
    def execute(cls, model, pulid_flux, identity, weight, start_at, end_at, uncond="same", mask=None) -> io.NodeOutput:
        return io.NodeOutput(apply_pulid(model, pulid_flux, identity, weight=weight, start_at=start_at,
                                         end_at=end_at, uncond=uncond, mask=mask))


NODE_LIST = [LoadPulidFlux, LoadEvaClip, ApplyPulidFlux]
