"""A tiny PuLID-Flux weights file for the tiny Flux, in the official key layout.

Keys: ``pulid_encoder.*`` (the IDFormer: ``latents``, ``proj_out``, ``id_embedding_mapping.{0,1,3,4,6}``,
``mapping_{0..4}.{0,1,3,4,6}``, ``layers.N.0.*`` perceiver attention, ``layers.N.1.{0,1,3}`` feed-forward)
and ``pulid_ca.N.*`` (``norm1``, ``norm2``, ``to_q``, ``to_kv``, ``to_out``), bf16 like
``pulid_flux_v0.9.1.safetensors``.

Sizes: 20 adapters (one per Flux double block 0, 2, ..., 18 and single block 0, 4, ..., 36 of the
19/38-block tiny Flux) of width 128 (the tiny Flux hidden size), reading ID tokens of width
``token_dim``; an IDFormer fed by 1280-d ``id_cond`` (ArcFace 512 + EVA CLS 768) and five EVA
hidden states 128 wide (the golden tiny EVA02-CLIP). :meth:`pulid_flux.PulidFlux.from_file` infers
every size from the shapes; head counts follow :func:`pulid_flux.engine.attention.official_heads`
(projections narrower than 1024 use heads of width 16).
"""

from dataclasses import dataclass

import torch

from .files import config_dict, ensure_file
from .random_weights import SeededTensors


@dataclass(frozen=True)
class TinyPulidConfig:
    # IDFormer
    dim: int = 64
    depth: int = 10
    num_scales: int = 5
    num_id_token: int = 5
    num_queries: int = 32
    token_dim: int = 64          # IDFormer output width = the adapters' kv_dim
    ff_inner: int = 128
    mapping_dim: int = 128
    id_cond_dim: int = 1280
    vit_dim: int = 128
    # Flux adapters
    num_ca: int = 20
    ca_dim: int = 128
    ca_inner: int = 64

    def __post_init__(self):
        if self.depth % self.num_scales:
            raise ValueError(f"IDFormer depth {self.depth} must be a multiple of its {self.num_scales} scales")


TINY_PULID = TinyPulidConfig()


def _mapping(t: SeededTensors, prefix: str, in_dim: int, hidden: int, out_dim: int) -> None:
    # Indices of the official nn.Sequential: Linear, LayerNorm, LeakyReLU, Linear, LayerNorm, LeakyReLU, Linear.
    t.linear(f"{prefix}.0", hidden, in_dim)
    t.norm(f"{prefix}.1", hidden)
    t.linear(f"{prefix}.3", hidden, hidden)
    t.norm(f"{prefix}.4", hidden)
    t.linear(f"{prefix}.6", out_dim, hidden)


def _idformer(t: SeededTensors, c: TinyPulidConfig) -> None:
    p = "pulid_encoder"
    t.draw(f"{p}.latents", (1, c.num_queries, c.dim), c.dim ** -0.5)
    t.draw(f"{p}.proj_out", (c.dim, c.token_dim), c.dim ** -0.5)
    for i in range(c.depth):
        attn, ff = f"{p}.layers.{i}.0", f"{p}.layers.{i}.1"
        t.norm(f"{attn}.norm1", c.dim)
        t.norm(f"{attn}.norm2", c.dim)
        t.linear(f"{attn}.to_q", c.dim, c.dim, bias=False)
        t.linear(f"{attn}.to_kv", 2 * c.dim, c.dim, bias=False)
        t.linear(f"{attn}.to_out", c.dim, c.dim, bias=False, gain=0.5)
        t.norm(f"{ff}.0", c.dim)
        t.linear(f"{ff}.1", c.ff_inner, c.dim, bias=False)
        t.linear(f"{ff}.3", c.dim, c.ff_inner, bias=False, gain=0.5)
    for s in range(c.num_scales):
        _mapping(t, f"{p}.mapping_{s}", c.vit_dim, c.mapping_dim, c.dim)
    _mapping(t, f"{p}.id_embedding_mapping", c.id_cond_dim, c.mapping_dim, c.dim * c.num_id_token)


def _adapters(t: SeededTensors, c: TinyPulidConfig) -> None:
    for i in range(c.num_ca):
        p = f"pulid_ca.{i}"
        t.norm(f"{p}.norm1", c.token_dim)
        t.norm(f"{p}.norm2", c.ca_dim)
        t.linear(f"{p}.to_q", c.ca_inner, c.ca_dim, bias=False)
        t.linear(f"{p}.to_kv", 2 * c.ca_inner, c.token_dim, bias=False)
        t.linear(f"{p}.to_out", c.ca_dim, c.ca_inner, bias=False, gain=0.5)


def pulid_state_dict(config: TinyPulidConfig = TINY_PULID, seed: int = 0,
                     dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    t = SeededTensors(seed, dtype)
    _idformer(t, config)
    _adapters(t, config)
    return t.tensors


def write_pulid(path, config: TinyPulidConfig = TINY_PULID, seed: int = 0,
                dtype: torch.dtype = torch.bfloat16):
    """Write (or reuse) a tiny ``pulid_flux_v0.9.1.safetensors``; returns its path."""
    return ensure_file(path, "pulid_flux", config_dict(config), seed, dtype,
                       lambda: pulid_state_dict(config, seed, dtype), source=__file__)
