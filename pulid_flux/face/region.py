"""User-given face regions: a box, and optionally a mask, saying where the face of a photo is.

A region replaces face detection for its photo (see :mod:`.region_locate` for how the face is then
found and aligned). The formats, also described in ``docs/face_region.md``:

* **One region**: ``{"box": [x, y, width, height], "mask": <mask>, "hash": "<content hash>"}``.
  The box is in pixels of the photo *after* its EXIF orientation is applied (what
  :func:`pulid_flux.images.load_rgb` and ComfyUI's Load Image give), ``x, y`` its top-left corner.
  ``mask`` and ``hash`` are optional.
* **Mask**: a PNG of any size with the photo's aspect ratio, stretched over the photo. A pixel is
  face when it is light (luma >= 128) and, if the PNG has an alpha channel, opaque (alpha >= 128).
  In a widget value it is a data URL (``data:image/png;base64,...``); in a sidecar, the name of a
  PNG file in the sidecar's folder.
* **Widget value** of Encode identity (``face_region``): a JSON list, one entry per image of the
  batch, each ``null`` or a region. An entry with a ``hash`` (:func:`pulid_flux.images.content_hash`
  of the image's RGB pixels) goes to the image with that hash, wherever it is in the batch; one whose
  hash matches no image was drawn on another photo and is dropped with a warning. An entry without
  a hash applies to the image at its position. An empty string means no region.
* **Sidecar** ``<photo stem>.face.json`` beside a photo: one region (its ``mask`` a file name).
  Dataset preparation, scoring and the client read it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FaceRegionError
from ..images import list_images

REGION_KEYS = ("box", "mask", "hash")
SIDECAR_SUFFIX = ".face.json"
DATA_URL_PREFIX = "data:image/png;base64,"
#: a box side below this many pixels cannot hold a face to align
MIN_BOX_SIDE = 8
#: the share of the box that must lie inside the photo
MIN_BOX_INSIDE = 0.5
#: mask aspect ratio may differ from the photo's by this much (rounding of a scaled-down mask)
MASK_ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True, eq=False)
class FaceRegion:
    """A box ``(x, y, width, height)`` in photo pixels, an optional mask, and where they came from."""

    box: tuple[float, float, float, float]
    mask: np.ndarray | None = None          # bool (h, w) at the mask's own resolution
    image_hash: str | None = None
    source: str = "face region"             # what the messages call it (a file, a widget entry)

    @property
    def xyxy(self) -> np.ndarray:
        x, y, w, h = self.box
        return np.array([x, y, x + w, y + h], dtype=np.float64)

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, y + h / 2

    @property
    def key(self) -> tuple:
        """Everything that changes what the region does (a cache key component)."""
        digest = None
        if self.mask is not None:
            digest = hashlib.sha256(str(self.mask.shape).encode() + np.packbits(self.mask).tobytes()).hexdigest()
        return tuple(round(float(v), 3) for v in self.box), digest

    def check_image(self, width: int, height: int) -> None:
        """FaceRegionError unless the box lies (mostly) in a ``width`` x ``height`` photo and the
        mask has the photo's aspect ratio."""
        x0, y0, x1, y1 = self.xyxy
        inside = max(0.0, min(x1, width) - max(x0, 0.0)) * max(0.0, min(y1, height) - max(y0, 0.0))
        if inside < MIN_BOX_INSIDE * self.box[2] * self.box[3]:
            raise FaceRegionError(f"{self.source}: the box {format_box(self.box)} lies outside the {width}x{height} "
                                  f"photo (less than {MIN_BOX_INSIDE:.0%} of it inside); boxes are [x, y, width, "
                                  "height] in pixels of the photo after its EXIF orientation")
        if self.mask is not None:
            mh, mw = self.mask.shape
            if abs(mw / mh - width / height) > MASK_ASPECT_TOLERANCE * (width / height):
                raise FaceRegionError(f"{self.source}: the mask is {mw}x{mh} but the photo is {width}x{height}; "
                                      "a mask must have the photo's aspect ratio (it is stretched over the photo)")

    def mask_for(self, width: int, height: int) -> np.ndarray | None:
        """The mask stretched over a ``width`` x ``height`` image: float32 (H, W), 1 = face; None without mask."""
        if self.mask is None:
            return None
        import cv2

        mask = self.mask.astype(np.float32)
        if mask.shape != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
        return mask

    def scaled(self, factor: float) -> FaceRegion:
        """The same region in an image ``factor`` times the size (the mask stretches by itself)."""
        return FaceRegion(tuple(float(v) * factor for v in self.box), self.mask, self.image_hash, self.source)

    def to_dict(self) -> dict:
        """The JSON form, the mask as a PNG data URL."""
        out: dict = {"box": [round(float(v), 2) for v in self.box]}
        if self.mask is not None:
            out["mask"] = DATA_URL_PREFIX + base64.b64encode(encode_mask_png(self.mask)).decode("ascii")
        if self.image_hash:
            out["hash"] = self.image_hash
        return out


