"""Writing tiny model files, and recognising an already written one so it is not rebuilt.

Each file carries a fingerprint in its safetensors metadata: a hash of what produced it (the
builder kind, its configuration, the seed, the dtype and :data:`GENERATOR_VERSION`). A file is
reused only when that fingerprint matches and the file is complete (its size equals what its
header declares), so an interrupted write or a changed configuration is rebuilt.
"""

import hashlib
import json
import logging
import os
import struct
import time
from pathlib import Path
from typing import Callable

import torch

log = logging.getLogger(__name__)

# Bump whenever a builder changes the tensors it writes, so cached files are rebuilt.
GENERATOR_VERSION = 1
FINGERPRINT_KEY = "pulid_studio.tiny.fingerprint"
KIND_KEY = "pulid_studio.tiny.kind"


def fingerprint(kind: str, config: dict, seed: int, dtype: torch.dtype) -> str:
    payload = {"kind": kind, "config": config, "seed": int(seed), "dtype": str(dtype),
               "version": GENERATOR_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def read_header(path: Path) -> dict | None:
    """The JSON header of a safetensors file, or None if it is not a complete safetensors file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) != 8:
                return None
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > min(size - 8, 100 * 2 ** 20):
                return None
            header = json.loads(f.read(header_len))
    except (OSError, ValueError):
        return None
    data_end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if size != 8 + header_len + data_end:
        return None
    return header


def is_current(path: Path, fp: str) -> bool:
    header = read_header(path)
    return header is not None and (header.get("__metadata__") or {}).get(FINGERPRINT_KEY) == fp


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write atomically (temporary file + rename) so a reader never sees a half-written file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def ensure_file(path, kind: str, config: dict, seed: int, dtype: torch.dtype,
                build: Callable[[], dict[str, torch.Tensor]], metadata: dict[str, str] | None = None) -> Path:
    """Write ``build()`` to ``path`` unless a file from the same kind/config/seed/dtype is there."""
    path = Path(path)
    fp = fingerprint(kind, config, seed, dtype)
    if is_current(path, fp):
        log.debug("tiny %s: reusing %s", kind, path)
        return path
    start = time.perf_counter()
    tensors = build()
    meta = dict(metadata or {})
    meta[FINGERPRINT_KEY] = fp
    meta[KIND_KEY] = kind
    write_safetensors(path, tensors, meta)
    log.info("tiny %s: wrote %s (%.1f MB, %.2f s)", kind, path, path.stat().st_size / 2 ** 20,
             time.perf_counter() - start)
    return path


def config_dict(config) -> dict:
    """A dataclass configuration as plain JSON-able values, for the fingerprint."""
    from dataclasses import asdict

    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}
