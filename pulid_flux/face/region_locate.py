"""The face inside a user-given region: found again by the engine, or placed by the box alone.

1. **Re-detection.** The box is enlarged ``CONTEXT`` times around its centre (clipped to the photo)
   and that part of the photo is resized so that its long side is ``REDETECT_SIDE`` pixels (at most
   ``MAX_UPSAMPLE`` times larger): a face too small, or too cluttered, for detection at full size is
   usually found there. The engine (detector and landmarks) runs on it upright, then turned by 90°,
   270° and 180°, until it finds a face whose box has its centre in the user's box and at least
   ``MIN_FACE_INSIDE`` of its area inside it; of several, the one most inside the user's box (then
   the largest) is kept. Its box and keypoints are mapped back to the photo.
2. **Box-only alignment** when nothing is found: the face is taken to be upright and to fill the box
   from hairline to chin and from cheek to cheek. The five FFHQ template points are placed by the
   scale and shift that map ``FACE_BOX_IN_FFHQ_512`` (that face box in the aligned 512 frame) onto
   the user's box (scale from the square roots of the two areas, centres matched), so the aligned
   crop is simply the box, squared and with a margin. Recognition quality may drop: callers warn.
3. **Mask.** The mask, aligned with the face, must leave at least ``MIN_VISIBLE_SHARE`` of the
   face oval ``FACE_OVAL_IN_FFHQ_512`` visible; below that it is an error, not a silently worse identity.

Framework-free (numpy, OpenCV); engines are :class:`~.faces.FaceEngine` objects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..errors import FaceRegionError
from .align import FFHQ_TEMPLATE_512, align_ffhq, ffhq_transform, norm_crop
from .faces import Face, FaceEngine, as_rgb_uint8
from .region import FaceRegion

log = logging.getLogger(__name__)

CONTEXT = 2.0
REDETECT_SIDE = 640
MAX_UPSAMPLE = 8.0
#: quarter turns tried in order: upright, 90° counter-clockwise, 90° clockwise, upside down
ROTATIONS = (0, 1, 3, 2)
MIN_FACE_INSIDE = 0.5
#: hairline-to-chin, cheek-to-cheek face box in the FFHQ-aligned 512 frame, measured with dlib's
#: 68-point landmarks on the shared test photos (jaw line, chin, and a brow-to-nose length above the brows)
FACE_BOX_IN_FFHQ_512 = (113.0, 68.0, 391.0, 475.0)
#: the face oval (cheeks, brows to chin) of the FFHQ-aligned 512 frame: centre x, y and half-axes
FACE_OVAL_IN_FFHQ_512 = (252.0, 297.0, 139.0, 178.0)
MIN_VISIBLE_SHARE = 0.30

MODES = ("redetected", "box-only")


@dataclass
class RegionFace:
    """The face of a region, in photo pixels (``face.embedding`` is set when the engine made one)."""

    face: Face
    mode: str                    # "redetected" | "box-only"
    rotation: int = 0            # degrees the enlarged box was turned counter-clockwise to find it
    faces_found: int = 0         # faces the engine saw in the enlarged box (at that rotation)

    @property
    def box_only(self) -> bool:
        return self.mode == "box-only"

    def describe(self) -> str:
        if self.box_only:
            return "box-only alignment (no face found in the box; quality may drop)"
        turned = {90: " (turned 90° counter-clockwise)", 180: " (upside down)", 270: " (turned 90° clockwise)"}
        return f"face found again in the enlarged box{turned.get(self.rotation, '')}"


def context_window(box_xyxy: np.ndarray, width: int, height: int, context: float = CONTEXT) -> tuple[int, int, int, int]:
    """The enlarged box, clipped to the photo, as integer pixel bounds (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box_xyxy
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hw, hh = (x1 - x0) * context / 2, (y1 - y0) * context / 2
    bounds = (max(0, int(np.floor(cx - hw))), max(0, int(np.floor(cy - hh))),
              min(width, int(np.ceil(cx + hw))), min(height, int(np.ceil(cy + hh))))
    if bounds[2] - bounds[0] < 2 or bounds[3] - bounds[1] < 2:
        raise FaceRegionError(f"the box {box_xyxy.round(1).tolist()} does not overlap the {width}x{height} photo")
    return bounds


def _unrotate(points: np.ndarray, quarter_turns: int, width: float, height: float) -> np.ndarray:
    """Points of ``np.rot90(crop, k)`` back in the crop (``width`` x ``height``) they came from."""
    u, v = points[:, 0], points[:, 1]
    if quarter_turns == 0:
        x, y = u, v
    elif quarter_turns == 1:     # counter-clockwise: (x, y) -> (y, W - x)
        x, y = width - v, u
    elif quarter_turns == 2:
        x, y = width - u, height - v
    else:                        # clockwise: (x, y) -> (H - y, x)
        x, y = v, height - u
    return np.stack([x, y], axis=1)


def _inside_share(bbox: np.ndarray, box: np.ndarray) -> float:
    area = max(bbox[2] - bbox[0], 0.0) * max(bbox[3] - bbox[1], 0.0)
    if area <= 0:
        return 0.0
    ix = max(0.0, min(bbox[2], box[2]) - max(bbox[0], box[0]))
    iy = max(0.0, min(bbox[3], box[3]) - max(bbox[1], box[1]))
    return ix * iy / area


def _in_box(face: Face, box: np.ndarray) -> bool:
    cx, cy = face.center
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3] and _inside_share(face.bbox, box) >= MIN_FACE_INSIDE


