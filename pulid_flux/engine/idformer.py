"""IDFormer: PuLID's identity encoder (ArcFace + EVA-CLIP features -> ID tokens).

A re-implementation of ``IDFormer`` from the official ``pulid/encoders_transformer.py``, with the
same parameter names so the released state dicts load with ``strict=True``. Every size comes from
the constructor, which the loader fills in from the weight shapes.
"""

from dataclasses import dataclass

import torch
from torch import nn

from .attention import perceiver_attention


@dataclass(frozen=True)
class IDFormerConfig:
    dim: int = 1024
    depth: int = 10
    heads: int = 16
    num_id_token: int = 5
    num_queries: int = 32
    output_dim: int = 2048
    ff_inner: int = 4096
    id_cond_dim: int = 1280          # ArcFace 512 + EVA CLS 768
    mapping_dim: int = 1024          # width of the MLPs that map features into the IDFormer
    vit_dim: int = 1024              # EVA02-CLIP-L width
    num_scales: int = 5              # number of EVA hidden states used


def _mapping(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    # Indices 0..6 must match the checkpoint: Linear, LN, LeakyReLU, Linear, LN, LeakyReLU, Linear.
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(),
        nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(),
        nn.Linear(hidden, out_dim),
    )


class PerceiverAttention(nn.Module):
    """Latents attend over [context, latents] (keys/values from both)."""

    def __init__(self, dim: int, inner: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, context: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        context = self.norm1(context)
        latents = self.norm2(latents)
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat((context, latents), dim=-2)).chunk(2, dim=-1)
        return self.to_out(perceiver_attention(q, k, v, self.heads))


def _feed_forward(dim: int, inner: int) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner, bias=False),
        nn.GELU(),
        nn.Linear(inner, dim, bias=False),
    )


class IDFormer(nn.Module):
    def __init__(self, config: IDFormerConfig, attn_inner: int | None = None):
        super().__init__()
        if config.depth % config.num_scales:
            raise ValueError(f"IDFormer depth {config.depth} is not a multiple of {config.num_scales} scales")
        self.config = config
        c = config
        inner = attn_inner or c.dim
        self.latents = nn.Parameter(torch.zeros(1, c.num_queries, c.dim))
        self.proj_out = nn.Parameter(torch.zeros(c.dim, c.output_dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(c.dim, inner, c.heads), _feed_forward(c.dim, c.ff_inner)])
            for _ in range(c.depth)
        )
        for i in range(c.num_scales):
            setattr(self, f"mapping_{i}", _mapping(c.vit_dim, c.mapping_dim, c.dim))
        self.id_embedding_mapping = _mapping(c.id_cond_dim, c.mapping_dim, c.dim * c.num_id_token)

    def forward(self, id_cond: torch.Tensor, vit_hidden: list[torch.Tensor]) -> torch.Tensor:
        """id_cond (B, 1280) or (B, n, 1280) for n stacked images; vit_hidden: num_scales x (B, T, vit_dim).

        Returns ID tokens (B, num_queries, output_dim).
        """
        c = self.config
        if len(vit_hidden) != c.num_scales:
            raise ValueError(f"IDFormer expects {c.num_scales} EVA hidden states, got {len(vit_hidden)}")
        batch = id_cond.shape[0]
        latents = self.latents.repeat(batch, 1, 1)
        images = id_cond.shape[1] if id_cond.ndim == 3 else 1
        id_tokens = self.id_embedding_mapping(id_cond).reshape(batch, c.num_id_token * images, c.dim)
        latents = torch.cat((latents, id_tokens), dim=1)
        per_scale = c.depth // c.num_scales
        for s in range(c.num_scales):
            vit_feature = getattr(self, f"mapping_{s}")(vit_hidden[s])
            context = torch.cat((id_tokens, vit_feature), dim=1)
            for attn, ff in self.layers[s * per_scale:(s + 1) * per_scale]:
                latents = attn(context, latents) + latents
                latents = ff(latents) + latents
        return latents[:, :c.num_queries] @ self.proj_out
