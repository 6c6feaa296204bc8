"""Switch on :mod:`pulid_flux.tiny.detection` inside a ComfyUI started for tiny models.

ComfyUI 0.8.0 fixes Flux's head count at 24 (and Chroma's approximator sizes), which only full-size
files fit; :mod:`pulid_flux.tiny.detection` reads those sizes from a tiny file's shapes instead and
changes nothing for real files. A server started for tiny random-weight models (tests,
``pulid-studio ... --tiny``) sets ``TINY_FLUX_ENV``; the pack then installs it. Never set in a
user's own ComfyUI.

ComfyUI is imported inside the function, so this module imports without it.
"""

from __future__ import annotations

from . import detection

#: Set to "1" in the environment of a ComfyUI server started for tiny models (tests, ``--tiny``).
TINY_FLUX_ENV = "PULID_STUDIO_TINY_FLUX"


def allow_narrow_flux() -> bool:
    """Install the tiny-size detection into ComfyUI's ``comfy.model_detection``.

    Returns True if this call installed it, False if it already was."""
    import comfy.model_detection as model_detection

    already = getattr(model_detection.detect_unet_config, detection.PATCHED_MARK, False)
    detection.install(model_detection)
    return not already
