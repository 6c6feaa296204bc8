"""Tiny FLUX union ControlNets in the InstantX / diffusers ``FluxControlNetModel`` key layout.

Keys (as in InstantX ``FLUX.1-dev-Controlnet-Union`` and Shakker-Labs ``FLUX.1-dev-ControlNet-Union-Pro``
/ ``-Pro-2.0``): ``x_embedder``, ``context_embedder``, ``time_text_embed.{timestep,guidance,text}_embedder``,
``transformer_blocks.N.*`` and ``single_transformer_blocks.N.*`` (diffusers names, separate q/k/v),
``controlnet_blocks.N``, ``controlnet_single_blocks.N``, ``controlnet_x_embedder`` and, for v1-style
union models only, ``controlnet_mode_embedder.weight`` (one row per mode).

ComfyUI 0.33 (``comfy/controlnet.py``) routes a file with ``controlnet_blocks.0.weight`` and
``controlnet_x_embedder.weight`` (and none of the XLabs/SD3/Qwen markers) to
``load_controlnet_flux_instantx``: it converts the diffusers keys to BFL ones, detects the depths
like a Flux model, sets ``num_union_modes`` to the row count of ``controlnet_mode_embedder.weight``
(0 when absent) and ``control_latent_channels`` to ``controlnet_x_embedder.weight.shape[1] // 4``
(16), and builds a latent-input ``ControlNetFlux`` whose residuals are spread over the base
model's fixed 19 double / 38 single blocks. Hence the base Flux must keep the real depths.

* :data:`UNION_PRO` - InstantX Union / Union-Pro v1: 5 double + 10 single blocks, 10 mode rows
  (7 trained: canny 0, tile 1, depth 2, blur 3, pose 4, gray 5, lq 6).
* :data:`UNION_PRO2` - Union-Pro-2.0: 6 double + 0 single blocks, no mode embedder.
"""

from dataclasses import dataclass

import torch

from .files import config_dict, ensure_file
from .flux import LATENT_CHANNELS, PATCH, ROPE_WIDTH, TIMESTEP_FREQ_DIM
from .random_weights import SeededTensors


@dataclass(frozen=True)
class TinyControlNetConfig:
    hidden_size: int = 128
    num_layers: int = 5
    num_single_layers: int = 10
    num_modes: int = 10
    context_in_dim: int = 768
    vec_in_dim: int = 768
    in_channels: int = LATENT_CHANNELS * PATCH * PATCH
    mlp_ratio: float = 4.0
    guidance_embed: bool = True
    modulation_gain: float = 0.25

    def __post_init__(self):
        if self.hidden_size <= 0 or self.hidden_size % ROPE_WIDTH:
            raise ValueError(f"hidden_size must be a positive multiple of {ROPE_WIDTH}; got {self.hidden_size}")
        if self.num_layers < 1:
            raise ValueError("a Flux ControlNet needs at least one double block (controlnet_blocks.0)")

    @property
    def head_dim(self) -> int:
        return ROPE_WIDTH

    @property
    def mlp_hidden(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)


UNION_PRO = TinyControlNetConfig()
UNION_PRO2 = TinyControlNetConfig(num_layers=6, num_single_layers=0, num_modes=0)


def _double_block(t: SeededTensors, p: str, c: TinyControlNetConfig) -> None:
    h, mlp = c.hidden_size, c.mlp_hidden
    t.linear(f"{p}.norm1.linear", 6 * h, h, gain=c.modulation_gain)
    t.linear(f"{p}.norm1_context.linear", 6 * h, h, gain=c.modulation_gain)
    for name in ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj", "to_out.0", "to_add_out"):
        t.linear(f"{p}.attn.{name}", h, h)
    for name in ("norm_q", "norm_k", "norm_added_q", "norm_added_k"):
        t.norm(f"{p}.attn.{name}", c.head_dim, bias=False)
    for ff in ("ff", "ff_context"):
        t.linear(f"{p}.{ff}.net.0.proj", mlp, h)
        t.linear(f"{p}.{ff}.net.2", h, mlp)


def _single_block(t: SeededTensors, p: str, c: TinyControlNetConfig) -> None:
    h, mlp = c.hidden_size, c.mlp_hidden
    t.linear(f"{p}.norm.linear", 3 * h, h, gain=c.modulation_gain)
    for name in ("to_q", "to_k", "to_v"):
        t.linear(f"{p}.attn.{name}", h, h)
    for name in ("norm_q", "norm_k"):
        t.norm(f"{p}.attn.{name}", c.head_dim, bias=False)
    t.linear(f"{p}.proj_mlp", mlp, h)
    t.linear(f"{p}.proj_out", h, h + mlp)


def controlnet_state_dict(config: TinyControlNetConfig = UNION_PRO, seed: int = 0,
                          dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    c = config
    h = c.hidden_size
    t = SeededTensors(seed, dtype)
    t.linear("x_embedder", h, c.in_channels)
    t.linear("context_embedder", h, c.context_in_dim)
    t.linear("time_text_embed.timestep_embedder.linear_1", h, TIMESTEP_FREQ_DIM)
    t.linear("time_text_embed.timestep_embedder.linear_2", h, h)
    if c.guidance_embed:
        t.linear("time_text_embed.guidance_embedder.linear_1", h, TIMESTEP_FREQ_DIM)
        t.linear("time_text_embed.guidance_embedder.linear_2", h, h)
    t.linear("time_text_embed.text_embedder.linear_1", h, c.vec_in_dim)
    t.linear("time_text_embed.text_embedder.linear_2", h, h)
    for i in range(c.num_layers):
        _double_block(t, f"transformer_blocks.{i}", c)
        # Trained (non-zero) output projections; a fresh ControlNet has them zeroed and no effect.
        t.linear(f"controlnet_blocks.{i}", h, h, gain=0.1)
    for i in range(c.num_single_layers):
        _single_block(t, f"single_transformer_blocks.{i}", c)
        t.linear(f"controlnet_single_blocks.{i}", h, h, gain=0.1)
    t.linear("controlnet_x_embedder", h, c.in_channels)
    if c.num_modes:
        t.embedding("controlnet_mode_embedder.weight", c.num_modes, h, std=1.0)
    return t.tensors


def write_controlnet(path, config: TinyControlNetConfig = UNION_PRO, seed: int = 0,
                     dtype: torch.dtype = torch.bfloat16):
    """Write (or reuse) a tiny union ControlNet; returns its path."""
    return ensure_file(path, "flux_controlnet_instantx", config_dict(config), seed, dtype,
                       lambda: controlnet_state_dict(config, seed, dtype), source=__file__)
