"""SCRFD face detector (insightface ``scrfd_10g_bnkps.onnx`` / ``det_10g.onnx``) on onnxruntime.

Pre- and post-processing follow insightface's ``SCRFD.detect`` at a single detection size:

* letterbox: keep the aspect ratio, resize (bilinear) so the image fits ``det_size``, pad with black
  at the right/bottom;
* the network sees RGB planes (insightface feeds BGR with ``swapRB=True``), (x - 127.5) / 128;
* outputs are read by position: scores per stride, then box distances per stride, then keypoint
  offsets per stride; distances are in stride units from the anchor point (x*stride, y*stride);
* score threshold, then greedy NMS at IoU 0.4 (insightface's "+1" pixel areas).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from ..errors import PulidWeightsError

log = logging.getLogger(__name__)

# outputs -> (strides, anchors per location, has keypoints)
LAYOUTS = {
    6: ((8, 16, 32), 2, False),
    9: ((8, 16, 32), 2, True),
    10: ((8, 16, 32, 64, 128), 1, False),
    15: ((8, 16, 32, 64, 128), 1, True),
}
INPUT_MEAN = 127.5
INPUT_STD = 128.0


def parse_size(size, what="det_size") -> tuple[int, int]:
    """An int or (width, height) -> (width, height)."""
    if isinstance(size, (int, np.integer)):
        w = h = int(size)
    else:
        try:
            w, h = (int(v) for v in size)
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be an int or a (width, height) pair, got {size!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"{what} must be positive, got {(w, h)}")
    return w, h


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resize ``image`` to fit (width, height) keeping its aspect ratio; pad right/bottom with black."""
    width, height = size
    h, w = image.shape[:2]
    if h / w > height / width:
        new_h, new_w = height, int(height / (h / w))
    else:
        new_w, new_h = width, int(width * (h / w))
    new_w, new_h = max(new_w, 1), max(new_h, 1)
    scale = new_h / h
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h))
    return canvas, scale


def anchor_centers(rows: int, cols: int, stride: int, anchors: int) -> np.ndarray:
    """(rows*cols*anchors, 2) anchor points, row-major, each location repeated ``anchors`` times."""
    ys, xs = np.mgrid[:rows, :cols]
    points = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(points, anchors, axis=0)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy non-maximum suppression; indices of the kept boxes, best first."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[overlap <= threshold]
    return keep


class ScrfdDetector:
    """One SCRFD onnxruntime session plus its pre/post-processing."""

    def __init__(self, session, path, *, det_size=640, det_thresh: float = 0.5, nms_thresh: float = 0.4):
        self.session = session
        self.path = Path(path)
        self.det_thresh = float(det_thresh)
        self.nms_thresh = float(nms_thresh)
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(outputs) not in LAYOUTS:
            raise PulidWeightsError(self.path, f"has {len(outputs)} outputs; an SCRFD detector has 6, 9, 10 or 15")
        self.strides, self.anchors, has_kps = LAYOUTS[len(outputs)]
        if not has_kps:
            raise PulidWeightsError(self.path, "this SCRFD detector gives no keypoints, which alignment needs; use "
                                               "a *_kps model (scrfd_10g_bnkps.onnx of antelopev2, det_10g.onnx of "
                                               "buffalo_l)")
        self.input_name = inputs[0].name
        self.output_names = [o.name for o in outputs]
        shape = inputs[0].shape
        fixed = shape[2:4] if len(shape) == 4 and all(isinstance(v, int) and v > 0 for v in shape[2:4]) else None
        requested = parse_size(det_size)
        if fixed is not None:
            self.input_size = (fixed[1], fixed[0])
            if requested != self.input_size:
                log.info("%s has a fixed %dx%d input; det_size %s is ignored", self.path.name, *self.input_size,
                         requested)
        else:
            self.input_size = requested
        multiple = max(self.strides)
        if self.input_size[0] % multiple or self.input_size[1] % multiple:
            raise ValueError(f"det_size {self.input_size} must be a multiple of {multiple} for {self.path.name}")

    def blob(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The network input for an RGB uint8 image, and the letterbox scale."""
        canvas, scale = letterbox(image, self.input_size)
        blob = (canvas.astype(np.float32) - INPUT_MEAN) / INPUT_STD
        return np.ascontiguousarray(blob.transpose(2, 0, 1)[None]), scale

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (N, 4), scores (N,), keypoints (N, 5, 2) in ``image`` pixels, best score first."""
        blob, scale = self.blob(image)
        outputs = self.session.run(self.output_names, {self.input_name: blob})
        boxes, scores, kps = self.decode(outputs, blob.shape[2], blob.shape[3])
        if len(scores) == 0:
            return boxes, scores, kps
        boxes /= scale
        kps /= scale
        order = np.argsort(-scores, kind="stable")
        boxes, scores, kps = boxes[order], scores[order], kps[order]
        keep = nms(boxes, scores, self.nms_thresh)
        return boxes[keep], scores[keep], kps[keep]

    def decode(self, outputs, height: int, width: int):
        """Threshold and decode raw outputs (in network-input pixels)."""
        n = len(self.strides)
        all_boxes, all_scores, all_kps = [], [], []
        for i, stride in enumerate(self.strides):
            scores, dist, offs = (self._unbatch(outputs[i + k * n]) for k in range(3))
            centers = anchor_centers(height // stride, width // stride, stride, self.anchors)
            for name, arr, cols in (("scores", scores, 1), ("boxes", dist, 4), ("keypoints", offs, 10)):
                if arr.shape != (len(centers), cols):
                    raise PulidWeightsError(
                        self.path, f"stride-{stride} {name} output has shape {arr.shape}, expected "
                                   f"{(len(centers), cols)} for a {width}x{height} input; not an SCRFD detector?")
            hit = np.where(scores[:, 0] >= self.det_thresh)[0]
            if not hit.size:
                continue
            c = centers[hit]
            d = dist[hit] * stride
            all_boxes.append(np.stack([c[:, 0] - d[:, 0], c[:, 1] - d[:, 1], c[:, 0] + d[:, 2], c[:, 1] + d[:, 3]], 1))
            all_kps.append(c[:, None, :] + offs[hit].reshape(-1, 5, 2) * stride)
            all_scores.append(scores[hit, 0])
        if not all_scores:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
        return (np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_scores).astype(np.float32),
                np.concatenate(all_kps).astype(np.float32))

    @staticmethod
    def _unbatch(array: np.ndarray) -> np.ndarray:
        # Some exports keep a batch axis: (1, N, k) instead of (N, k).
        return array[0] if array.ndim == 3 else array
