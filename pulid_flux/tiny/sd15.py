"""A tiny Stable Diffusion 1.5 UNet: a model PuLID-Flux must refuse, as users might wire one to it.

The original LDM key layout (``input_blocks`` / ``output_blocks`` / ``time_embed`` / ``out``) with
the real SD1.5 width (320 channels, a 768-wide cross-attention context, 8 heads), which is what
ComfyUI's detection needs to call it ``SD15``, but one resolution level with one ResNet block and one
spatial transformer, and no middle block: about 12 M parameters instead of 860 M.
"""

from dataclasses import dataclass

import torch

from .files import config_dict, ensure_file
from .random_weights import SeededTensors


@dataclass(frozen=True)
class TinySD15Config:
    channels: int = 320          # SD1.5's model_channels; ComfyUI's detection requires it
    context_dim: int = 768
    latent_channels: int = 4
    ff_mult: int = 4

    @property
    def time_dim(self) -> int:
        return 4 * self.channels


TINY_SD15 = TinySD15Config()


def _resblock(t: SeededTensors, prefix: str, c: TinySD15Config, in_ch: int) -> None:
    ch = c.channels
    t.norm(f"{prefix}.in_layers.0", in_ch)
    t.conv(f"{prefix}.in_layers.2", ch, in_ch, 3)
    t.linear(f"{prefix}.emb_layers.1", ch, c.time_dim)
    t.norm(f"{prefix}.out_layers.0", ch)
    t.conv(f"{prefix}.out_layers.3", ch, ch, 3, gain=0.5)
    if in_ch != ch:
        t.conv(f"{prefix}.skip_connection", ch, in_ch, 1)


def _transformer(t: SeededTensors, prefix: str, c: TinySD15Config) -> None:
    ch = c.channels
    t.norm(f"{prefix}.norm", ch)
    t.conv(f"{prefix}.proj_in", ch, ch, 1)
    b = f"{prefix}.transformer_blocks.0"
    for attn, kv_dim in (("attn1", ch), ("attn2", c.context_dim)):
        t.linear(f"{b}.{attn}.to_q", ch, ch, bias=False)
        t.linear(f"{b}.{attn}.to_k", ch, kv_dim, bias=False)
        t.linear(f"{b}.{attn}.to_v", ch, kv_dim, bias=False)
        t.linear(f"{b}.{attn}.to_out.0", ch, ch)
    t.linear(f"{b}.ff.net.0.proj", 2 * c.ff_mult * ch, ch)      # GEGLU: value and gate
    t.linear(f"{b}.ff.net.2", ch, c.ff_mult * ch)
    for i in (1, 2, 3):
        t.norm(f"{b}.norm{i}", ch)
    t.conv(f"{prefix}.proj_out", ch, ch, 1, gain=0.5)


def sd15_state_dict(config: TinySD15Config = TINY_SD15, seed: int = 0,
                    dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    c = config
    t = SeededTensors(seed, dtype)
    t.linear("time_embed.0", c.time_dim, c.channels)
    t.linear("time_embed.2", c.time_dim, c.time_dim)
    t.conv("input_blocks.0.0", c.channels, c.latent_channels, 3)
    _resblock(t, "input_blocks.1.0", c, c.channels)
    _transformer(t, "input_blocks.1.1", c)
    # Each output block takes the matching input block's output as a skip (320 + 320 channels).
    _resblock(t, "output_blocks.0.0", c, 2 * c.channels)
    _resblock(t, "output_blocks.1.0", c, 2 * c.channels)
    t.norm("out.0", c.channels)
    t.conv("out.2", c.latent_channels, c.channels, 3)
    return {f"model.diffusion_model.{k}": v for k, v in t.tensors.items()}


def write_sd15_unet(path, config: TinySD15Config = TINY_SD15, seed: int = 0, dtype: torch.dtype = torch.float16):
    """Write (or reuse) the tiny SD1.5 UNet (checkpoint key prefix, fp16); returns its path."""
    return ensure_file(path, "sd15_unet", config_dict(config), seed, dtype,
                       lambda: sd15_state_dict(config, seed, dtype), source=__file__)
