"""Let ComfyUI's model detection read the sizes it takes as constants from a tiny file's shapes.

ComfyUI builds a diffusion model from its file's keys and shapes, but some sizes are constants of
the full-size models, which a tiny random-weight file cannot match:

* ComfyUI 0.8's Flux/Chroma detection fixes ``num_heads`` at 24 (FLUX.1's 3072 / 128); newer
  versions compute ``hidden_size / 128``, as this does.
* Chroma's approximator (``distilled_guidance_layer``) is taken as 5120 wide with a 3072-wide output
  and 5 layers, Chroma Radiance's NeRF decoder as 64 wide, 4 deep, 8 frequencies, ratio 4 (and, in
  0.8, 16-pixel patches).

:func:`size_overrides` returns only the entries of a detected ``unet_config`` that contradict the
file's own shapes, so for a real FLUX.1 or Chroma file it returns nothing and :func:`install` changes
nothing. :func:`install` wraps ``comfy.model_detection.detect_unet_config``; tests call it in-process
and the test servers load it as a one-file custom node (``tests/integration/custom_nodes``). It is
never part of the pack's nodes.
"""

import logging
import math
import re

log = logging.getLogger(__name__)

FLUX_LIKE = ("flux", "chroma", "chroma_radiance")
PATCHED_MARK = "_pulid_studio_tiny_sizes"


def _shape(state_dict, key):
    value = state_dict.get(key)
    return None if value is None else tuple(value.shape)


def _count(keys, pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := regex.fullmatch(k))})


def size_overrides(unet_config: dict, state_dict, prefix: str = "") -> dict:
    """The entries of ``unet_config`` that this state dict's shapes contradict, with the file's values."""
    image_model = unet_config.get("image_model")
    if image_model not in FLUX_LIKE:
        return {}
    out = {}
    hidden, heads, axes = unet_config.get("hidden_size"), unet_config.get("num_heads"), unet_config.get("axes_dim")
    if hidden and heads and axes and hidden // heads != sum(axes):
        out["num_heads"] = hidden // sum(axes)
    if image_model in ("chroma", "chroma_radiance"):
        keys = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
        p = prefix + "distilled_guidance_layer."
        in_proj, out_proj = _shape(state_dict, p + "in_proj.weight"), _shape(state_dict, p + "out_proj.weight")
        if in_proj and out_proj:
            found = {"hidden_dim": in_proj[0], "out_dim": out_proj[0],
                     "n_layers": _count(keys, r"distilled_guidance_layer\.layers\.(\d+)\..*")}
            out.update({k: v for k, v in found.items() if unet_config.get(k) != v})
    if image_model == "chroma_radiance":
        embedder = _shape(state_dict, prefix + "nerf_image_embedder.embedder.0.weight")
        generator = _shape(state_dict, prefix + "nerf_blocks.0.param_generator.weight")
        patch = _shape(state_dict, prefix + "img_in_patch.weight")
        if embedder and generator and patch:
            nerf_hidden = embedder[0]
            found = {"nerf_hidden_size": nerf_hidden,
                     "nerf_max_freqs": math.isqrt(embedder[1] - unet_config.get("in_channels", 3)),
                     "nerf_depth": _count(keys, r"nerf_blocks\.(\d+)\..*"),
                     "nerf_mlp_ratio": generator[0] // (3 * nerf_hidden * nerf_hidden),
                     "patch_size": patch[-1]}
            out.update({k: v for k, v in found.items() if unet_config.get(k) != v})
    return out


def install(model_detection) -> None:
    """Wrap ``model_detection.detect_unet_config`` (ComfyUI's module) with :func:`size_overrides`; idempotent."""
    original = model_detection.detect_unet_config
    if getattr(original, PATCHED_MARK, False):
        return

    def detect_unet_config(state_dict, key_prefix, *args, **kwargs):
        config = original(state_dict, key_prefix, *args, **kwargs)
        if isinstance(config, dict):
            overrides = size_overrides(config, state_dict, key_prefix)
            if overrides:
                log.info("tiny model: sizes read from the file instead of ComfyUI's constants: %s", overrides)
                config.update(overrides)
        return config

    setattr(detect_unet_config, PATCHED_MARK, True)
    model_detection.detect_unet_config = detect_unet_config
