"""Per-photo measurements: faces (detected once, on a downscaled copy), sharpness, hash, thumbnail."""

from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np

from ..face import Face, FaceEngine
from ..face.region import FaceRegion
from ..face.region_locate import embed_region
from .items import DatasetItem
from .quality import face_sharpness, perceptual_hash

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 256


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """(copy whose long side is at most ``max_side``, scale applied); the image itself when small."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, 1.0
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def detect_faces(engine: FaceEngine, image: np.ndarray, max_side: int) -> list[Face]:
    """All faces, largest first, with boxes and keypoints in ``image`` pixels.

    Detection, landmarks and embeddings run on a copy of at most ``max_side`` pixels: faces big
    enough to train on stay far above every recognizer's input size there, and detection cost
    grows with the pixel count.
    """
    work, scale = downscale(image, max_side)
    faces = engine.detect(work, order="largest", embed=True)
    if scale == 1.0:
        return faces
    return [scale_face(f, 1.0 / scale) for f in faces]


def scale_face(face: Face, factor: float) -> Face:
    """``face`` with its box, keypoints and any raw landmarks multiplied by ``factor``."""
    extra = dict(face.extra)
    if extra.get("landmarks") is not None:
        extra["landmarks"] = np.asarray(extra["landmarks"], dtype=np.float32) * factor
    return dataclasses.replace(face, bbox=face.bbox * factor, kps=face.kps * factor, extra=extra)


def face_size(face: Face) -> float:
    """Linear face size: the square root of the box area (robust to engines' box shapes)."""
    return float(np.sqrt(face.area))


def inside_fraction(face: Face, width: int, height: int) -> float:
    """Share of the face box that lies inside the image (1.0 unless the frame cuts the face)."""
    x0, y0, x1, y1 = (float(v) for v in face.bbox)
    area = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    if area <= 0:
        return 0.0
    ix = max(0.0, min(x1, width) - max(x0, 0.0))
    iy = max(0.0, min(y1, height) - max(y0, 0.0))
    return ix * iy / area


def region_faces(engine: FaceEngine, image: np.ndarray, region: FaceRegion, max_side: int) -> list[Face]:
    """The region's face first (found at full resolution, see :mod:`pulid_flux.face.region_locate`),
    then the detected faces outside the region's box (other people, to avoid or blur)."""
    located, _ = embed_region(image, region, engine)
    x0, y0, x1, y1 = region.xyxy
    others = [f for f in detect_faces(engine, image, max_side)
              if not (x0 <= f.center[0] <= x1 and y0 <= f.center[1] <= y1)]
    return [located.face] + others


def analyze(item: DatasetItem, image: np.ndarray, engine: FaceEngine, detect_max_side: int,
            region: FaceRegion | None = None) -> None:
    """Fill ``item``'s size, faces, per-face sharpness, perceptual hash and thumbnail from ``image``;
    with a ``region`` (the photo's sidecar) its face is ``faces[0]``."""
    item.height, item.width = image.shape[:2]
    item.region = region
    item.faces = (region_faces(engine, image, region, detect_max_side) if region is not None
                  else detect_faces(engine, image, detect_max_side))
    item.sharpness = [face_sharpness(image, f.bbox) for f in item.faces]
    item.phash = perceptual_hash(image)
    thumb, _ = downscale(image, THUMBNAIL_SIDE)
    item.thumbnail = np.ascontiguousarray(thumb)
    if any(f.embedding is None for f in item.faces):
        raise ValueError(f"{item.name}: the face engine {engine.name} returned faces without an embedding")
    log.debug("%s: %dx%d, %d face(s)", item.name, item.width, item.height, len(item.faces))
