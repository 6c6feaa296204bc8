"""A tiny Chroma (and Chroma Radiance) transformer in the key layout ComfyUI loads Chroma files from.

Chroma is FLUX.1-schnell's 19 double + 38 single blocks without any per-block modulation weights, no
``time_in``/``vector_in``/``guidance_in``: one ``distilled_guidance_layer`` (an MLP "approximator")
turns timestep, guidance and a modulation index into the shift/scale/gate vectors of every block
(344 of them, which fixes the depths at 19/38). Chroma Radiance works on pixels: a 16x16 patch conv
(``img_in_patch``) instead of ``img_in`` and a small per-patch "NeRF" decoder instead of
``final_layer``.

ComfyUI detects both from the keys, but takes the approximator's width (5120) and output (3072)
and the NeRF sizes as constants of the full-size model, so a file this small loads only with those
read from its shapes (:mod:`.detection`). The text width of 768 lets CLIP-L-sized conditioning drive
it: ComfyUI's T5-XXL, Chroma's real text encoder, is fixed at 4096 wide, so tests feed conditioning
tensors (or CLIP-L's) directly.
"""

from dataclasses import dataclass

import torch

from .files import config_dict, ensure_file
from .flux import ROPE_WIDTH, BlockSizes, double_block, single_block
from .random_weights import SeededTensors

#: width of Chroma's approximator input: timestep (16) + guidance (16) + modulation index (32) embeddings
APPROXIMATOR_IN = 64
LATENT_CHANNELS = 16
RGB = 3


@dataclass(frozen=True)
class TinyChromaConfig(BlockSizes):
    hidden_size: int = 128
    depth: int = 19                   # Chroma's 344 modulation vectors require 19 double ...
    depth_single_blocks: int = 38     # ... and 38 single blocks
    context_in_dim: int = 768
    mlp_ratio: float = 4.0
    approximator_hidden: int = 64     # 5120 in Chroma
    approximator_layers: int = 5
    # Radiance (pixel space): patch size and the per-patch NeRF decoder
    radiance: bool = False
    patch_size: int = 2               # 16 for Radiance
    nerf_hidden_size: int = 16        # 64 in Chroma Radiance
    nerf_mlp_ratio: int = 2           # 4
    nerf_depth: int = 2               # 4
    nerf_max_freqs: int = 4           # 8
    # The approximator's output is every block's shift/scale/gate; drawn small (see flux.modulation_gain).
    modulation_gain: float = 0.25

    def __post_init__(self):
        if self.hidden_size <= 0 or self.hidden_size % ROPE_WIDTH:
            raise ValueError(f"hidden_size must be a positive multiple of {ROPE_WIDTH}; got {self.hidden_size}")
        if (self.depth, self.depth_single_blocks) != (19, 38):
            raise ValueError("Chroma's modulation layout (344 vectors) fixes the depths at 19 double and 38 single "
                             f"blocks; got {self.depth} and {self.depth_single_blocks}")
        if self.radiance != (self.patch_size == 16):
            raise ValueError("Chroma Radiance uses 16x16 pixel patches (ComfyUI 0.8 assumes 16); Chroma uses 2x2 "
                             f"latent patches; got radiance={self.radiance}, patch_size={self.patch_size}")

    @property
    def in_channels(self) -> int:
        return RGB if self.radiance else LATENT_CHANNELS * self.patch_size ** 2


TINY_CHROMA = TinyChromaConfig()
TINY_CHROMA_RADIANCE = TinyChromaConfig(radiance=True, patch_size=16)


def _approximator(t: SeededTensors, c: TinyChromaConfig) -> None:
    p, h = "distilled_guidance_layer", c.approximator_hidden
    t.linear(f"{p}.in_proj", h, APPROXIMATOR_IN)
    for i in range(c.approximator_layers):
        t.linear(f"{p}.layers.{i}.in_layer", h, h)
        t.linear(f"{p}.layers.{i}.out_layer", h, h, gain=0.5)
        t.norm(f"{p}.norms.{i}", h, bias=False, weight_name="scale")
    t.linear(f"{p}.out_proj", c.hidden_size, h, gain=c.modulation_gain)


def _nerf(t: SeededTensors, c: TinyChromaConfig) -> None:
    n = c.nerf_hidden_size
    t.linear("nerf_image_embedder.embedder.0", n, RGB + c.nerf_max_freqs ** 2)
    for i in range(c.nerf_depth):
        t.linear(f"nerf_blocks.{i}.param_generator", 3 * n * n * c.nerf_mlp_ratio, c.hidden_size)
        t.norm(f"nerf_blocks.{i}.norm", n, bias=False, weight_name="scale")
    t.norm("nerf_final_layer_conv.norm", n, bias=False, weight_name="scale")
    t.conv("nerf_final_layer_conv.conv", RGB, n, 3)


def chroma_state_dict(config: TinyChromaConfig = TINY_CHROMA, seed: int = 0,
                      dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    c = config
    t = SeededTensors(seed, dtype)
    if c.radiance:
        t.conv("img_in_patch", c.hidden_size, RGB, c.patch_size)
    else:
        t.linear("img_in", c.hidden_size, c.in_channels)
    t.linear("txt_in", c.hidden_size, c.context_in_dim)
    _approximator(t, c)
    for i in range(c.depth):
        double_block(t, f"double_blocks.{i}", c, modulation=False)
    for i in range(c.depth_single_blocks):
        single_block(t, f"single_blocks.{i}", c, modulation=False)
    if c.radiance:
        _nerf(t, c)
    else:
        t.linear("final_layer.linear", c.in_channels, c.hidden_size)
    return t.tensors


def write_chroma(path, config: TinyChromaConfig = TINY_CHROMA, seed: int = 0,
                 dtype: torch.dtype = torch.bfloat16):
    """Write (or reuse) a tiny Chroma (or Chroma Radiance) ``.safetensors``; returns its path."""
    kind = "chroma_radiance" if config.radiance else "chroma"
    return ensure_file(path, kind, config_dict(config), seed, dtype,
                       lambda: chroma_state_dict(config, seed, dtype), source=__file__)
