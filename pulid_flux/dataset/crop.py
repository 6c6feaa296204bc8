"""Face-aware crop: frame the subject, leave other people out where the geometry allows, blur the rest.

The crop keeps the photographer's framing as far as the rules allow, so close-ups stay close-ups
and full-body shots stay full body:

1. It always holds the subject's head and shoulders (as much of them as the photo has).
2. It holds at most ``max_extent_faces`` face heights vertically, starting at most 1.5 face heights
   above the face (a full body is about 9 face heights).
3. Another face that overlaps it is left out by moving one edge (the cut that keeps the most picture
   wins) unless that would cut into the head and shoulders; faces (with a margin for hair and ears)
   left inside, even partly, are blurred.
4. Width / height is brought inside [min_aspect, max_aspect] by trimming around the face (the
   bottom first when too tall: headroom and the face matter more than the feet).
5. The output size has both sides multiples of ``multiple`` (FLUX buckets are 32 px), the short
   side at least ``min_side`` and the long side at most ``max_side``; the crop is trimmed by a few
   pixels to that exact aspect.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from .items import CropPlan
from .options import SHOT_TYPES, PrepareOptions

# Head and shoulders around a face box (face widths sideways, face heights up and down): shoulders
# span about 2.8 face widths; the top of the head is ~0.6 face heights above a detector's box.
SHOULDERS_HALF_WIDTH = 1.4
HEAD_TOP = 0.6
SHOULDERS_BELOW = 1.0
MAX_HEADROOM = 1.5
# Other faces are avoided with this margin (hair, ears) around their boxes, and blurred over their
# box grown by these shares of its size: left/right, above (hair), below (chin).
AVOID_MARGIN = 0.25
BLUR_SIDE, BLUR_ABOVE, BLUR_BELOW = 0.3, 0.6, 0.3

Box = tuple[float, float, float, float]


def shot_type(face_ratio: float, ratios: Sequence[float]) -> str:
    """Shot type from face height / image height (see ``PrepareOptions.shot_ratios``)."""
    for name, lower in zip(SHOT_TYPES, ratios):
        if face_ratio >= lower:
            return name
    return SHOT_TYPES[-1]


def _w(b: Box) -> float:
    return b[2] - b[0]


def _h(b: Box) -> float:
    return b[3] - b[1]


def _intersects(a: Box, b: Box) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _grow(b: Box, factor: float) -> Box:
    """``b`` scaled about its centre by ``factor``."""
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    hw, hh = _w(b) * factor / 2, _h(b) * factor / 2
    return cx - hw, cy - hh, cx + hw, cy + hh


def _usable_area(b: Box, min_aspect: float, max_aspect: float) -> float:
    """Area left once ``b`` is trimmed into the aspect range (what a candidate crop is worth)."""
    w, h = _w(b), _h(b)
    if w <= 0 or h <= 0:
        return 0.0
    return min(w, h * max_aspect) * min(h, w / min_aspect)


def head_and_shoulders(face: Box, width: int, height: int) -> Box:
    fw, fh = _w(face), _h(face)
    cx = (face[0] + face[2]) / 2
    return (max(0.0, cx - SHOULDERS_HALF_WIDTH * fw), max(0.0, face[1] - HEAD_TOP * fh),
            min(float(width), cx + SHOULDERS_HALF_WIDTH * fw), min(float(height), face[3] + SHOULDERS_BELOW * fh))


def _avoid(crop: Box, keep: Box, other: Box, min_aspect: float, max_aspect: float) -> Box | None:
    """``crop`` with one edge moved so it misses ``other`` without cutting ``keep``; None if impossible."""
    candidates = []
    if other[0] >= keep[2]:
        candidates.append((crop[0], crop[1], other[0], crop[3]))
    if other[2] <= keep[0]:
        candidates.append((other[2], crop[1], crop[2], crop[3]))
    if other[1] >= keep[3]:
        candidates.append((crop[0], crop[1], crop[2], other[1]))
    if other[3] <= keep[1]:
        candidates.append((crop[0], other[3], crop[2], crop[3]))
    candidates = [c for c in candidates if _w(c) > 0 and _h(c) > 0]
    if not candidates:
        return None
    return max(candidates, key=lambda c: _usable_area(c, min_aspect, max_aspect))


def _place(lo: float, hi: float, size: float, want: float, need_lo: float, need_hi: float) -> float:
    """Start of a ``size``-long span inside [lo, hi], near ``want``, holding [need_lo, need_hi] if it fits."""
    start = want
    if need_hi - need_lo <= size:
        start = min(max(start, need_hi - size), need_lo)
    else:
        start = need_lo                          # cannot hold it all: keep its start (the head)
    return min(max(start, lo), hi - size)


def _fit_aspect(crop: Box, keep: Box, face: Box, lo_aspect: float, hi_aspect: float) -> Box:
    """Trim ``crop`` to an aspect in [lo_aspect, hi_aspect], around ``keep`` and ``face``."""
    x0, y0, x1, y1 = crop
    w, h = x1 - x0, y1 - y0
    if w > h * hi_aspect:
        new_w = h * hi_aspect
        cx = (face[0] + face[2]) / 2
        start = _place(x0, x1, new_w, cx - new_w / 2, keep[0], keep[2])
        return start, y0, start + new_w, y1
    if w < h * lo_aspect:
        new_h = w / lo_aspect
        start = _place(y0, y1, new_h, y0, keep[1], keep[3])
        return x0, start, x1, start + new_h
    return crop


def output_size(width: float, height: float, options: PrepareOptions) -> tuple[int, int]:
    """(width, height) for a crop: multiples of ``multiple``, short side >= min_side, long <= max_side."""
    m = options.multiple
    short, long_ = min(width, height), max(width, height)
    scale = max(options.min_side / short, 1.0)
    scale = min(scale, options.max_side / long_)
    out_short = max(math.ceil(options.min_side / m) * m, round(short * scale / m) * m)
    out_long = max(out_short, min(int(options.max_side // m) * m, round(long_ * scale / m) * m))
    return (out_short, out_long) if width <= height else (out_long, out_short)


def _to_pixels(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0 = max(0, round(box[0])), max(0, round(box[1]))
    x1, y1 = min(width, round(box[2])), min(height, round(box[3]))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def plan_crop(width: int, height: int, face_box, other_boxes: Sequence, options: PrepareOptions) -> CropPlan:
    """The crop of a ``width`` x ``height`` photo around ``face_box`` (see the module docstring)."""
    face: Box = tuple(float(v) for v in face_box)
    fh = _h(face)
    keep = head_and_shoulders(face, width, height)
    top = max(0.0, face[1] - MAX_HEADROOM * fh)
    crop: Box = (0.0, top, float(width), min(float(height), top + options.max_extent_faces * fh))
    others = sorted((tuple(float(v) for v in b) for b in other_boxes), key=lambda b: -_w(b) * _h(b))
    avoided = 0
    for other in others:
        grown = _grow(other, 1 + 2 * AVOID_MARGIN)
        if not _intersects(grown, crop):
            continue
        moved = _avoid(crop, keep, grown, options.min_aspect, options.max_aspect)
        if moved is None and _intersects(other, crop):
            moved = _avoid(crop, keep, other, options.min_aspect, options.max_aspect)
        if moved is not None:
            crop = moved
            avoided += 1
    box, out_size = _final_box(crop, keep, face, width, height, options)
    # A face avoided only up to its bare box may still show hair or an ear at the edge: blur that too.
    blurred = [list(map(float, b)) for b in others if _intersects(_grow(b, 1 + 2 * AVOID_MARGIN), box)]
    ratio = fh / (box[3] - box[1])
    return CropPlan(box=box, output_size=out_size, shot=shot_type(ratio, options.shot_ratios),
                    face_ratio=float(ratio), blurred=blurred if options.blur_other_faces else [], avoided=avoided)


def _final_box(crop: Box, keep: Box, face: Box, width: int, height: int, options: PrepareOptions):
    """(pixel box, output size): ``crop`` trimmed into the aspect range, then a few pixels more so it
    has the output's exact aspect (no stretching on resize)."""
    crop = _fit_aspect(crop, keep, face, options.min_aspect, options.max_aspect)
    out_w, out_h = output_size(_w(crop), _h(crop), options)
    target = out_w / out_h
    crop = _fit_aspect(crop, keep, face, target, target)
    return _to_pixels(crop, width, height), (out_w, out_h)


