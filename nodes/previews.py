"""Canvas previews: images written to ComfyUI's temp folder (as core's PreviewImage does) for the
frontend to show on a node, and a UI output that merges several parts.

Previews are made only when the node runs inside ComfyUI's executor (which gives the node class its
``hidden`` holder): a direct ``execute`` call (scripts, unit tests) has no canvas to show them, and
must not write into the ComfyUI installation's temp folder.
"""

from __future__ import annotations

import secrets

import cv2
import numpy as np
import torch
from comfy_api.v0_0_2 import io, ui

from .compat import schema_options

PREVIEW_PREFIX = "PulidStudio_preview"
THUMBNAIL_SIDE = 512


def persistent_ui() -> dict:
    """``io.Schema`` keyword arguments that make ComfyUI keep a node's UI output (its preview) and
    send it again when the node is cached or the page reloads, as for output nodes
    (``has_intermediate_output``); empty on ComfyUI versions without that flag (0.8.0)."""
    return schema_options(has_intermediate_output=True)


def in_executor(node_cls) -> bool:
    return getattr(node_cls, "hidden", None) is not None


class UIParts:
    """Several UI outputs as one node ``ui`` (ComfyUI calls ``as_dict`` on anything not a dict)."""

    def __init__(self, *parts):
        self.parts = [p for p in parts if p is not None]

    def as_dict(self) -> dict:
        merged = {}
        for part in self.parts:
            merged.update(part if isinstance(part, dict) else part.as_dict())
        return merged


def thumbnail(image: np.ndarray, max_side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """RGB uint8 (H, W, 3) shrunk so its long side is at most ``max_side`` (area filter)."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    k = max_side / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def save_temp_images(images) -> list[dict]:
    """Write RGB uint8 (H, W, 3) arrays (sizes may differ) as PNGs to ComfyUI's temp folder.

    Returns ``{"filename", "subfolder", "type": "temp"}`` per image, what the frontend's /view takes.
    """
    tensors = [torch.from_numpy(np.ascontiguousarray(im)).float().div(255.0) for im in images]
    if not tensors:
        return []
    prefix = f"{PREVIEW_PREFIX}_{secrets.token_hex(3)}"
    saved = ui.ImageSaveHelper.save_images(tensors, filename_prefix=prefix, folder_type=io.FolderType.temp,
                                           cls=None, compress_level=1)
    return [dict(result) for result in saved]


def image_preview(node_cls, images: torch.Tensor):
    """``ui.PreviewImage`` of an IMAGE batch when running in the executor, else None."""
    if not in_executor(node_cls):
        return None
    return ui.PreviewImage(images, cls=node_cls)
