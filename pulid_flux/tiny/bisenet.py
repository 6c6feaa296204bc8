"""A BiSeNet face parser with seeded random weights, saved like facexlib's ``parsing_bisenet.pth``.

The architecture is the real one (so the file goes through the real loader); only the values are
random. BatchNorm statistics are randomised too, so a wrong key mapping changes the output.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..face.parsing import BiSeNet
from .random_weights import SeededTensors


def random_bisenet_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """facexlib-layout BiSeNet tensors: He-initialised convolutions, BatchNorm near identity."""
    st = SeededTensors(seed)
    state = {}
    for key, ref in BiSeNet().state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
        elif ref.ndim == 4:
            state[key] = st.draw(key, ref.shape, math.sqrt(2.0 / ref[0].numel()))
        elif key.endswith("running_var"):
            state[key] = st.draw(key, ref.shape, 0.1, mean=1.0).abs_().clamp_(min=0.5)
        elif key.endswith("weight"):
            state[key] = st.draw(key, ref.shape, 0.1, mean=1.0)
        else:  # BatchNorm bias and running_mean
            state[key] = st.draw(key, ref.shape, 0.1)
    return state


def random_bisenet(seed: int = 0) -> BiSeNet:
    model = BiSeNet()
    model.load_state_dict(random_bisenet_state_dict(seed), strict=True)
    return model.eval()


def save_random_bisenet(path, seed: int = 0) -> Path:
    """Write a random ``parsing_bisenet.pth`` (a plain tensor state dict, as facexlib ships it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_bisenet_state_dict(seed), str(path))
    return path
