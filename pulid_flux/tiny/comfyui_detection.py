"""Let a ComfyUI whose Flux detection fixes 24 attention heads load the tiny (narrow) Flux files.

ComfyUI derives a Flux file's configuration from its tensors (``comfy.model_detection.
detect_unet_config``). Newer builds (0.33) compute the head count as hidden_size / sum(axes_dim),
so the tiny Flux and ControlNets (hidden 128 -> one head of width 128) load as they are. Older
ones (0.8.0) set ``num_heads = 24`` for every Flux file, which fits only FLUX.1's real width of
3072 and makes any narrower file fail with "Hidden size 128 must be divisible by num_heads 24".

:func:`allow_narrow_flux` wraps the detection so that a Flux configuration whose head count does
not fit its width gets the head count newer ComfyUI derives; configurations that already fit (every
real FLUX.1 file, and everything on newer ComfyUI) are returned untouched. It is installed only
where tiny models run: in test processes and in servers started for tiny runs (which set
``TINY_FLUX_ENV`` for the pack to install it); never in a user's own ComfyUI.

ComfyUI is imported inside the function, so this module imports without it.
"""

from __future__ import annotations

import functools
import logging

log = logging.getLogger(__name__)

#: Set to "1" in the environment of a ComfyUI server started for tiny models (tests, ``--tiny``).
TINY_FLUX_ENV = "PULID_STUDIO_TINY_FLUX"
_MARK = "_pulid_studio_narrow_flux"


def fit_flux_heads(config):
    """``config`` with ``num_heads`` = hidden_size / sum(axes_dim) when its head count does not fit."""
    if not isinstance(config, dict) or config.get("image_model") != "flux":
        return config
    head_dim = sum(config.get("axes_dim") or ())
    hidden, heads = config.get("hidden_size"), config.get("num_heads")
    if not head_dim or not hidden or not heads or hidden == heads * head_dim or hidden % head_dim:
        return config
    fitted = dict(config, num_heads=hidden // head_dim)
    log.info("PuLID-Flux Studio tiny models: Flux of width %d detected with %d heads; using %d heads of %d",
             hidden, heads, fitted["num_heads"], head_dim)
    return fitted


def allow_narrow_flux() -> bool:
    """Wrap ``comfy.model_detection.detect_unet_config`` with :func:`fit_flux_heads` (once).

    Returns True if the wrapper was installed by this call, False if it already was.
    """
    import comfy.model_detection as detection

    original = detection.detect_unet_config
    if getattr(original, _MARK, False):
        return False

    @functools.wraps(original)
    def detect_unet_config(*args, **kwargs):
        return fit_flux_heads(original(*args, **kwargs))

    setattr(detect_unet_config, _MARK, True)
    detection.detect_unet_config = detect_unet_config
    return True
