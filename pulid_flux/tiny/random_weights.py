"""Seeded random tensors for the tiny model builders.

Every tensor is drawn from its own generator, seeded from ``(seed, key)``. A tensor's values
therefore depend only on the seed, its key and its shape, never on the order in which a builder
creates its tensors, so a builder can be reorganised without changing the files it writes.

Scales follow the usual initialisations (weights ~ 1/sqrt(fan_in), norm gains ~ 1) so that a
forward pass through dozens of random blocks stays finite and of order one.
"""

import hashlib
import math

import numpy as np
import torch


class SeededTensors:
    """Collects named tensors into a state dict, each one reproducible from ``seed`` and its name."""

    def __init__(self, seed: int, dtype: torch.dtype = torch.float32):
        self.seed = int(seed)
        self.dtype = dtype
        self.tensors: dict[str, torch.Tensor] = {}

    # -- primitives ---------------------------------------------------------------------------
    def _generator(self, key: str) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
        return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))

    def draw(self, key: str, shape, std: float, mean: float = 0.0) -> torch.Tensor:
        """Values with the given mean and standard deviation (uniformly distributed).

        Uniform rather than Gaussian because drawing it is several times faster (the full-size
        CLIP-L has 123 M values) and random test weights only need the right scale. numpy rather
        than torch: its element-wise ops are single-threaded, while torch's thread pool makes each
        of the ~1000 small per-tensor ops cost milliseconds on a busy 2-core machine.
        """
        values = self._generator(key).random(tuple(shape), dtype=np.float32)
        half_width = np.float32(std * math.sqrt(3.0))     # U(-a, a) has standard deviation a / sqrt(3)
        values *= 2 * half_width
        values += np.float32(mean) - half_width
        return self.put(key, _to_torch(values, self.dtype))

    def put(self, key: str, value: torch.Tensor) -> torch.Tensor:
        if key in self.tensors:
            raise KeyError(f"tensor {key!r} was generated twice")
        self.tensors[key] = value.to(self.dtype).contiguous()
        return self.tensors[key]

    # -- layers -------------------------------------------------------------------------------
    def linear(self, prefix: str, out_features: int, in_features: int, *, bias: bool = True,
               gain: float = 1.0) -> None:
        self.draw(f"{prefix}.weight", (out_features, in_features), gain / math.sqrt(in_features))
        if bias:
            self.draw(f"{prefix}.bias", (out_features,), 0.02)

    def conv(self, prefix: str, out_channels: int, in_channels: int, kernel: int, *, gain: float = 1.0) -> None:
        fan_in = in_channels * kernel * kernel
        self.draw(f"{prefix}.weight", (out_channels, in_channels, kernel, kernel), gain / math.sqrt(fan_in))
        self.draw(f"{prefix}.bias", (out_channels,), 0.02)

    def norm(self, prefix: str, dim: int, *, bias: bool = True, weight_name: str = "weight") -> None:
        """LayerNorm/GroupNorm/RMSNorm gains close to 1 (and biases close to 0)."""
        self.draw(f"{prefix}.{weight_name}", (dim,), 0.02, mean=1.0)
        if bias:
            self.draw(f"{prefix}.bias", (dim,), 0.02)

    def embedding(self, key: str, rows: int, dim: int, std: float = 0.02) -> None:
        self.draw(key, (rows, dim), std)


def _to_torch(values: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """float32 array -> tensor of ``dtype``, rounding to nearest-even like ``Tensor.to``."""
    if dtype == torch.bfloat16:
        bits = values.view(np.uint32)
        carry = bits >> 16
        carry &= 1
        bits += carry
        bits += 0x7FFF
        bits >>= 16
        return torch.from_numpy(bits.astype(np.uint16).view(np.int16)).view(torch.bfloat16)
    if dtype == torch.float16:
        return torch.from_numpy(values.astype(np.float16))
    return torch.from_numpy(values).to(dtype)
