"""A random-weight FLUX VAE in the TAESD layout (the ``taef1`` tiny autoencoder of ComfyUI).

Keys: ``taesd_encoder.N.*`` and ``taesd_decoder.N.*`` (N = the layer's index in ComfyUI's
``comfy/taesd/taesd.py`` ``Encoder`` / ``Decoder`` sequences), plus the scalars ``vae_scale`` and
``vae_shift``. Saved as ``vae/ae.safetensors``, ComfyUI's VAELoader reads it like any VAE file:
``comfy.sd.VAE`` sees ``taesd_decoder.1.weight`` and builds ``TAESD`` with
``latent_channels`` = that weight's input channels = 16 and 8x downscaling, the FLUX latent space.

Why TAESD and not the Black Forest Labs ``ae.safetensors`` layout: ComfyUI fixes the width of an
``AutoencodingEngine`` (ch 128 for the encoder, and for the decoder too up to at least 0.8.0; 0.33
reads the decoder's). A full-width decoder takes ~50 s per 448x608 image on one CPU thread, the
TAESD one ~2 s, on every ComfyUI from 0.8.0 on. ~2.5 M parameters, ~5 MB in bf16.
"""

from dataclasses import dataclass

import torch

from .files import config_dict, ensure_file
from .random_weights import SeededTensors

WIDTH = 64                # TAESD's fixed channel count
# A block's last conv is drawn small so that each residual block stays close to its input.
LAST_CONV_GAIN = 0.3


@dataclass(frozen=True)
class TinyVaeConfig:
    latent_channels: int = 16
    image_channels: int = 3


TINY_VAE = TinyVaeConfig()


def _conv(t: SeededTensors, key: str, c_out: int, c_in: int, *, bias: bool = True, gain: float = 1.0) -> None:
    if bias:
        t.conv(key, c_out, c_in, 3, gain=gain)
    else:
        t.draw(f"{key}.weight", (c_out, c_in, 3, 3), gain / (c_in * 9) ** 0.5)


def _block(t: SeededTensors, key: str) -> None:
    """TAESD ``Block(64, 64)``: conv, ReLU, conv, ReLU, conv (+ the identity skip)."""
    _conv(t, f"{key}.conv.0", WIDTH, WIDTH)
    _conv(t, f"{key}.conv.2", WIDTH, WIDTH)
    _conv(t, f"{key}.conv.4", WIDTH, WIDTH, gain=LAST_CONV_GAIN)


# (index, kind) for every layer holding weights, as in ComfyUI's TAESD Encoder / Decoder; the
# other indices are ReLU, Clamp and Upsample layers.
ENCODER_LAYERS = [(0, "conv_in"), (1, "block"),
                  (2, "down"), (3, "block"), (4, "block"), (5, "block"),
                  (6, "down"), (7, "block"), (8, "block"), (9, "block"),
                  (10, "down"), (11, "block"), (12, "block"), (13, "block"),
                  (14, "conv_out")]
DECODER_LAYERS = [(1, "conv_in"), (3, "block"), (4, "block"), (5, "block"), (7, "up"),
                  (8, "block"), (9, "block"), (10, "block"), (12, "up"),
                  (13, "block"), (14, "block"), (15, "block"), (17, "up"),
                  (18, "block"), (19, "conv_out")]


def _layers(t: SeededTensors, prefix: str, layers, c_in: int, c_out: int) -> None:
    for index, kind in layers:
        key = f"{prefix}.{index}"
        if kind == "block":
            _block(t, key)
        elif kind == "conv_in":
            _conv(t, key, WIDTH, c_in)
        elif kind == "conv_out":
            _conv(t, key, c_out, WIDTH)
        else:  # the strided conv before a level, or the conv after an upsample: no bias
            _conv(t, key, WIDTH, WIDTH, bias=False)


def vae_state_dict(config: TinyVaeConfig = TINY_VAE, seed: int = 0,
                   dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    t = SeededTensors(seed, dtype)
    _layers(t, "taesd_encoder", ENCODER_LAYERS, config.image_channels, config.latent_channels)
    _layers(t, "taesd_decoder", DECODER_LAYERS, config.latent_channels, config.image_channels)
    # decode((z - shift) * scale), encode(x) / scale + shift: identity here.
    t.put("vae_scale", torch.tensor(1.0))
    t.put("vae_shift", torch.tensor(0.0))
    return t.tensors


def write_vae(path, config: TinyVaeConfig = TINY_VAE, seed: int = 0, dtype: torch.dtype = torch.bfloat16):
    """Write (or reuse) a tiny FLUX VAE file; returns its path."""
    return ensure_file(path, "flux_vae_taesd", config_dict(config), seed, dtype,
                       lambda: vae_state_dict(config, seed, dtype), source=__file__)
