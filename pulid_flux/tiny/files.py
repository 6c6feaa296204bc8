"""Writing tiny model files, and recognising an already written one so it is not rebuilt.

Each file carries a fingerprint in its safetensors metadata: a hash of what produced it (the
builder kind, its configuration, the seed, the dtype, and the source code of the builder module
and of the shared generator modules). A file is reused only when that fingerprint matches and the
file is complete (its size equals what its header declares), so an interrupted write, a changed
configuration or an edited builder is rebuilt.
"""

import hashlib
import json
import logging
import os
import struct
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# The modules every builder depends on; a builder adds its own file.
_SHARED_SOURCES = (Path(__file__), Path(__file__).with_name("random_weights.py"))
FINGERPRINT_KEY = "pulid_studio.tiny.fingerprint"
KIND_KEY = "pulid_studio.tiny.kind"


def fingerprint(kind: str, config: dict, seed: int, dtype: torch.dtype, sources=()) -> str:
    code = hashlib.sha256()
    for source in (*_SHARED_SOURCES, *(Path(s) for s in sources)):
        code.update(source.read_bytes())
    payload = {"kind": kind, "config": config, "seed": int(seed), "dtype": str(dtype),
               "code": code.hexdigest()}
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
        data_end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None
    if size != 8 + header_len + data_end:
        return None
    return header


def is_current(path: Path, fp: str) -> bool:
    header = read_header(path)
    return header is not None and (header.get("__metadata__") or {}).get(FINGERPRINT_KEY) == fp


_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2"}


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors file byte-for-byte reproducibly, atomically (temporary file + rename).

    Written here rather than with ``safetensors.torch.save_file`` because that library orders the
    metadata through a hash map, so the same tensors gave different bytes from run to run.
    Tensors are laid out in name order; the header is padded with spaces to 8 bytes, as the
    reference writer does.
    """
    header: dict = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    names = sorted(tensors)
    for name in names:
        t = tensors[name]
        if t.dtype not in _DTYPES:
            raise TypeError(f"tensor {name!r} has dtype {t.dtype}; tiny models use {sorted(map(str, _DTYPES))}")
        size = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(blob)))
            f.write(blob)
            for name in names:
                f.write(tensors[name].contiguous().reshape(-1).view(torch.uint8).numpy())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def ensure_file(path, kind: str, config: dict, seed: int, dtype: torch.dtype,
                build: Callable[[], dict[str, torch.Tensor]], *, source: str,
                metadata: dict[str, str] | None = None) -> Path:
    """Write ``build()`` to ``path`` unless a file from the same kind/config/seed/dtype/code is there.

    ``source``: the builder module's file (its ``__file__``), part of the fingerprint.
    """
    path = Path(path)
    fp = fingerprint(kind, config, seed, dtype, sources=(source,))
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
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}