def plan_full_frame(width: int, height: int, face_box, options: PrepareOptions) -> CropPlan:
    """The whole photo as the training image (``others: keep``): trimmed only to the aspect limits and
    the output's exact aspect, around the subject; nobody is cropped away or blurred."""
    face: Box = tuple(float(v) for v in face_box)
    keep = head_and_shoulders(face, width, height)
    box, out_size = _final_box((0.0, 0.0, float(width), float(height)), keep, face, width, height, options)
    ratio = _h(face) / (box[3] - box[1])
    return CropPlan(box=box, output_size=out_size, shot=shot_type(ratio, options.shot_ratios),
                    face_ratio=float(ratio))


def plan_subject_crop(width: int, height: int, face_box, other_boxes: Sequence, options: PrepareOptions) -> CropPlan:
    """The crop for ``options.others``: the whole frame for "keep", else :func:`plan_crop`."""
    if options.others == "keep":
        return plan_full_frame(width, height, face_box, options)
    return plan_crop(width, height, face_box, other_boxes, options)


def blur_faces(image: np.ndarray, boxes: Sequence) -> np.ndarray:
    """A copy of ``image`` with each face box (grown to cover hair and ears) blurred beyond recognition."""
    out = image.copy()
    h, w = image.shape[:2]
    for box in boxes:
        bx0, by0, bx1, by1 = (float(v) for v in box)
        bw, bh = bx1 - bx0, by1 - by0
        region = (bx0 - BLUR_SIDE * bw, by0 - BLUR_ABOVE * bh, bx1 + BLUR_SIDE * bw, by1 + BLUR_BELOW * bh)
        x0, y0, x1, y1 = _to_pixels(region, w, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        size = max(_w(region), _h(region))
        patch = out[y0:y1, x0:x1].astype(np.float32)
        sigma = max(2.0, size / 5)
        blurred = cv2.GaussianBlur(patch, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        # A feathered ellipse a little wider than the region (so its corners are covered too): no
        # hard rectangle edge in the training image.
        mask = np.zeros(patch.shape[:2], np.float32)
        rx0, ry0 = region[0] - x0, region[1] - y0
        centre = (round(rx0 + _w(region) / 2), round(ry0 + _h(region) / 2))
        axes = (max(1, int(_w(region) * 0.6)), max(1, int(_h(region) * 0.6)))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, size / 20))[..., None]
        out[y0:y1, x0:x1] = np.clip(patch * (1 - mask) + blurred * mask + 0.5, 0, 255).astype(np.uint8)
    return out


def render_crop(image: np.ndarray, plan: CropPlan,
                upscaler: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """The training image: crop, blur the faces in ``plan.blurred``, resize to ``plan.output_size``.

    ``upscaler`` (RGB uint8 -> larger RGB uint8, e.g. a super-resolution model) runs first when the
    crop must grow; Lanczos then brings it to the exact size.
    """
    from PIL import Image

    x0, y0, x1, y1 = plan.box
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    if plan.blurred:
        crop = blur_faces(crop, [[b[0] - x0, b[1] - y0, b[2] - x0, b[3] - y0] for b in plan.blurred])
    out_w, out_h = plan.output_size
    if upscaler is not None and (out_w > crop.shape[1] or out_h > crop.shape[0]):
        crop = upscaler(crop)
    if (crop.shape[1], crop.shape[0]) == (out_w, out_h):
        return crop
    return np.asarray(Image.fromarray(crop).resize((out_w, out_h), Image.Resampling.LANCZOS))
