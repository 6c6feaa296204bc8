"""A PuLID identity (the IDFormer's ID tokens) and its ``.pulidembd`` file format.

``.pulidembd`` is the GGUF file stable-diffusion.cpp reads with ``--pulid-id``: architecture
``pulid``, ``pulid.version = 1``, one F16 tensor ``pulid_id`` of ggml shape [token_dim, num_tokens]
(numpy (num_tokens, token_dim)). We add an optional ``pulid_uncond_id`` tensor of the same shape (the
IDFormer on all-zero inputs, for true-CFG) and free-form provenance keys; sd.cpp ignores both.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import IdentityFormatError

log = logging.getLogger(__name__)

ARCH = "pulid"
FORMAT_VERSION = 1
ID_TENSOR = "pulid_id"
UNCOND_TENSOR = "pulid_uncond_id"
INFO_KEY = "pulid_studio.info"


@dataclass
class PulidIdentity:
    """ID tokens (1, Q, D) from the IDFormer, optionally with the uncond ("no identity") tokens."""

    tokens: torch.Tensor
    uncond_tokens: torch.Tensor | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.tokens = _as_batch(self.tokens, "tokens")
        if self.uncond_tokens is not None:
            self.uncond_tokens = _as_batch(self.uncond_tokens, "uncond_tokens")
            if self.uncond_tokens.shape[1:] != self.tokens.shape[1:]:
                raise ValueError(f"uncond_tokens {tuple(self.uncond_tokens.shape)} do not match "
                                 f"tokens {tuple(self.tokens.shape)}")

    @property
    def num_tokens(self) -> int:
        return self.tokens.shape[1]

    @property
    def token_dim(self) -> int:
        return self.tokens.shape[2]


def _as_batch(t, name):
    t = torch.as_tensor(t)
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3:
        raise ValueError(f"identity {name} must be (Q, D) or (B, Q, D), got {tuple(t.shape)}")
    return t.detach()


def save_identity(identity: PulidIdentity, path) -> Path:
    """Write ``identity`` as a ``.pulidembd`` GGUF file. Only the first batch entry is stored."""
    from gguf import GGUFWriter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if identity.tokens.shape[0] != 1:
        log.warning("saving only the first of %d identities in the batch to %s", identity.tokens.shape[0], path)
    writer = GGUFWriter(str(path), arch=ARCH)
    writer.add_uint32(f"{ARCH}.version", FORMAT_VERSION)
    if identity.info:
        writer.add_string(INFO_KEY, json.dumps(identity.info, sort_keys=True, default=str))
    writer.add_tensor(ID_TENSOR, _to_f16(identity.tokens[0]))
    if identity.uncond_tokens is not None:
        writer.add_tensor(UNCOND_TENSOR, _to_f16(identity.uncond_tokens[0]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _to_f16(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy().astype(np.float16))


def load_identity(path) -> PulidIdentity:
    """Read a ``.pulidembd`` file (ours or stable-diffusion.cpp's) into a float32 PulidIdentity."""
    from gguf import GGUFReader

    path = Path(path)
    if not path.is_file():
        raise IdentityFormatError(f"{path}: identity file not found")
    try:
        reader = GGUFReader(str(path))
    except Exception as exc:
        raise IdentityFormatError(f"{path}: not a GGUF .pulidembd file ({exc.__class__.__name__}: {exc})") from exc
    fields = reader.fields
    arch = _field_value(fields, "general.architecture")
    if arch != ARCH:
        raise IdentityFormatError(f"{path}: general.architecture is {arch!r}, expected {ARCH!r}")
    tensors = {t.name: t for t in reader.tensors}
    if ID_TENSOR not in tensors:
        raise IdentityFormatError(f"{path}: no tensor {ID_TENSOR!r} (found: {sorted(tensors) or 'none'})")
    tokens = _tensor(tensors[ID_TENSOR], path)
    uncond = _tensor(tensors[UNCOND_TENSOR], path) if UNCOND_TENSOR in tensors else None
    info_raw = _field_value(fields, INFO_KEY)
    info = json.loads(info_raw) if info_raw else {}
    return PulidIdentity(tokens, uncond, info=info)


def _field_value(fields, key):
    f = fields.get(key)
    if f is None:
        return None
    value = f.parts[f.data[0]]
    if f.types and f.types[0].name == "STRING":
        return bytes(value).decode("utf-8")
    return value.tolist()[0] if hasattr(value, "tolist") else value


def _tensor(t, path) -> torch.Tensor:
    # gguf lists shapes in ggml order (fastest axis first): [token_dim, num_tokens].
    shape = [int(x) for x in t.shape]
    if len(shape) != 2 or not (0 < shape[0] <= 65536 and 0 < shape[1] <= 1024):
        raise IdentityFormatError(f"{path}: tensor {t.name} has ggml shape {shape}, expected [token_dim, num_tokens]")
    data = np.asarray(t.data, dtype=np.float32).reshape(shape[1], shape[0])
    return torch.from_numpy(data.copy())
