"""PuLID-Flux Studio's framework-free library: PuLID-Flux math, face pipeline, pose, dataset, scoring.

Importable without ComfyUI. The ComfyUI glue lives in the pack's ``nodes/`` package.
"""

from .errors import IdentityFormatError, NoFaceError, PulidError, PulidWeightsError
from .identity import PulidIdentity, load_identity, save_identity
from .model import PulidFlux

__all__ = [
    "PulidFlux", "PulidIdentity", "save_identity", "load_identity",
    "PulidError", "PulidWeightsError", "NoFaceError", "IdentityFormatError",
]