def redetect(image: np.ndarray, region: FaceRegion, engine: FaceEngine, *, embed: bool = True) -> RegionFace | None:
    """The face the engine finds in the enlarged, resized box (see the module notes), or None."""
    height, width = image.shape[:2]
    box = region.xyxy
    x0, y0, x1, y1 = context_window(box, width, height)
    crop = image[y0:y1, x0:x1]
    scale = min(REDETECT_SIDE / max(crop.shape[:2]), MAX_UPSAMPLE)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    resized = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    sx, sy = size[0] / crop.shape[1], size[1] / crop.shape[0]
    for turns in ROTATIONS:
        turned = np.ascontiguousarray(np.rot90(resized, turns))
        found = engine.detect(turned, order="largest", embed=embed)
        candidates = []
        for face in found:
            corners = np.array([[face.bbox[0], face.bbox[1]], [face.bbox[2], face.bbox[1]],
                                [face.bbox[0], face.bbox[3]], [face.bbox[2], face.bbox[3]]])
            back = _unrotate(corners, turns, size[0], size[1]) / (sx, sy) + (x0, y0)
            kps = _unrotate(face.kps.astype(np.float64), turns, size[0], size[1]) / (sx, sy) + (x0, y0)
            bbox = np.concatenate([back.min(axis=0), back.max(axis=0)])
            mapped = replace(face, bbox=bbox, kps=kps, extra={**face.extra, "region_rotation": 90 * turns})
            if _in_box(mapped, box):
                candidates.append(mapped)
        if candidates:
            best = max(candidates, key=lambda f: (round(_inside_share(f.bbox, box), 2), f.area))
            return RegionFace(best, "redetected", rotation=90 * turns, faces_found=len(found))
    return None


def box_only_face(region: FaceRegion, engine_name: str = "") -> Face:
    """The face a box implies when no detector finds one: upright, filling the box (module notes, 2)."""
    fx0, fy0, fx1, fy1 = FACE_BOX_IN_FFHQ_512
    x, y, w, h = region.box
    scale = float(np.sqrt(w * h / ((fx1 - fx0) * (fy1 - fy0))))
    centre = np.array([(fx0 + fx1) / 2, (fy0 + fy1) / 2])
    kps = (FFHQ_TEMPLATE_512.astype(np.float64) - centre) * scale + (x + w / 2, y + h / 2)
    return Face(bbox=region.xyxy, kps=kps, score=0.0, embedding=None, engine=engine_name,
                extra={"box_only": True})


def locate_face(image: np.ndarray, region: FaceRegion, engine: FaceEngine | None, *,
                embed: bool = True) -> RegionFace:
    """The region's face in ``image`` (RGB uint8): re-detected by ``engine``, else box-only.

    ``engine`` None skips re-detection (a preview without an engine at hand).
    """
    image = as_rgb_uint8(image, region.source)
    region.check_image(image.shape[1], image.shape[0])
    found = redetect(image, region, engine, embed=embed) if engine is not None else None
    if found is not None:
        return found
    return RegionFace(box_only_face(region, engine.name if engine is not None else ""), "box-only")


