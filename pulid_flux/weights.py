"""Safe reading of weight files (safetensors, or torch pickles restricted to tensors)."""

import logging
import os
from pathlib import Path

import torch

from .errors import PulidWeightsError

log = logging.getLogger(__name__)

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")


def read_state_dict(path, *, expect: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load every tensor of ``path`` on the CPU, plus the safetensors metadata (empty for pickles).

    ``.pt``/``.pth``/``.bin`` files are read with ``torch.load(weights_only=True)``, which refuses
    arbitrary code. Any failure becomes a PulidWeightsError naming the file and ``expect`` (what the
    caller wanted the file to be).
    """
    path = Path(path)
    if not path.is_file():
        raise PulidWeightsError(path, f"file not found (expected {expect})")
    if os.path.getsize(path) == 0:
        raise PulidWeightsError(path, f"the file is empty (expected {expect})")
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        from safetensors import safe_open
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                metadata = dict(f.metadata() or {})
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # safetensors raises several types for a damaged header/body
            raise PulidWeightsError(
                path, f"not a readable safetensors file, perhaps truncated by an interrupted download "
                      f"({exc.__class__.__name__}: {exc}); expected {expect}") from exc
        return tensors, metadata
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PulidWeightsError(
            path, f"could not be read as a tensor-only checkpoint ({exc.__class__.__name__}: {exc}); "
                  f"expected {expect}. Files that need arbitrary code to unpickle are refused; convert "
                  f"them to safetensors") from exc
    for wrapper in ("state_dict", "module", "model"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PulidWeightsError(path, f"holds no flat dictionary of tensors; expected {expect}")
    return dict(obj), {}
