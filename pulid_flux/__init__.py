"""PuLID-Flux Studio's framework-free library: PuLID-Flux math, face pipeline, pose, dataset, scoring.

Importable without ComfyUI. The ComfyUI glue lives in the pack's ``nodes/`` package. Names are
resolved lazily, so ``import pulid_flux.pose`` (or the client's CLI) does not pay for torch.

Layers (``docs/architecture.md``): the base (:mod:`.errors`, :mod:`.images`, :mod:`.weights`), the
face pipeline (:mod:`.face`), the PuLID engine (:mod:`.engine`), and the features (:mod:`.pose`,
:mod:`.dataset`, :mod:`.scoring`, :mod:`.tiny`). Modules that moved keep their old import path
with a DeprecationWarning (:mod:`._moved`).
"""

import importlib

from . import _moved

_moved.install(__name__)

_EXPORTS = {
    "PulidFlux": ".engine.model",
    "PulidIdentity": ".engine.identity",
    "save_identity": ".engine.identity",
    "load_identity": ".engine.identity",
    "PulidError": ".errors",
    "PulidWeightsError": ".errors",
    "NoFaceError": ".errors",
    "IdentityFormatError": ".errors",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pulid_flux' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
