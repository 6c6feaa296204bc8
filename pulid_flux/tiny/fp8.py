"""The tiny FLUX.1-dev transformer with fp8 weights, in the two fp8 layouts users download.

* ``fp8_e4m3fn``: every matrix stored as ``float8_e4m3fn`` (biases and norm gains stay bf16), like
  the ``flux1-dev-fp8-e4m3fn.safetensors`` files ComfyUI loads with the default weight dtype.
* ``scaled_fp8``: ComfyUI's own scaled fp8 checkpoints: each matrix divided by a per-tensor scale
  (its largest magnitude over e4m3's 448) before the cast, the scale stored beside it as
  ``<layer>.scale_weight`` (float32) and an empty ``scaled_fp8`` marker tensor. ComfyUI turns these
  into its mixed-precision quantized layers when it loads them.

Both start from exactly the tensors of :mod:`.flux`, so a test can compare against the bf16 file.
"""

import torch

from .files import config_dict, ensure_file
from .flux import TINY_FLUX, TinyFluxConfig, flux_state_dict

FP8 = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8).max          # 448
LAYOUTS = ("fp8_e4m3fn", "scaled_fp8")


def fp8_state_dict(layout: str, config: TinyFluxConfig = TINY_FLUX, seed: int = 0) -> dict[str, torch.Tensor]:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    out = {}
    for name, tensor in flux_state_dict(config, seed, torch.bfloat16).items():
        if tensor.ndim != 2:
            out[name] = tensor
        elif layout == "fp8_e4m3fn":
            out[name] = tensor.float().clamp(-FP8_MAX, FP8_MAX).to(FP8)
        else:
            scale = tensor.float().abs().max().clamp(min=1e-12) / FP8_MAX
            out[name] = (tensor.float() / scale).to(FP8)
            out[name[:-len(".weight")] + ".scale_weight"] = scale.reshape(()).to(torch.float32)
    if layout == "scaled_fp8":
        out["scaled_fp8"] = torch.empty(0, dtype=FP8)
    return out


def write_flux_fp8(path, layout: str = "fp8_e4m3fn", config: TinyFluxConfig = TINY_FLUX, seed: int = 0):
    """Write (or reuse) the tiny Flux in an fp8 ``layout`` (one of :data:`LAYOUTS`); returns its path."""
    return ensure_file(path, f"flux_{layout}", config_dict(config), seed, FP8,
                       lambda: fp8_state_dict(layout, config, seed), source=__file__)