def region_embedding(image: np.ndarray, located: RegionFace, engine: FaceEngine) -> np.ndarray:
    """``engine``'s vector of the region's face: the one re-detection made, else from the ArcFace-aligned
    112 crop of the photo (the official no-detection fallback)."""
    if located.face.embedding is not None and located.face.engine == engine.name:
        return located.face.embedding
    crop, _ = norm_crop(image, located.face.kps, 112)
    return np.asarray(engine.embed_aligned(crop), dtype=np.float32)


# -- the mask -------------------------------------------------------------------------------------------


def face_oval(size: int = 512) -> np.ndarray:
    """bool (size, size): the face oval of the FFHQ-aligned frame."""
    cx, cy, ax, ay = (v * size / 512.0 for v in FACE_OVAL_IN_FFHQ_512)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    return ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0


def align_mask(mask: np.ndarray, matrix: np.ndarray, size: int = 512) -> np.ndarray:
    """A float (H, W) mask of the photo warped like the face (2x3 ``matrix``): float32 (size, size)."""
    return cv2.warpAffine(mask.astype(np.float32), np.asarray(matrix, np.float64), (size, size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def visible_share(aligned_mask: np.ndarray) -> float:
    """Share of the face oval the aligned mask leaves visible (0..1)."""
    oval = face_oval(aligned_mask.shape[0])
    return float(np.clip(aligned_mask[oval], 0.0, 1.0).mean())


def check_visible(share: float, where: str) -> None:
    if share < MIN_VISIBLE_SHARE:
        raise FaceRegionError(f"{where}: the mask leaves only {share:.0%} of the face visible (at least "
                              f"{MIN_VISIBLE_SHARE:.0%} is needed for a usable identity); paint the mask over the "
                              "whole face, erase less, or remove the mask")


def region_mask_share(region: FaceRegion, image_shape, matrix: np.ndarray | None = None, *, face: Face | None = None,
                      size: int = 512) -> tuple[np.ndarray | None, float | None]:
    """(the region's mask aligned like the face, its visible share); (None, None) without a mask.

    ``matrix``: the 2x3 alignment of the face in an image of ``image_shape`` (what
    :func:`.align.align_ffhq` returned), or ``face`` to fit it here. Raises FaceRegionError when the
    share is under ``MIN_VISIBLE_SHARE``.
    """
    height, width = image_shape[:2]
    mask = region.mask_for(width, height)
    if mask is None:
        return None, None
    if matrix is None:
        matrix = ffhq_transform(face.kps, size)
    aligned = align_mask(mask, matrix, size)
    share = visible_share(aligned)
    check_visible(share, region.source)
    return aligned, share


def embed_region(image: np.ndarray, region: FaceRegion, engine: FaceEngine) -> tuple[RegionFace, np.ndarray]:
    """The region's face found by ``engine`` with its vector, the mask checked: what scoring and dataset
    preparation use in place of a detected face. The returned face carries the embedding and, in
    ``extra``, the region's source, mode and mask share."""
    located = locate_face(image, region, engine, embed=True)
    _, share = region_mask_share(region, image.shape, face=located.face)
    embedding = region_embedding(image, located, engine)
    if located.box_only:
        log.warning("%s: %s found no face in the box; box-only alignment used, its vector may be less reliable",
                    region.source, engine.name)
    extra = {**located.face.extra, "region": region.source, "region_mode": located.mode, "visible_share": share}
    located.face = replace(located.face, embedding=embedding, engine=engine.name, extra=extra)
    return located, embedding


def region_crop(image: np.ndarray, region: FaceRegion, engine: FaceEngine | None, size: int = 512,
                dim_outside_mask: float = 0.35) -> tuple[np.ndarray, RegionFace, float | None]:
    """What identity encoding will align for this region, as a picture: the FFHQ ``size`` crop of the
    region's face (pixels outside the mask dimmed), the located face, and the mask's visible share.

    Raises FaceRegionError like encoding does (box outside the photo, mask hiding the face)."""
    located = locate_face(image, region, engine, embed=False)
    crop, matrix = align_ffhq(image, located.face.kps, size)
    mask, share = region_mask_share(region, image.shape, matrix, size=size)
    if mask is not None:
        keep = np.clip(mask, 0.0, 1.0)[..., None]
        crop = (crop * (keep + (1 - keep) * dim_outside_mask)).round().astype(np.uint8)
    return crop, located, share