def format_box(box) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in box) + "]"


def parse_box(value, where: str) -> tuple[float, float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise FaceRegionError(f"{where}: 'box' must be a list of 4 numbers [x, y, width, height], got {value!r}")
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise FaceRegionError(f"{where}: 'box' must hold 4 numbers [x, y, width, height], got {value!r}") from None
    if isinstance(value[0], bool) or not all(math.isfinite(v) for v in numbers):
        raise FaceRegionError(f"{where}: 'box' must hold 4 finite numbers, got {value!r}")
    if numbers[2] < MIN_BOX_SIDE or numbers[3] < MIN_BOX_SIDE:
        raise FaceRegionError(f"{where}: the box {format_box(numbers)} is {numbers[2]:g}x{numbers[3]:g} px; width and "
                              f"height must be at least {MIN_BOX_SIDE} px ([x, y, width, height], not corners)")
    return numbers


def decode_mask_png(data: bytes, where: str) -> np.ndarray:
    """A mask PNG -> bool (h, w): light (luma >= 128) and, with alpha, opaque (alpha >= 128)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "PNG":
                raise FaceRegionError(f"{where}: the mask must be a PNG image, got {im.format}")
            rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise FaceRegionError(f"{where}: the mask is not a readable PNG ({exc.__class__.__name__}: {exc})") from exc
    luma = 0.299 * rgba[..., 0] + 0.587 * rgba[..., 1] + 0.114 * rgba[..., 2]
    return (luma >= 128) & (rgba[..., 3] >= 128)


def encode_mask_png(mask: np.ndarray) -> bytes:
    """bool (h, w) -> a grayscale PNG (white = face)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _mask(value, where: str, mask_dir: Path | None) -> np.ndarray | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise FaceRegionError(f"{where}: 'mask' must be a PNG data URL or a file name, got {value!r}")
    if value.startswith("data:"):
        if not value.startswith(DATA_URL_PREFIX):
            raise FaceRegionError(f"{where}: 'mask' must be a PNG data URL ({DATA_URL_PREFIX}...)")
        try:
            data = base64.b64decode(value[len(DATA_URL_PREFIX):], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FaceRegionError(f"{where}: 'mask' holds invalid base64 ({exc})") from None
        return decode_mask_png(data, where)
    if mask_dir is None:
        raise FaceRegionError(f"{where}: 'mask' must be a PNG data URL here (file names work in .face.json sidecars)")
    path = mask_dir / value
    if Path(value).is_absolute() or Path(value).name != value:
        raise FaceRegionError(f"{where}: 'mask' must name a PNG file in the same folder, got {value!r}")
    if not path.is_file():
        raise FaceRegionError(f"{where}: the mask file {path} does not exist")
    return decode_mask_png(path.read_bytes(), f"{where} (mask {path.name})")


def region_from_dict(value, where: str, *, mask_dir: Path | None = None) -> FaceRegion:
    """One region from its JSON form; FaceRegionError naming ``where`` and the key otherwise."""
    if not isinstance(value, dict):
        raise FaceRegionError(f"{where}: a region must be an object like {{\"box\": [x, y, width, height]}}, "
                              f"got {type(value).__name__}")
    unknown = sorted(set(value) - set(REGION_KEYS))
    if unknown:
        raise FaceRegionError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; a region holds "
                              f"{', '.join(REGION_KEYS)}")
    if "box" not in value:
        raise FaceRegionError(f"{where}: 'box' is missing ([x, y, width, height] in photo pixels)")
    image_hash = value.get("hash")
    if image_hash is not None and (not isinstance(image_hash, str) or not image_hash):
        raise FaceRegionError(f"{where}: 'hash' must be the image's content hash as a string, got {image_hash!r}")
    return FaceRegion(parse_box(value["box"], where), _mask(value.get("mask"), where, mask_dir), image_hash, where)


def parse_region_list(text, what: str = "face_region") -> list[FaceRegion | None]:
    """The widget value: a JSON list of null / region entries; '' (or None) is an empty list."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return []
    if isinstance(text, str):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FaceRegionError(f"{what}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                                  "expected a list like [{\"box\": [x, y, width, height]}, null]") from None
    else:
        value = text
    if isinstance(value, dict):          # one region for a one-image batch, as a convenience
        value = [value]
    if not isinstance(value, list):
        raise FaceRegionError(f"{what}: expected a list with one entry (null or a region) per image, "
                              f"got {type(value).__name__}")
    return [None if entry is None else region_from_dict(entry, f"{what}[{i}]") for i, entry in enumerate(value)]


def format_region_list(regions: Sequence[FaceRegion | None]) -> str:
    """The widget value for ``regions`` (the inverse of :func:`parse_region_list`)."""
    return json.dumps([None if r is None else r.to_dict() for r in regions], separators=(",", ":"))


def match_regions(entries: Sequence[FaceRegion | None], hashes: Sequence[str],
                  names: Sequence[str]) -> tuple[list[FaceRegion | None], list[str]]:
    """Per image (``hashes``/``names`` in batch order), the region that applies, and warnings for
    entries that apply to none (drawn on another photo, or past the end of the batch)."""
    per_image: list[FaceRegion | None] = [None] * len(hashes)
    warnings = []
    for i, region in enumerate(entries):
        if region is None:
            continue
        if region.image_hash:
            targets = [j for j, h in enumerate(hashes) if h == region.image_hash]
            if not targets:
                warnings.append(f"{region.source} was drawn on another image (hash {region.image_hash[:12]}…, none "
                                f"of the {len(hashes)} image(s) has it); region dropped: draw it again on this photo")
        elif i < len(hashes):
            targets = [i]
        else:
            targets = []
            warnings.append(f"{region.source} is for image {i + 1}, but the batch has {len(hashes)}; region dropped")
        for j in targets:
            if per_image[j] is not None:
                warnings.append(f"{names[j]}: two regions given ({per_image[j].source}, {region.source}); "
                                f"using {per_image[j].source}")
                continue
            per_image[j] = region
    return per_image, warnings


# -- sidecar files ----------------------------------------------------------------------------------


def sidecar_path(photo) -> Path:
    """``<photo stem>.face.json`` beside ``photo``."""
    photo = Path(photo)
    return photo.with_name(photo.stem + SIDECAR_SUFFIX)


def read_sidecar(photo) -> FaceRegion | None:
    """The region of ``photo`` from its sidecar, or None when it has none."""
    path = sidecar_path(photo)
    return read_region_file(path) if path.is_file() else None


def read_region_file(path) -> FaceRegion:
    """One region from a JSON file in the sidecar format (its mask a PNG file in the same folder)."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FaceRegionError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                              "expected {\"box\": [x, y, width, height]}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FaceRegionError(f"{path}: cannot read the face region file ({exc})") from exc
    return region_from_dict(value, str(path), mask_dir=path.parent)


def mask_files(folder) -> set[Path]:
    """Mask PNGs named by the sidecars in ``folder`` (they are not photos)."""
    folder = Path(folder)
    masks = set()
    for sidecar in sorted(folder.glob("*" + SIDECAR_SUFFIX)):
        try:
            value = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue            # read_sidecar reports it when its photo is read
        mask = value.get("mask") if isinstance(value, dict) else None
        if isinstance(mask, str) and not mask.startswith("data:") and Path(mask).name == mask:
            masks.add(folder / mask)
    return masks


def list_photos(folder) -> list[Path]:
    """:func:`pulid_flux.images.list_images` without the mask PNGs that sidecars name."""
    masks = {p.name for p in mask_files(folder)}
    return [p for p in list_images(folder) if p.name not in masks]
