"""Reading photos the way users' folders hold them: EXIF orientation applied, RGB uint8."""

import hashlib
from pathlib import Path

import numpy as np

from .errors import PulidError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class ImageReadError(PulidError):
    """A file could not be read as an image."""


def list_images(folder) -> list[Path]:
    """Image files directly in ``folder`` (jpg, png, webp; any case), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_rgb(path) -> np.ndarray:
    """RGB uint8 (H, W, 3) with the EXIF orientation applied; ImageReadError naming the file otherwise."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: not a readable image ({exc.__class__.__name__}: {exc})") from exc


def content_hash(image: np.ndarray) -> str:
    """Stable hash of pixel content and shape (for caches keyed by what an image shows)."""
    image = np.ascontiguousarray(image)
    h = hashlib.sha256()
    h.update(str((image.shape, str(image.dtype))).encode())
    h.update(image.tobytes())
    return h.hexdigest()


def to_uint8(image) -> np.ndarray:
    """A ComfyUI IMAGE frame (H, W, 3) float in [0, 1] (tensor or array) -> RGB uint8."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.dtype == np.uint8:
        return array
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
