"""A random-weight FLUX autoencoder in the ``ae.safetensors`` (Black Forest Labs) key layout.

Keys: ``encoder.conv_in``, ``encoder.down.I.block.J.*`` (+ ``downsample``), ``encoder.mid.*``,
``encoder.norm_out``, ``encoder.conv_out`` (2 x 16 channels: mean and log-variance), and the mirror
``decoder.*`` with ``up.I.block.J.*`` / ``upsample``; no ``quant_conv``, as in the BFL file.

How ComfyUI 0.33 recognises it (``comfy/sd.py: VAE.__init__``): ``decoder.conv_in.weight`` present,
no ``post_quant_conv`` -> ``AutoencodingEngine`` with ``z_channels`` = ``latent_channels`` =
``decoder.conv_in.weight.shape[1]`` = 16 and 8x downscaling: the Flux (and SD3) VAE. The encoder
widths are *fixed* by ComfyUI (ch 128, ch_mult 1-2-4-4, 2 res blocks per level), so the encoder has
its real size (~34 M parameters). Only the decoder width is read from the file
(``decoder_ch = decoder.conv_in.weight.shape[0] // 4``); its smallest usable value is 32, because
every GroupNorm has 32 groups. The result is ~37 M parameters (~71 MB in bf16) instead of 84 M.
"""

from dataclasses import dataclass

import torch

from .files import config_dict, ensure_file
from .random_weights import SeededTensors

ENCODER_CH = 128          # fixed by ComfyUI's VAE detection
GROUPS = 32               # GroupNorm groups in the LDM autoencoder


@dataclass(frozen=True)
class TinyVaeConfig:
    decoder_ch: int = 32
    ch_mult: tuple = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 16
    image_channels: int = 3

    def __post_init__(self):
        if self.decoder_ch % GROUPS:
            raise ValueError(f"decoder_ch must be a multiple of {GROUPS} (GroupNorm groups); got {self.decoder_ch}")


TINY_VAE = TinyVaeConfig()


def _resnet(t: SeededTensors, prefix: str, c_in: int, c_out: int) -> None:
    t.norm(f"{prefix}.norm1", c_in)
    t.conv(f"{prefix}.conv1", c_out, c_in, 3)
    t.norm(f"{prefix}.norm2", c_out)
    # Second conv drawn small so that each residual block is close to identity at random init.
    t.conv(f"{prefix}.conv2", c_out, c_out, 3, gain=0.3)
    if c_in != c_out:
        t.conv(f"{prefix}.nin_shortcut", c_out, c_in, 1)


def _attention(t: SeededTensors, prefix: str, c: int) -> None:
    t.norm(f"{prefix}.norm", c)
    for name in ("q", "k", "v"):
        t.conv(f"{prefix}.{name}", c, c, 1)
    t.conv(f"{prefix}.proj_out", c, c, 1, gain=0.3)


def _mid(t: SeededTensors, prefix: str, c: int) -> None:
    _resnet(t, f"{prefix}.block_1", c, c)
    _attention(t, f"{prefix}.attn_1", c)
    _resnet(t, f"{prefix}.block_2", c, c)


def _encoder(t: SeededTensors, cfg: TinyVaeConfig) -> None:
    ch = ENCODER_CH
    t.conv("encoder.conv_in", ch, cfg.image_channels, 3)
    block_in = ch
    for level, mult in enumerate(cfg.ch_mult):
        block_out = ch * mult
        for j in range(cfg.num_res_blocks):
            _resnet(t, f"encoder.down.{level}.block.{j}", block_in, block_out)
            block_in = block_out
        if level != len(cfg.ch_mult) - 1:
            t.conv(f"encoder.down.{level}.downsample.conv", block_in, block_in, 3)
    _mid(t, "encoder.mid", block_in)
    t.norm("encoder.norm_out", block_in)
    t.conv("encoder.conv_out", 2 * cfg.z_channels, block_in, 3)


def _decoder(t: SeededTensors, cfg: TinyVaeConfig) -> None:
    ch = cfg.decoder_ch
    block_in = ch * cfg.ch_mult[-1]
    t.conv("decoder.conv_in", block_in, cfg.z_channels, 3)
    _mid(t, "decoder.mid", block_in)
    for level in reversed(range(len(cfg.ch_mult))):
        block_out = ch * cfg.ch_mult[level]
        for j in range(cfg.num_res_blocks + 1):
            _resnet(t, f"decoder.up.{level}.block.{j}", block_in, block_out)
            block_in = block_out
        if level != 0:
            t.conv(f"decoder.up.{level}.upsample.conv", block_in, block_in, 3)
    t.norm("decoder.norm_out", block_in)
    t.conv("decoder.conv_out", cfg.image_channels, block_in, 3)


def vae_state_dict(config: TinyVaeConfig = TINY_VAE, seed: int = 0,
                   dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    t = SeededTensors(seed, dtype)
    _encoder(t, config)
    _decoder(t, config)
    return t.tensors


def write_vae(path, config: TinyVaeConfig = TINY_VAE, seed: int = 0, dtype: torch.dtype = torch.bfloat16):
    """Write (or reuse) a tiny Flux ``ae.safetensors``; returns its path."""
    return ensure_file(path, "flux_vae", config_dict(config), seed, dtype,
                       lambda: vae_state_dict(config, seed, dtype), source=__file__)
