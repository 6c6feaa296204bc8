"""Face library: detection engines (insightface, dlib), face choice, alignment, parsing.

``load_engine(name, **options)`` returns a :class:`FaceEngine` whose ``detect(image)`` gives
:class:`Face` records (bbox, 5 keypoints, score, raw and normalised embedding). This package knows
nothing of PuLID: identity encoding (faces -> PuLID tokens) is the engine's
(:mod:`pulid_flux.engine.encoder`), which uses these pieces.

Licences: insightface's pretrained models are for non-commercial research only; dlib's models are
not so restricted (except the optional 68-point landmark model).
"""

from .align import (
    ARCFACE_TEMPLATE_112,
    FFHQ_BORDER_RGB,
    FFHQ_TEMPLATE_512,
    align_ffhq,
    arcface_transform,
    ffhq_transform,
    norm_crop,
    similarity_lstsq,
    transform_points,
)
from .choice import FACE_ORDERS, choose_face, match_face, sort_faces
from .engines import ENGINES, load_engine
from .faces import KEYPOINT_NAMES, Face, FaceEngine, as_rgb_uint8

# The parser needs torch; detection, choice and alignment do not (scoring and dataset prep run
# without it), so the parsing names are resolved on first use.
_LAZY = {"BiSeNet": ".parsing", "load_bisenet": ".parsing", "parse_labels": ".parsing"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pulid_flux.face' has no attribute {name!r}")

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "ENGINES",
    "FACE_ORDERS",
    "FFHQ_BORDER_RGB",
    "FFHQ_TEMPLATE_512",
    "KEYPOINT_NAMES",
    "BiSeNet",
    "Face",
    "FaceEngine",
    "align_ffhq",
    "arcface_transform",
    "as_rgb_uint8",
    "choose_face",
    "ffhq_transform",
    "load_bisenet",
    "load_engine",
    "match_face",
    "norm_crop",
    "parse_labels",
    "similarity_lstsq",
    "sort_faces",
    "transform_points",
]
