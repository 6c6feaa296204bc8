"""Prompt adherence (CLIP score) and memorization with an open_clip model from a local file.

* CLIP score of an image: the cosine similarity of its open_clip image embedding and the embedding
  of its prompt (``encode_image`` / ``encode_text``, each L2-normalised; the same numbers as
  open_clip's ``model(image, text)`` features, before ``logit_scale``). Range -1..1; ViT-L-14 gives
  about 0.2-0.35 for matching photo/prompt pairs. No ×100 and no clipping at 0 (unlike some papers).
* Memorization of an image: the highest CLIP image-image cosine to any training image of the
  dataset (a LoRA that overfits reproduces its training scenes and clothes).

The model is ``ARCH:FILE`` (``--clip-model``): an open_clip architecture name that needs no
Hugging Face download (e.g. ``ViT-L-14-quickgelu``, the one OpenAI's weights use) and a weights
file (safetensors, or a ``torch.load(weights_only=True)``-readable state dict) looked up in the
``clip_score`` model folder (``models/clip_score/``) unless the path is absolute. Nothing is ever
downloaded: a missing file is one error naming the file and the folder.

torch and open_clip are imported inside the functions (the client imports this module's parser).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PulidError

if TYPE_CHECKING:  # numpy is imported where it is used: the client's parser reads this module's defaults
    import numpy as np

log = logging.getLogger(__name__)

CLIP_SCORE_FOLDER = "clip_score"
DEFAULT_CLIP_MODEL = "ViT-L-14-quickgelu:ViT-L-14-openai.safetensors"
SCORE_DECIMALS = 6
WHERE_TO_GET = ("open_clip's ViT-L-14 with OpenAI weights: the open_clip_model.safetensors of "
                "timm/vit_large_patch14_clip_224.openai, saved as ViT-L-14-openai.safetensors")


class ClipModelError(PulidError):
    """The CLIP-score model is misnamed, missing or unreadable; the message says what to do."""


@dataclass(frozen=True)
class ClipModelSpec:
    arch: str
    file: Path

    def __str__(self) -> str:
        return f"{self.arch}:{self.file}"


def parse_clip_model(text: str, folders: Sequence[Path] = ()) -> ClipModelSpec:
    """``ARCH:FILE`` -> the spec with FILE found (absolute, else in the first of ``folders`` that has
    it, else relative to the working folder). ClipModelError naming the file and folder otherwise."""
    arch, sep, file = str(text).partition(":")
    arch, file = arch.strip(), file.strip()
    if not sep or not arch or not file:
        raise ClipModelError(f"--clip-model {text!r}: expected ARCH:FILE, e.g. {DEFAULT_CLIP_MODEL}")
    path = Path(file).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [Path(folder) / path for folder in folders] + [path]
    for candidate in candidates:
        if candidate.is_file():
            return ClipModelSpec(arch, candidate.resolve())
    where = (f"the '{CLIP_SCORE_FOLDER}' model folder {', '.join(str(f) for f in folders)}" if folders and
             not path.is_absolute() else f"{path.parent}")
    raise ClipModelError(f"CLIP score model file {path.name!r} not found in {where}. Place it there "
                         f"({WHERE_TO_GET}), or pass --clip-model ARCH:/path/to/file; nothing is downloaded.")


def _check_arch(arch: str) -> None:
    import open_clip

    known = open_clip.list_models()
    if arch not in known:
        near = [m for m in known if arch.lower().split("-")[0] in m.lower()][:8]
        raise ClipModelError(f"--clip-model: {arch!r} is not an open_clip architecture"
                             + (f"; similar: {', '.join(near)}" if near else "")
                             + " (see open_clip.list_models())")
    text_cfg = (open_clip.get_model_config(arch) or {}).get("text_cfg", {})
    if text_cfg.get("hf_model_name") or text_cfg.get("hf_tokenizer_name"):
        raise ClipModelError(f"--clip-model: {arch!r} needs a Hugging Face text model or tokenizer, which would "
                             "be downloaded; use an architecture with open_clip's own text tower "
                             "(e.g. ViT-L-14-quickgelu)")


class ClipScorer:
    """An open_clip model with its eval preprocessing and tokenizer."""

    def __init__(self, model, preprocess, tokenizer, spec: ClipModelSpec, *, device: str = "cpu",
                 batch_size: int = 8):
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.spec = spec
        self.device = device
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return f"{self.spec.arch} ({self.spec.file.name})"

    def image_features(self, images: Sequence) -> np.ndarray:
        """(N, D) unit image embeddings of PIL images or RGB uint8 arrays."""
        import numpy as np
        import torch
        from PIL import Image

        rows = []
        for start in range(0, len(images), self.batch_size):
            batch = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im)[..., :3])
                     for im in images[start:start + self.batch_size]]
            pixels = torch.stack([self.preprocess(im.convert("RGB")) for im in batch]).to(self.device)
            with torch.no_grad():
                rows.append(_unit(self.model.encode_image(pixels)))
        return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) unit text embeddings."""
        import torch

        with torch.no_grad():
            tokens = self.tokenizer(list(texts)).to(self.device)
            return _unit(self.model.encode_text(tokens))

    def clip_scores(self, images: Sequence, texts: Sequence[str]) -> list[float]:
        """CLIP score of each image against its own text (``texts[i]`` for ``images[i]``)."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        if not images:
            return []
        return pair_cosines(self.image_features(images), self.text_features(texts))


def _unit(features) -> np.ndarray:
    import torch.nn.functional as F

    return F.normalize(features.float(), dim=-1).cpu().numpy()


def pair_cosines(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Row-wise cosine of unit rows, rounded to SCORE_DECIMALS."""
    import numpy as np

    return [round(float(v), SCORE_DECIMALS) for v in np.sum(a * b, axis=1)]


def memorization(image_features: np.ndarray, dataset_features: np.ndarray) -> list[float]:
    """For each image, the highest cosine to any dataset image (unit rows)."""
    if not len(dataset_features):
        raise ValueError("the dataset has no image to compare with")
    return [round(float(v), SCORE_DECIMALS) for v in (image_features @ dataset_features.T).max(axis=1)]


def load_clip_scorer(spec: ClipModelSpec, *, device: str = "cpu") -> ClipScorer:
    """Build ``spec.arch`` and load ``spec.file`` into it with open_clip (safe loading, no download)."""
    import open_clip

    _check_arch(spec.arch)
    if not spec.file.is_file():
        raise ClipModelError(f"CLIP score model file {spec.file} not found")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.arch, pretrained=str(spec.file), device=device, weights_only=True)
    except Exception as exc:  # open_clip/torch raise many types for a wrong or unsafe file
        hint = ""
        if "TorchScript" in str(exc) or "weights_only" in str(exc):
            hint = (" (a TorchScript or pickled checkpoint cannot be loaded safely: use a safetensors state dict, "
                    f"e.g. {WHERE_TO_GET})")
        raise ClipModelError(f"{spec.file}: cannot be loaded as open_clip {spec.arch}: "
                             f"{type(exc).__name__}: {exc}{hint}") from exc
    model.eval()
    log.info("CLIP score model: %s from %s", spec.arch, spec.file)
    return ClipScorer(model, preprocess, open_clip.get_tokenizer(spec.arch), spec, device=device)
