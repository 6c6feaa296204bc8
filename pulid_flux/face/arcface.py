"""ArcFace-family recognizer (glintr100, w600k_r50, ...) on onnxruntime.

As insightface's ``ArcFaceONNX``: input is an RGB crop aligned to the ArcFace template at the
model's input size, NCHW float32, (x - 127.5) / 127.5 -- unless the graph normalises by itself
(an MXNet export whose first nodes are named ``Sub``/``_minus`` and ``Mul``/``_mul``), in which
case raw 0..255 values go in.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from ..errors import PulidWeightsError

log = logging.getLogger(__name__)


def normalisation_from_nodes(node_names) -> tuple[float, float]:
    """(mean, std) insightface would use, from the names of the graph's first 8 nodes."""
    names = list(node_names)[:8]
    has_sub = any(n.startswith(("Sub", "_minus")) for n in names)
    has_mul = any(n.startswith(("Mul", "_mul")) for n in names)
    return (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)


class ArcFaceRecognizer:
    """One recognizer session: aligned RGB uint8 crops -> raw embedding vectors."""

    def __init__(self, session, path, first_node_names=()):
        self.session = session
        self.path = Path(path)
        inp = session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or not isinstance(shape[2], int) or shape[2] != shape[3]:
            raise PulidWeightsError(self.path, f"recognizer input has shape {shape}; expected (N, 3, S, S)")
        self.input_name = inp.name
        self.output_name = session.get_outputs()[0].name
        self.input_size = int(shape[2])
        self.mean, self.std = normalisation_from_nodes(first_node_names)
        out_shape = session.get_outputs()[0].shape
        if out_shape and isinstance(out_shape[-1], int) and out_shape[-1] > 0:
            self.embedding_size = int(out_shape[-1])
        else:
            self.embedding_size = int(self.embed(np.zeros((1, self.input_size, self.input_size, 3), np.uint8)).shape[1])

    def embed(self, crops) -> np.ndarray:
        """(B, D) raw vectors for aligned RGB uint8 crops ((B, S, S, 3) or a list of (S, S, 3))."""
        crops = [self._fit(np.asarray(c)) for c in crops]
        if not crops:
            return np.zeros((0, getattr(self, "embedding_size", 0)), np.float32)
        batch = (np.stack(crops).astype(np.float32) - self.mean) / self.std
        batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        out = self.session.run([self.output_name], {self.input_name: batch})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(crops), -1)

    def _fit(self, crop: np.ndarray) -> np.ndarray:
        if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
            raise ValueError(f"an aligned face crop must be RGB uint8 (S, S, 3), got {crop.shape} {crop.dtype}")
        if crop.shape[:2] != (self.input_size, self.input_size):
            # insightface's get_feat resizes (blobFromImage) the same way
            crop = cv2.resize(crop, (self.input_size, self.input_size))
        return crop
