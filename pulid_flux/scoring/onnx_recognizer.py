"""Any ArcFace-style ONNX recognizer (CurricularFace, AdaFace, glintr100, w600k_r50 exports, ...) behind
a chosen face detector.

The detector (a :class:`~pulid_flux.face.FaceEngine`, used with ``embed=False``) supplies boxes and
5 keypoints; each face is aligned to the ArcFace template at the recognizer's input size (112, or a
multiple of 112/128) and embedded. The file must have insightface's recognition signature: one
input (N, 3, S, S) with S >= 112 and divisible by 16, one output. Pre-processing follows insightface
(RGB, (x - 127.5) / 127.5, or raw 0..255 for MXNet exports that normalise in-graph).

The recognizer's licence is whatever its authors chose; check it before commercial use.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import PulidWeightsError
from ..face.align import norm_crop
from ..face.arcface import ArcFaceRecognizer
from ..face.faces import Face, FaceEngine, as_rgb_uint8
from ..face.insightface_engine import classify_model, select_providers
from ..face.onnx_signature import read_signature

log = logging.getLogger(__name__)


def load_recognizer(path, *, device: str = "auto", providers: list[str] | None = None) -> ArcFaceRecognizer:
    """An :class:`ArcFaceRecognizer` for the ONNX file ``path``, refusing files that are not recognizers."""
    import onnxruntime

    path = Path(path)
    if not path.is_file():
        raise PulidWeightsError(path, "recognizer file not found")
    sig = read_signature(path)
    task = classify_model(sig)
    if task != "recognition":
        shapes = ", ".join(f"{v.name}{list(v.shape)}" for v in sig.inputs)
        raise PulidWeightsError(
            path, f"not an ArcFace-style recognizer (insightface would route it to: {task or 'nothing'}); "
                  f"it has inputs {shapes} and {len(sig.outputs)} output(s), expected one (N, 3, S, S) input "
                  "with S >= 112 and divisible by 16 and exactly one output")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=list(providers or select_providers(device)))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise PulidWeightsError(path, f"onnxruntime could not load it ({exc.__class__.__name__}: {exc})") from exc
    return ArcFaceRecognizer(session, path, [name for name, _ in sig.first_nodes])


class OnnxRecognizerEngine(FaceEngine):
    """``detector`` finds faces and keypoints; the ONNX recognizer at ``recognizer_path`` embeds them."""

    family = "arcface"
    license_note = "the recognizer's licence is set by its authors; check it before commercial use"

    def __init__(self, recognizer_path, detector: FaceEngine, *, device: str = "auto",
                 providers: list[str] | None = None):
        if not isinstance(detector, FaceEngine):
            raise TypeError(f"detector must be a FaceEngine, got {type(detector).__name__}")
        self.detector = detector
        self.recognizer = load_recognizer(recognizer_path, device=device, providers=providers)
        log.info("ONNX recognizer %s (%d-d, %dx%d input) on faces from %s", self.recognizer.path.name,
                 self.recognizer.embedding_size, self.recognizer.input_size, self.recognizer.input_size,
                 detector.name)

    @property
    def name(self) -> str:
        return f"onnx:{self.recognizer.path.name}@{self.detector.name}"

    @property
    def embedding_size(self) -> int:
        return self.recognizer.embedding_size

    def detect(self, image: np.ndarray, *, order: str = "largest", embed: bool = True) -> list[Face]:
        image = as_rgb_uint8(image)
        found = self.detector.detect(image, order=order, embed=False)
        embeddings = [None] * len(found)
        if embed and found:
            size = self.recognizer.input_size
            embeddings = list(self.recognizer.embed([norm_crop(image, f.kps, size)[0] for f in found]))
        return [Face(bbox=f.bbox, kps=f.kps, score=f.score, embedding=e, engine=self.name,
                     extra={"detector": self.detector.name})
                for f, e in zip(found, embeddings)]

    def embed_aligned(self, crop: np.ndarray) -> np.ndarray:
        return self.recognizer.embed([as_rgb_uint8(crop, "aligned face crop")])[0]
