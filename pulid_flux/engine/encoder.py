"""Encode a PuLID identity from reference photos.

Per image (official ``pipeline_flux.get_id_embedding``, with one face choice for everything):

1. shrink so the long side is at most 1024 (Lanczos, as official);
2. detect faces with the detector engine and choose one (largest by default);
3. ArcFace vector: the raw (not normalised) embedding of that face from the recognizer engine. When
   the recognizer is another engine, its detections are matched to the chosen face; if it found no
   face there, the recognizer runs on the 112x112 ArcFace crop made from the chosen face's keypoints
   (the official fallback, which uses facexlib's crop when insightface finds no face);
4. align the chosen face to the FFHQ 512 template, parse it with BiSeNet, paint it gray on white
   (:func:`pulid_flux.engine.eva.face_features_image`) and run EVA: L2-normalised CLS + 5 hidden states;
5. ``id_cond = [ArcFace 512 | EVA CLS 768]`` -> IDFormer -> ID tokens (1, 32, 2048).

A user-given face region (:mod:`pulid_flux.face.region`) replaces step 2 for its image: the face is
found again in the enlarged box, else placed by the box alone (:mod:`pulid_flux.face.region_locate`), and the
region's mask also paints everything outside it white in step 4.

Several images are fused into one token set (``FUSIONS``); the uncond tokens (IDFormer on zeros)
are always added. The recognizer must give the vectors the IDFormer was trained on (512-d
antelopev2 glintr100); dlib's 128-d descriptor is refused as a recognizer but can detect/align.

Per-image work is cached in a caller-held :class:`EncodeCache`, keyed by the image content and
every setting and model that affects it, so re-running with the same inputs computes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..errors import NoFaceError, PulidError
from ..face.align import align_ffhq, norm_crop
from ..face.choice import FACE_ORDERS, choose_face, match_face, sort_faces
from ..face.faces import Face, FaceEngine, as_rgb_uint8
from ..face.parsing import BiSeNet, parse_labels
from ..images import content_hash
from ..face.region import FaceRegion, match_regions
from ..face.region_locate import locate_face, region_mask_share
from .eva import EvaVisionTower, face_features_image
from .identity import PulidIdentity
from .model import PulidFlux

log = logging.getLogger(__name__)

#: How several reference images become one token set:
#: ``mean``: the average of the images' ID tokens (the de-facto standard);
#: ``max_norm``: for each of the Q token positions, the token with the largest L2 norm among the
#: images (so each position comes from one image; sipie800's "max_token");
#: ``weighted``: the average weighted by detection score x face side length (sqrt of the bbox area
#: in the <=1024 px working image), so large, confident faces count more.
FUSIONS = ("mean", "max_norm", "weighted")
MAX_SIDE = 1024
ALIGNED_SIZE = 512
NO_FACE_HELP = ("Draw the face region: on the Encode identity node, drag a box around the face in the photo "
                "(or set face_region, or put a <photo>.face.json sidecar beside the photo; see docs/face_region.md)")


@dataclass
class FaceModels:
    """The models identity encoding needs. ``detector`` and ``recognizer`` may be the same engine."""

    detector: FaceEngine
    recognizer: FaceEngine
    parser: BiSeNet
    eva: EvaVisionTower
    pulid: PulidFlux


@dataclass
class ImageStatus:
    """What happened to one reference image (coordinates in the image's own pixels)."""

    name: str
    face_found: bool
    faces_detected: int = 0
    face_order: str = "largest"
    face_index: int = 0
    bbox: list[float] | None = None
    score: float | None = None
    fallback_used: bool = False
    resized_from: tuple[int, int] | None = None    # (width, height) before the 1024 px shrink
    weight: float | None = None
    message: str = ""
    image_size: tuple[int, int] | None = None      # (width, height) of the image as given
    #: every detected face's box, in ``face_order`` (so position = the face_index that picks it)
    face_boxes: list[list[float]] = field(default_factory=list)
    image_hash: str = ""                           # pulid_flux.images.content_hash of the pixels
    region: dict | None = None                     # the face region used: box, mask, mode, visible share

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class ImageEncoding:
    """One image's contribution (what the cache holds)."""

    status: ImageStatus
    tokens: torch.Tensor | None = None       # (1, Q, D) float32, CPU
    id_cond: torch.Tensor | None = None      # (1, 1280): raw ArcFace | normalised EVA CLS
    aligned: np.ndarray | None = None        # (512, 512, 3) uint8 RGB: the aligned face
    features: np.ndarray | None = None       # (512, 512, 3) uint8 RGB: gray face on white, as EVA sees it


@dataclass
class EncodeResult:
    identity: PulidIdentity
    images: list[ImageStatus]
    warnings: list[str] = field(default_factory=list)
    encodings: list[ImageEncoding] = field(default_factory=list)   # images with a face, in input order

    @property
    def previews(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(aligned face, gray/white face) per image with a face."""
        return [(e.aligned, e.features) for e in self.encodings]


class EncodeCache:
    """Least-recently-used store of per-image encodings; the caller owns it (no module state)."""

    def __init__(self, max_entries: int = 64):
        self.max_entries = int(max_entries)
        self._items: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        self.misses += 1
        return None

    def put(self, key, value) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self):
        return len(self._items)


def resize_long_side(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """The official shrink: long side to ``max_side`` (sizes truncated), Lanczos; smaller images unchanged."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    k = max_side / max(h, w)
    return cv2.resize(image, (int(w * k), int(h * k)), interpolation=cv2.INTER_LANCZOS4)


def fuse_tokens(tokens: torch.Tensor, fusion: str = "mean", weights=None) -> torch.Tensor:
    """(N, Q, D) per-image tokens -> (1, Q, D); see :data:`FUSIONS`."""
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
    if tokens.ndim != 3 or tokens.shape[0] == 0:
        raise ValueError(f"expected (N, Q, D) tokens with N >= 1, got {tuple(tokens.shape)}")
    if fusion == "mean":
        return tokens.mean(dim=0, keepdim=True)
    if fusion == "max_norm":
        pick = tokens.norm(dim=-1).argmax(dim=0)                      # (Q,): which image per position
        return tokens[pick, torch.arange(tokens.shape[1])].unsqueeze(0)
    if weights is None:
        raise ValueError("weighted fusion needs one weight per image")
    w = torch.as_tensor(weights, dtype=tokens.dtype)
    if w.shape != (tokens.shape[0],) or not torch.all(w >= 0) or float(w.sum()) <= 0:
        raise ValueError(f"weighted fusion needs {tokens.shape[0]} non-negative weights, got {weights}")
    return (tokens * (w / w.sum()).view(-1, 1, 1)).sum(dim=0, keepdim=True)


def check_models(models: FaceModels) -> None:
    """Refuse combinations the IDFormer cannot use, before any image is processed."""
    eva_dim = models.eva.config.embed_dim
    arc_dim = models.pulid.id_cond_dim - eva_dim
    rec = models.recognizer
    if rec.embedding_size != arc_dim:
        raise PulidError(
            f"the recognizer engine {rec.name} gives {rec.embedding_size}-d face vectors, but this PuLID model "
            f"was trained on {arc_dim}-d ArcFace vectors (insightface antelopev2 / glintr100). Use the "
            f"insightface engine as recognizer; {rec.family or rec.name} can still be the face detector")
    if models.eva.config.width != models.pulid.vit_dim:
        raise PulidError(f"the EVA tower {models.eva.source} gives {models.eva.config.width}-wide hidden states, "
                         f"but the PuLID model {models.pulid.source} expects {models.pulid.vit_dim}")


def _tag(model) -> str:
    source = getattr(model, "source", None)
    p = next(model.parameters())
    who = source if source and not str(source).startswith("<") else f"{type(model).__name__}@{id(model):x}"
    return f"{who}|{p.dtype}|{p.device}"


def _recognizer_vector(image, chosen: Face, models: FaceModels) -> tuple[np.ndarray, bool]:
    """(raw ArcFace vector of the chosen face, whether the aligned-crop fallback was used)."""
    if models.recognizer is models.detector and chosen.embedding is not None:
        return chosen.embedding, False
    if models.recognizer is not models.detector:
        match = match_face(chosen, models.recognizer.detect(image, embed=True))
        if match is not None:
            return match.embedding, False
    crop, _ = norm_crop(image, chosen.kps, 112)
    return models.recognizer.embed_aligned(crop), True


def encode_image(image: np.ndarray, models: FaceModels, *, name: str = "image", face_order: str = "largest",
                 face_index: int = 0, max_side: int = MAX_SIDE, region: FaceRegion | None = None) -> ImageEncoding:
    """Everything one reference image contributes (no fusion, no cache). ``region`` replaces detection."""
    original = as_rgb_uint8(image, name)
    work = resize_long_side(original, max_side)
    scale = work.shape[1] / original.shape[1]
    resized_from = (original.shape[1], original.shape[0]) if work is not original else None
    status = ImageStatus(name=name, face_found=False, face_order=face_order, face_index=face_index,
                         resized_from=resized_from, image_size=(original.shape[1], original.shape[0]))
    same_engine = models.recognizer is models.detector
    located = None
    if region is not None:
        # Full resolution: a face too small to find in ``work`` is found again in the enlarged box.
        located = locate_face(original, region, models.detector, embed=same_engine)
        arcface, fallback = _recognizer_vector(original, located.face, models)
        fallback = fallback and not located.box_only     # box-only: no detection the recognizer could miss
        chosen = dataclasses.replace(located.face, bbox=located.face.bbox * scale, kps=located.face.kps * scale)
        faces = [chosen]
        status.region = {"box": [round(float(v), 2) for v in region.box], "source": region.source,
                         "mode": located.mode, "rotation": located.rotation, "mask": region.mask is not None}
    else:
        faces = sort_faces(models.detector.detect(work, order=face_order, embed=same_engine), face_order)
    status.faces_detected = len(faces)
    status.face_boxes = [[round(float(v) / scale, 2) for v in face.bbox] for face in faces]
    if not faces:
        status.message = f"no face found by {models.detector.name}"
        return ImageEncoding(status)
    if region is None:
        chosen = choose_face(faces, face_order, face_index, source=name)
        arcface, fallback = _recognizer_vector(work, chosen, models)

    aligned, matrix = align_ffhq(work, chosen.kps, ALIGNED_SIZE)
    aligned_t = torch.from_numpy(aligned).permute(2, 0, 1)[None].float().div(255.0)
    labels = parse_labels(models.parser, aligned_t)
    features = face_features_image(aligned_t, labels.cpu())
    if region is not None:
        # The mask restricts what counts as face: outside it, white like the parser's background.
        mask, share = region_mask_share(region, work.shape, matrix, size=ALIGNED_SIZE)
        if mask is not None:
            status.region["visible_share"] = round(share, 4)
            features = torch.where(torch.from_numpy(mask >= 0.5)[None, None], features, torch.ones_like(features))
    cls, hidden = models.eva.encode_face(features)
    id_cond = torch.cat([torch.from_numpy(np.asarray(arcface, np.float32))[None], cls.float().cpu()], dim=1)
    tokens = models.pulid.encode(id_cond, hidden).float().cpu()

    status.face_found = True
    status.bbox = [round(float(v) / scale, 2) for v in chosen.bbox]
    status.score = float(chosen.score)
    status.fallback_used = fallback
    status.weight = max(float(chosen.score), 1e-3) * float(np.sqrt(max(chosen.area, 1.0)))
    status.message = (f"face {face_index} ({face_order}) of {len(faces)}" if located is None
                      else f"face from the drawn region: {located.describe()}")
    status.message += "; recognizer found no face there: ArcFace run on the aligned crop" if fallback else ""
    features_u8 = (features[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().byte().numpy())
    return ImageEncoding(status, tokens=tokens, id_cond=id_cond, aligned=aligned, features=features_u8)


def encode_identity(images, models: FaceModels, *, names=None, face_order: str = "largest", face_index: int = 0,
                    fusion: str = "mean", max_side: int = MAX_SIDE, cache: EncodeCache | None = None,
                    regions=None) -> EncodeResult:
    """One or more RGB uint8 reference images -> a :class:`PulidIdentity` with uncond tokens.

    ``regions``: face-region entries (:func:`pulid_flux.face.region.parse_region_list`), matched to
    the images by content hash or position; a matched region replaces detection for its image.
    Raises NoFaceError (naming the images, carrying their statuses) when no image has a face;
    images without one are skipped and listed in ``warnings``.
    """
    images = list(images)
    if not images:
        raise ValueError("no reference image given")
    names = list(names) if names is not None else [f"image {i + 1}" for i in range(len(images))]
    if len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images")
    if face_order not in FACE_ORDERS:
        raise ValueError(f"unknown face order {face_order!r}; choose one of {', '.join(FACE_ORDERS)}")
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
    check_models(models)

    settings = (models.detector.fingerprint, models.recognizer.fingerprint, face_order, int(face_index),
                int(max_side), _tag(models.parser), _tag(models.eva), _tag(models.pulid))
    images = [as_rgb_uint8(image, name) for image, name in zip(images, names)]
    hashes = [content_hash(image) for image in images]
    per_image, region_warnings = match_regions(regions or [], hashes, names)
    encodings = []
    for image, name, digest, region in zip(images, names, hashes, per_image):
        key = (digest, region.key if region is not None else None) + settings
        cached = cache.get(key) if cache is not None else None
        if cached is None:
            cached = encode_image(image, models, name=name, face_order=face_order, face_index=face_index,
                                  max_side=max_side, region=region)
            if cache is not None:
                cache.put(key, cached)
        encodings.append(dataclasses.replace(cached, status=dataclasses.replace(cached.status, name=name,
                                                                                image_hash=digest)))

    statuses = [e.status for e in encodings]
    found = [e for e in encodings if e.status.face_found]
    missing = [s.name for s in statuses if not s.face_found]
    for w in region_warnings:
        log.warning("PuLID identity: %s", w)
    if not found:
        raise NoFaceError(f"no face found in any reference image ({', '.join(missing)}) by "
                          f"{models.detector.name}. {NO_FACE_HELP}", images=statuses)
    warnings = region_warnings + [f"{n}: no face found, image skipped" for n in missing]
    warnings += [f"{s.name}: no face found in the drawn box by {models.detector.name}; box-only alignment used, "
                 f"identity quality may drop" for s in statuses if s.region and s.region["mode"] == "box-only"]
    warnings += [f"{s.name}: {models.recognizer.name} found no face where {models.detector.name} did; "
                 f"ArcFace vector taken from the aligned crop" for s in statuses if s.fallback_used]
    for w in warnings[len(region_warnings):]:
        log.warning("PuLID identity: %s", w)

    per_image = torch.cat([e.tokens for e in found], dim=0)
    tokens = fuse_tokens(per_image, fusion, [e.status.weight for e in found])
    uncond = models.pulid.encode_uncond(1).float().cpu()
    info = {
        "detector": models.detector.name, "recognizer": models.recognizer.name,
        "face_order": face_order, "face_index": int(face_index), "fusion": fusion,
        "images": [s.as_dict() for s in statuses],
        "licenses": sorted({models.detector.license_note, models.recognizer.license_note} - {""}),
    }
    return EncodeResult(PulidIdentity(tokens, uncond, info=info), statuses, warnings, found)
