"""A tiny EVA02-CLIP visual tower in the EVA-CLIP checkpoint layout (``visual.*``), random weights.

The golden tiny tower is only in the test data; ``--tiny`` runs on a user's machine need one too.
Real depth (24 blocks, so hidden states 4..20 exist), 24x24 patches of 14 px (577 tokens), width 128
(heads of 64), SwiGLU with sub-LN, a 768-d head: what :class:`pulid_flux.engine.eva.EvaVisionTower` reads.
"""

from dataclasses import dataclass

import torch

from .files import config_dict, ensure_file
from .random_weights import SeededTensors


@dataclass(frozen=True)
class TinyEvaConfig:
    width: int = 128
    depth: int = 24
    mlp_hidden: int = 341          # EVA02-L: 2.6667 x width
    patch: int = 14
    grid: int = 24
    embed_dim: int = 768


TINY_EVA = TinyEvaConfig()


def eva_state_dict(config: TinyEvaConfig = TINY_EVA, seed: int = 0, dtype=torch.bfloat16) -> dict:
    c, t = config, SeededTensors(seed, dtype)
    v = "visual"
    t.draw(f"{v}.cls_token", (1, 1, c.width), 0.02)
    t.draw(f"{v}.pos_embed", (1, c.grid * c.grid + 1, c.width), 0.02)
    t.conv(f"{v}.patch_embed.proj", c.width, 3, c.patch)
    for i in range(c.depth):
        b = f"{v}.blocks.{i}"
        t.norm(f"{b}.norm1", c.width)
        t.norm(f"{b}.norm2", c.width)
        for name in ("q_proj", "k_proj", "v_proj"):
            t.linear(f"{b}.attn.{name}", c.width, c.width, bias=False)
        t.draw(f"{b}.attn.q_bias", (c.width,), 0.02)
        t.draw(f"{b}.attn.v_bias", (c.width,), 0.02)
        t.norm(f"{b}.attn.inner_attn_ln", c.width)
        t.linear(f"{b}.attn.proj", c.width, c.width, gain=0.5)
        t.linear(f"{b}.mlp.w1", c.mlp_hidden, c.width)
        t.linear(f"{b}.mlp.w2", c.mlp_hidden, c.width)
        t.norm(f"{b}.mlp.ffn_ln", c.mlp_hidden)
        t.linear(f"{b}.mlp.w3", c.width, c.mlp_hidden, gain=0.5)
    t.norm(f"{v}.norm", c.width)
    t.linear(f"{v}.head", c.embed_dim, c.width)
    return t.tensors


def write_eva(path, config: TinyEvaConfig = TINY_EVA, seed: int = 0, dtype=torch.bfloat16):
    """Write (or reuse) a tiny ``EVA02_CLIP_L_336_psz14_s6B.safetensors``; returns its path."""
    return ensure_file(path, "eva02_clip_visual", config_dict(config), seed, dtype,
                       lambda: eva_state_dict(config, seed, dtype), source=__file__)
