"""A random LoRA for the tiny Flux in the key format ostris/ai-toolkit writes for FLUX.1.

ai-toolkit saves FLUX LoRAs in the diffusers/PEFT layout: ``transformer.<diffusers module>.lora_A.weight``
(rank x in) and ``.lora_B.weight`` (out x rank), no ``alpha`` keys (PEFT has none, so the scale is
1) and ``{"format": "pt"}`` metadata. Its default targets are every Linear of the transformer
blocks, i.e. per double block ``attn.to_q/to_k/to_v``, ``attn.add_q_proj/add_k_proj/add_v_proj``,
``attn.to_out.0``, ``attn.to_add_out``, ``ff.net.0.proj``, ``ff.net.2``, ``ff_context.net.0.proj``,
``ff_context.net.2``, ``norm1.linear``, ``norm1_context.linear``, and per single block
``attn.to_q/to_k/to_v``, ``proj_mlp``, ``proj_out``, ``norm.linear``.

ComfyUI (``comfy/lora.py: model_lora_keys_unet`` with ``comfy.utils.flux_to_diffusers``) maps every
one of these onto the BFL weights, the q/k/v (and ``proj_mlp``) ones as row slices of the fused
``qkv`` / ``linear1`` matrices, so ``LoraLoaderModelOnly`` reports no "lora key not loaded".
``lora_B`` is non-zero (a freshly initialised LoRA has B = 0 and would change nothing).
"""

from dataclasses import dataclass

import torch

from .files import config_dict, ensure_file
from .flux import TINY_FLUX, TinyFluxConfig
from .random_weights import SeededTensors

PREFIX = "transformer."


@dataclass(frozen=True)
class TinyLoraConfig:
    rank: int = 4
    # lora_B std: B @ A then changes each weight by roughly 20% of its own scale, a clearly
    # visible but not destructive edit.
    b_std: float = 0.1


TINY_LORA = TinyLoraConfig()


def lora_targets(flux: TinyFluxConfig = TINY_FLUX) -> dict[str, tuple[int, int]]:
    """diffusers module name -> (out_features, in_features) for every module ai-toolkit trains."""
    h, mlp = flux.hidden_size, flux.mlp_hidden
    targets: dict[str, tuple[int, int]] = {}
    for i in range(flux.depth):
        p = f"transformer_blocks.{i}"
        for name in ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj", "to_out.0", "to_add_out"):
            targets[f"{p}.attn.{name}"] = (h, h)
        for ff in ("ff", "ff_context"):
            targets[f"{p}.{ff}.net.0.proj"] = (mlp, h)
            targets[f"{p}.{ff}.net.2"] = (h, mlp)
        targets[f"{p}.norm1.linear"] = (6 * h, h)
        targets[f"{p}.norm1_context.linear"] = (6 * h, h)
    for i in range(flux.depth_single_blocks):
        p = f"single_transformer_blocks.{i}"
        for name in ("to_q", "to_k", "to_v"):
            targets[f"{p}.attn.{name}"] = (h, h)
        targets[f"{p}.proj_mlp"] = (mlp, h)
        targets[f"{p}.proj_out"] = (h, h + mlp)
        targets[f"{p}.norm.linear"] = (3 * h, h)
    return targets


def lora_state_dict(flux: TinyFluxConfig = TINY_FLUX, config: TinyLoraConfig = TINY_LORA,
                    seed: int = 0, dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    t = SeededTensors(seed, dtype)
    for module, (out_f, in_f) in lora_targets(flux).items():
        key = PREFIX + module
        t.draw(f"{key}.lora_A.weight", (config.rank, in_f), in_f ** -0.5)
        t.draw(f"{key}.lora_B.weight", (out_f, config.rank), config.b_std)
    return t.tensors


def write_lora(path, flux: TinyFluxConfig = TINY_FLUX, config: TinyLoraConfig = TINY_LORA,
               seed: int = 0, dtype: torch.dtype = torch.bfloat16):
    """Write (or reuse) a tiny ai-toolkit-style Flux LoRA; returns its path."""
    return ensure_file(path, "flux_lora_aitoolkit", {"flux": config_dict(flux), "lora": config_dict(config)},
                       seed, dtype, lambda: lora_state_dict(flux, config, seed, dtype),
                       source=__file__, metadata={"format": "pt"})
