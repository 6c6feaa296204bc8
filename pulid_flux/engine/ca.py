"""PerceiverAttentionCA: the cross-attention adapter PuLID adds after Flux blocks.

Flux image tokens (queries) attend over the 32 ID tokens (keys/values). There is no gate, mask or
residual inside; the caller adds ``weight * output`` to the image tokens. Parameter names match the
``pulid_ca.N.*`` keys of the released checkpoints.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .attention import fused_attention, perceiver_attention


class PerceiverAttentionCA(nn.Module):
    def __init__(self, dim: int = 3072, kv_dim: int = 2048, inner: int = 2048, heads: int = 16):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(kv_dim)   # on the ID tokens
        self.norm2 = nn.LayerNorm(dim)      # on the Flux image tokens
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(kv_dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, id_tokens: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        """id_tokens (1 or B, Q, kv_dim), image_tokens (B, L, dim) -> (B, L, dim)."""
        x = self.norm1(id_tokens)
        latents = self.norm2(image_tokens)
        q = self.to_q(latents)
        k, v = self.to_kv(x).chunk(2, dim=-1)
        return self.to_out(perceiver_attention(q, k, v, self.heads))

    def forward_cast(self, id_tokens: torch.Tensor, image_tokens: torch.Tensor, scale: float = 1.0,
                     residual: torch.Tensor | None = None) -> torch.Tensor:
        """``residual + scale * forward(...)`` on the sampling path (``residual`` None: just the scaled output).

        The weights are cast to the image tokens' device and dtype for this call: the adapter's
        stored dtype may differ from the Flux compute dtype (bf16 file, fp16 GPU, fp8 UNet with a
        manual-cast dtype), and ComfyUI may not have moved it. The attention runs in torch's fused
        kernel (its softmax accumulates in float32, as the reference requires), and the residual is
        added inside the output projection's GEMM, sparing a pass over the 4096 image tokens.
        """
        device, dtype = image_tokens.device, image_tokens.dtype

        def w(t):
            return None if t is None else t.to(device=device, dtype=dtype)

        x = F.layer_norm(id_tokens.to(device=device, dtype=dtype), self.norm1.normalized_shape,
                         w(self.norm1.weight), w(self.norm1.bias), self.norm1.eps)
        latents = F.layer_norm(image_tokens, self.norm2.normalized_shape,
                               w(self.norm2.weight), w(self.norm2.bias), self.norm2.eps)
        q = F.linear(latents, w(self.to_q.weight))
        k, v = F.linear(x, w(self.to_kv.weight)).chunk(2, dim=-1)
        attn = fused_attention(q, k, v, self.heads)
        out_weight = w(self.to_out.weight)
        if scale != 1.0:
            # Scaling the (dim x inner) weight is cheaper than scaling the (tokens x dim) output.
            out_weight = out_weight * scale
        if residual is None:
            return F.linear(attn, out_weight)
        b, length, _ = attn.shape
        flat = torch.addmm(residual.reshape(b * length, -1), attn.reshape(b * length, -1), out_weight.t())
        return flat.view(b, length, -1)
