"""A tiny random-weight open_clip CLIP (both towers) for ``--tiny`` sweeps and the CLIP-score tests.

It is an ordinary open_clip architecture: a JSON config (``pulid-tiny-clip.json``, registered with
``open_clip.add_model_config``) and a safetensors state dict in open_clip's own key layout, so it is
loaded by exactly the code that loads a real ``ViT-L-14-quickgelu:<file>`` (no special case). The
text tower keeps CLIP's 49,408-token vocabulary and 77-token context, so open_clip's bundled BPE
tokenizer works unchanged (nothing is downloaded); widths, depths and the 32 px input are tiny.

The weights are open_clip's own initialisation under a fixed seed (the global RNG is restored).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .files import ensure_file

TINY_CLIP_ARCH = "pulid-tiny-clip"

TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def tiny_clip_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    from open_clip.model import CLIP

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(**TINY_CLIP_CONFIG)
    return {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}


def tiny_clip_file(folder) -> Path:
    return Path(folder) / f"{TINY_CLIP_ARCH}.safetensors"


def write_tiny_open_clip(folder, seed: int = 0) -> tuple[str, Path]:
    """Write (or reuse) ``<folder>/pulid-tiny-clip.json`` and ``.safetensors``; register the
    architecture with open_clip; return ``(arch, weights path)`` for ``--clip-model ARCH:FILE``."""
    import open_clip

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{TINY_CLIP_ARCH}.json"
    text = json.dumps(TINY_CLIP_CONFIG, indent=2, sort_keys=True) + "\n"
    if not config.is_file() or config.read_text(encoding="utf-8") != text:
        config.write_text(text, encoding="utf-8")
    weights = ensure_file(tiny_clip_file(folder), "open_clip_tiny", TINY_CLIP_CONFIG, seed,
                          torch.float32, lambda: tiny_clip_state_dict(seed), source=__file__)
    if TINY_CLIP_ARCH not in open_clip.list_models():
        open_clip.add_model_config(config)
    return TINY_CLIP_ARCH, weights
