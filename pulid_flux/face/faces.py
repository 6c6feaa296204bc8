"""The ``Face`` record every engine returns, and the interface engines implement.

Keypoints follow SCRFD's order, with left/right as seen in the image (not the person's own left):
left eye, right eye, nose tip, left mouth corner, right mouth corner.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

KEYPOINT_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")


@dataclass
class Face:
    """One detected face, in the pixel coordinates of the image given to ``detect``.

    ``embedding`` is the recognizer's raw output (PuLID feeds the raw ArcFace vector, not the
    normalised one); ``None`` when the engine was asked not to embed.
    """

    bbox: np.ndarray                  # (4,) float32: x0, y0, x1, y1
    kps: np.ndarray                   # (5, 2) float32, KEYPOINT_NAMES order
    score: float                      # detector confidence (engine-specific scale)
    embedding: np.ndarray | None = None
    engine: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.bbox = np.asarray(self.bbox, dtype=np.float32).reshape(4)
        self.kps = np.asarray(self.kps, dtype=np.float32).reshape(5, 2)
        self.score = float(self.score)
        if self.embedding is not None:
            self.embedding = np.asarray(self.embedding, dtype=np.float32).reshape(-1)

    @property
    def normed_embedding(self) -> np.ndarray | None:
        if self.embedding is None:
            return None
        norm = float(np.linalg.norm(self.embedding))
        return self.embedding / norm if norm > 0 else self.embedding.copy()

    @property
    def width(self) -> float:
        return float(self.bbox[2] - self.bbox[0])

    @property
    def height(self) -> float:
        return float(self.bbox[3] - self.bbox[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return float(self.bbox[0] + self.bbox[2]) / 2, float(self.bbox[1] + self.bbox[3]) / 2

    def summary(self) -> dict:
        """JSON-friendly description (for node status outputs and logs)."""
        return {"bbox": [round(float(v), 1) for v in self.bbox], "score": round(self.score, 4),
                "kps": [[round(float(x), 1), round(float(y), 1)] for x, y in self.kps], "engine": self.engine}


class FaceEngine(ABC):
    """A face detector + 5-point landmarks + recognizer behind one interface."""

    #: short engine family name ("insightface", "dlib")
    family: str = ""
    #: what the user may do with the model weights; shown in docs and node tooltips
    license_note: str = ""

    @property
    @abstractmethod
    def name(self) -> str:
        """Engine and model identification, e.g. ``insightface:antelopev2``."""

    @property
    def fingerprint(self) -> str:
        """The model and every setting that changes results (a cache key component)."""
        return self.name

    @property
    @abstractmethod
    def embedding_size(self) -> int:
        """Length of the recognizer's vector (512 for glintr100/w600k_r50, 128 for dlib)."""

    @abstractmethod
    def detect(self, image: np.ndarray, *, order: str = "largest", embed: bool = True) -> list[Face]:
        """Faces in an RGB uint8 (H, W, 3) array, sorted by ``order`` (see :mod:`.choice`)."""

    @abstractmethod
    def embed_aligned(self, crop: np.ndarray) -> np.ndarray:
        """Raw recognizer vector of a face already aligned to the 112x112 ArcFace template."""

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} ({self.embedding_size}-d)>"


def as_rgb_uint8(image, what: str = "image") -> np.ndarray:
    """Check that ``image`` is an RGB uint8 (H, W, 3) numpy array and return it C-contiguous."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{what} must be a numpy array (RGB uint8, H x W x 3), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what} must be RGB with shape (H, W, 3), got shape {image.shape}; "
                         "convert grayscale/RGBA images to RGB first")
    if image.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 in 0..255, got dtype {image.dtype}; "
                         "multiply float images in [0, 1] by 255 and round")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"{what} is too small to hold a face: {image.shape[1]}x{image.shape[0]} pixels")
    return np.ascontiguousarray(image)
