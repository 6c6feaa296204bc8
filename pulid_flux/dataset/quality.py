"""Image measurements for the accept/reject rules: face sharpness, perceptual hash, byte hash."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

#: faces are resized to this square before measuring sharpness, so the number does not depend on
#: the face's pixel size (a large sharp face and a small sharp face score alike)
SHARPNESS_SIZE = 128


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def to_gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def clip_box(box, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Integer box inside the image, or None when nothing of it is inside."""
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, y0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    x1, y1 = min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1, y1


def face_sharpness(image: np.ndarray, box) -> float:
    """Variance of the Laplacian of the face box (its part inside the image) at 128x128, grayscale."""
    h, w = image.shape[:2]
    inside = clip_box(box, w, h)
    if inside is None:
        return 0.0
    x0, y0, x1, y1 = inside
    gray = to_gray(image[y0:y1, x0:x1])
    interp = cv2.INTER_AREA if max(gray.shape) > SHARPNESS_SIZE else cv2.INTER_CUBIC
    gray = cv2.resize(gray, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=interp)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def trim_uniform_borders(gray: np.ndarray, tolerance: int = 10) -> np.ndarray:
    """``gray`` without letterbox/pillarbox bars (border rows and columns of one flat tone).

    A letterboxed copy of a photo is the same picture; without the trim its hash differs.
    """
    rows = (gray.max(axis=1).astype(np.int16) - gray.min(axis=1)) > tolerance
    cols = (gray.max(axis=0).astype(np.int16) - gray.min(axis=0)) > tolerance
    r, c = np.flatnonzero(rows), np.flatnonzero(cols)
    if len(r) < 8 or len(c) < 8:
        return gray
    return gray[r[0]:r[-1] + 1, c[0]:c[-1] + 1]


def perceptual_hash(image: np.ndarray) -> int:
    """63-bit DCT perceptual hash of the picture (borders trimmed): robust to resizing and recompression."""
    gray = trim_uniform_borders(to_gray(image))
    small = cv2.resize(gray.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].reshape(-1)[1:]       # the DC term only says how bright the image is
    bits = low > np.median(low)
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hamming(a: int, b: int) -> int:
    return (int(a) ^ int(b)).bit_count()
