"""The tiny FLUX.1-dev transformer as a quantized GGUF file, the way ComfyUI-GGUF's Flux files are made.

Same tensors as :mod:`.flux` (BFL key layout), quantized like city96's ``convert.py`` + llama-quantize
produce them for ``UnetLoaderGGUF``: architecture ``flux``, every matrix in the chosen block format
(``Q8_0`` or ``Q4_0``, 32 values per block), 1-D tensors and matrices of at most 1024 values kept in
F32. Written with the ``gguf`` package (ComfyUI-GGUF reads files with ``gguf>=0.13``).
"""

import logging
import os
from pathlib import Path

import torch

from .files import config_dict, fingerprint
from .flux import TINY_FLUX, TinyFluxConfig, flux_state_dict

log = logging.getLogger(__name__)

QTYPES = ("Q8_0", "Q4_0")
#: matrices up to this many values stay in F32, as ComfyUI-GGUF's converter keeps them
QUANTIZATION_THRESHOLD = 1024
FINGERPRINT_FIELD = "pulid_studio.tiny.fingerprint"


def _fingerprint(config: TinyFluxConfig, qtype: str, seed: int) -> str:
    return fingerprint("flux_gguf", {"flux": config_dict(config), "qtype": qtype}, seed, torch.bfloat16,
                       sources=(__file__, Path(__file__).with_name("flux.py")))


def _is_current(path: Path, fp: str) -> bool:
    import gguf
    if not path.is_file():
        return False
    try:
        field = gguf.GGUFReader(path).get_field(FINGERPRINT_FIELD)
    except (OSError, ValueError, IndexError):       # a truncated or foreign file
        return False
    return field is not None and bytes(field.parts[field.data[-1]]).decode() == fp


def write_flux_gguf(path, qtype: str = "Q8_0", config: TinyFluxConfig = TINY_FLUX, seed: int = 0) -> Path:
    """Write (or reuse) the tiny Flux quantized to ``qtype`` (one of :data:`QTYPES`); returns its path."""
    import gguf
    if qtype not in QTYPES:
        raise ValueError(f"qtype must be one of {QTYPES}, got {qtype!r}")
    path = Path(path)
    fp = _fingerprint(config, qtype, seed)
    if _is_current(path, fp):
        log.debug("tiny flux gguf: reusing %s", path)
        return path
    quant = gguf.GGMLQuantizationType[qtype]
    writer = gguf.GGUFWriter(path=None, arch="flux")
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type(getattr(gguf.LlamaFileType, f"MOSTLY_{qtype}"))
    writer.add_string(FINGERPRINT_FIELD, fp)
    for name, tensor in sorted(flux_state_dict(config, seed, torch.bfloat16).items()):
        data = tensor.float().numpy()
        kind = gguf.GGMLQuantizationType.F32 if data.ndim == 1 or data.size <= QUANTIZATION_THRESHOLD else quant
        writer.add_tensor(name, gguf.quants.quantize(data, kind), raw_dtype=kind)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        writer.write_header_to_file(path=tmp)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("tiny flux gguf: wrote %s (%s, %.1f MB)", path, qtype, path.stat().st_size / 2 ** 20)
    return path
