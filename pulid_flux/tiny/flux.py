"""A tiny FLUX.1-dev transformer in the original Black Forest Labs key layout.

The file looks like ``flux1-dev.safetensors`` (``double_blocks.N.*``, ``single_blocks.N.*``,
``img_in``, ``txt_in``, ``time_in``, ``vector_in``, ``guidance_in``, ``final_layer``) with the real
depths (19 double, 38 single blocks) but a hidden size of 128. ComfyUI's ``UNETLoader`` (from
``models/diffusion_models``) detects it as ``supported_models.Flux`` (FLUX.1-dev, because
``guidance_in`` is present): it reads the hidden size from ``img_in``, the text width from
``txt_in``, the pooled width from ``vector_in`` and the depths by counting blocks. It derives the
head count as hidden / sum(axes_dim) = hidden / 128, so the hidden size must be a multiple of 128
(128 -> one head of width 128, which keeps the 3-axis RoPE of FLUX intact).

The text width of 768 lets a CLIP-L text encoder (:mod:`.clip_l`) drive it directly, without T5.
"""

from dataclasses import dataclass

import torch

from .files import config_dict, ensure_file
from .random_weights import SeededTensors

ROPE_WIDTH = 128            # sum of FLUX's RoPE axes (16 + 56 + 56); ComfyUI's heads = hidden / this
TIMESTEP_FREQ_DIM = 256     # sinusoidal embedding width fed to time_in / guidance_in
LATENT_CHANNELS = 16
PATCH = 2


class BlockSizes:
    """Sizes of Flux's stream blocks, from a configuration's ``hidden_size`` and ``mlp_ratio``."""

    @property
    def num_heads(self) -> int:
        return self.hidden_size // ROPE_WIDTH

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)


@dataclass(frozen=True)
class TinyFluxConfig(BlockSizes):
    hidden_size: int = 128
    depth: int = 19
    depth_single_blocks: int = 38
    context_in_dim: int = 768
    vec_in_dim: int = 768
    in_channels: int = LATENT_CHANNELS * PATCH * PATCH
    mlp_ratio: float = 4.0
    guidance_embed: bool = True
    # Modulation (adaLN) projections are drawn smaller than ordinary layers: their outputs gate
    # every residual branch, and unit-scale gates over 57 random blocks would blow the stream up.
    modulation_gain: float = 0.25

    def __post_init__(self):
        if self.hidden_size <= 0 or self.hidden_size % ROPE_WIDTH:
            raise ValueError(f"hidden_size must be a positive multiple of {ROPE_WIDTH} (ComfyUI derives the "
                             f"head count as hidden_size / {ROPE_WIDTH}); got {self.hidden_size}")
        if self.in_channels != LATENT_CHANNELS * PATCH * PATCH:
            raise ValueError(f"in_channels must be {LATENT_CHANNELS * PATCH * PATCH} (16 latent channels in "
                             f"2x2 patches); got {self.in_channels}")


TINY_FLUX = TinyFluxConfig()


def _embedder(t: SeededTensors, prefix: str, hidden: int, in_dim: int) -> None:
    t.linear(f"{prefix}.in_layer", hidden, in_dim)
    t.linear(f"{prefix}.out_layer", hidden, hidden)


def double_block(t: SeededTensors, prefix: str, c, modulation: bool = True) -> None:
    """A DoubleStreamBlock's weights; ``c`` gives hidden_size, head_dim, mlp_hidden, modulation_gain.
    Chroma's blocks (``modulation=False``) take their shift/scale/gate from outside."""
    h = c.hidden_size
    for stream in ("img", "txt"):
        if modulation:
            t.linear(f"{prefix}.{stream}_mod.lin", 6 * h, h, gain=c.modulation_gain)
        t.linear(f"{prefix}.{stream}_attn.qkv", 3 * h, h)
        t.norm(f"{prefix}.{stream}_attn.norm.query_norm", c.head_dim, bias=False, weight_name="scale")
        t.norm(f"{prefix}.{stream}_attn.norm.key_norm", c.head_dim, bias=False, weight_name="scale")
        t.linear(f"{prefix}.{stream}_attn.proj", h, h)
        t.linear(f"{prefix}.{stream}_mlp.0", c.mlp_hidden, h)
        t.linear(f"{prefix}.{stream}_mlp.2", h, c.mlp_hidden)


def single_block(t: SeededTensors, prefix: str, c, modulation: bool = True) -> None:
    """A SingleStreamBlock's weights (see :func:`double_block`)."""
    h = c.hidden_size
    t.linear(f"{prefix}.linear1", 3 * h + c.mlp_hidden, h)
    t.linear(f"{prefix}.linear2", h, h + c.mlp_hidden)
    t.norm(f"{prefix}.norm.query_norm", c.head_dim, bias=False, weight_name="scale")
    t.norm(f"{prefix}.norm.key_norm", c.head_dim, bias=False, weight_name="scale")
    if modulation:
        t.linear(f"{prefix}.modulation.lin", 3 * h, h, gain=c.modulation_gain)


def flux_state_dict(config: TinyFluxConfig = TINY_FLUX, seed: int = 0,
                    dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    c = config
    h = c.hidden_size
    t = SeededTensors(seed, dtype)
    t.linear("img_in", h, c.in_channels)
    t.linear("txt_in", h, c.context_in_dim)
    _embedder(t, "time_in", h, TIMESTEP_FREQ_DIM)
    _embedder(t, "vector_in", h, c.vec_in_dim)
    if c.guidance_embed:
        _embedder(t, "guidance_in", h, TIMESTEP_FREQ_DIM)
    for i in range(c.depth):
        double_block(t, f"double_blocks.{i}", c)
    for i in range(c.depth_single_blocks):
        single_block(t, f"single_blocks.{i}", c)
    t.linear("final_layer.adaLN_modulation.1", 2 * h, h, gain=c.modulation_gain)
    t.linear("final_layer.linear", c.in_channels, h)
    return t.tensors


def write_flux(path, config: TinyFluxConfig = TINY_FLUX, seed: int = 0,
               dtype: torch.dtype = torch.bfloat16):
    """Write (or reuse) a tiny ``flux1-dev.safetensors``; returns its path."""
    return ensure_file(path, "flux", config_dict(config), seed, dtype,
                       lambda: flux_state_dict(config, seed, dtype), source=__file__)
