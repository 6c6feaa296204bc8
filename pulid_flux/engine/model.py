"""PulidFlux: the IDFormer encoder and the Flux cross-attention adapters of one weights file."""

import logging
import re
from pathlib import Path

import torch
from torch import nn

from ..errors import PulidWeightsError
from ..weights import read_state_dict
from .attention import official_heads
from .ca import PerceiverAttentionCA
from .idformer import IDFormer, IDFormerConfig

log = logging.getLogger(__name__)

EXPECTED = "a PuLID-Flux file (pulid_flux_v0.9.0/v0.9.1: keys pulid_encoder.* and pulid_ca.N.*)"
_CA_KEY = re.compile(r"^pulid_ca\.(\d+)\.")
_LAYER_KEY = re.compile(r"^layers\.(\d+)\.")
_MAPPING_KEY = re.compile(r"^mapping_(\d+)\.")


class PulidFlux(nn.Module):
    """``encoder`` (IDFormer) turns face features into ID tokens; ``ca[k]`` injects them into Flux.

    ``ca[0..]`` are tied to Flux double blocks 0, 2, 4, … first, then single blocks 0, 4, 8, …
    (see :mod:`pulid_flux.engine.inject`).
    """

    def __init__(self, encoder: IDFormer, ca: nn.ModuleList, source: str = "<memory>"):
        super().__init__()
        self.encoder = encoder
        self.ca = ca
        self.source = source

    @property
    def num_ca(self) -> int:
        return len(self.ca)

    @property
    def token_dim(self) -> int:
        return self.encoder.config.output_dim

    @property
    def num_tokens(self) -> int:
        return self.encoder.config.num_queries

    @property
    def ca_dim(self) -> int:
        """Width of the Flux hidden state these adapters were trained for (3072 for FLUX.1)."""
        return self.ca[0].to_q.in_features

    @property
    def vit_dim(self) -> int:
        return self.encoder.config.vit_dim

    @property
    def id_cond_dim(self) -> int:
        return self.encoder.config.id_cond_dim

    # -- encoding -----------------------------------------------------------------------------
    def _param(self):
        return next(self.encoder.parameters())

    @torch.no_grad()
    def encode(self, id_cond: torch.Tensor, vit_hidden) -> torch.Tensor:
        """id_cond (B, 1280) = [raw ArcFace 512 | L2-normalised EVA CLS 768]; vit_hidden: 5 x (B, 577, 1024)."""
        p = self._param()
        id_cond = id_cond.to(device=p.device, dtype=p.dtype)
        vit_hidden = [h.to(device=p.device, dtype=p.dtype) for h in vit_hidden]
        return self.encoder(id_cond, vit_hidden)

    @torch.no_grad()
    def encode_uncond(self, batch_size: int = 1, tokens_per_scale: int = 577) -> torch.Tensor:
        """The trained "no identity" tokens: the IDFormer run on all-zero inputs (not a zero tensor)."""
        p = self._param()
        c = self.encoder.config
        zeros_cond = torch.zeros(batch_size, c.id_cond_dim, device=p.device, dtype=p.dtype)
        zeros_hidden = [torch.zeros(batch_size, tokens_per_scale, c.vit_dim, device=p.device, dtype=p.dtype)
                        for _ in range(c.num_scales)]
        return self.encoder(zeros_cond, zeros_hidden)

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path, device="cpu", dtype=torch.float32) -> "PulidFlux":
        tensors, metadata = read_state_dict(path, expect=EXPECTED)
        model = cls.from_state_dict(tensors, source=str(path), metadata=metadata)
        return model.to(device=device, dtype=dtype).eval()

    @classmethod
    def from_state_dict(cls, tensors: dict, source: str = "<memory>", metadata: dict | None = None) -> "PulidFlux":
        metadata = metadata or {}
        _reject_other_formats(tensors, source)
        enc_sd = {k[len("pulid_encoder."):]: v for k, v in tensors.items() if k.startswith("pulid_encoder.")}
        ca_sd = {k[len("pulid_ca."):]: v for k, v in tensors.items() if k.startswith("pulid_ca.")}
        stray = [k for k in tensors if not k.startswith(("pulid_encoder.", "pulid_ca."))]
        if stray:
            raise PulidWeightsError(source, f"has keys outside pulid_encoder/pulid_ca; expected {EXPECTED}",
                                    unexpected=stray)

        encoder = _build_encoder(enc_sd, source, metadata)
        ca = _build_adapters(ca_sd, source, metadata)
        if ca[0].to_kv.in_features != encoder.config.output_dim:
            raise PulidWeightsError(
                source, f"the adapters read {ca[0].to_kv.in_features}-d ID tokens but the encoder writes "
                        f"{encoder.config.output_dim}-d ones; the file mixes two models")
        log.info("PuLID-Flux weights %s: %d adapters for %d-wide Flux, %d ID tokens of %d",
                 Path(source).name, len(ca), ca[0].to_q.in_features, encoder.config.num_queries,
                 encoder.config.output_dim)
        model = cls(encoder, ca, source=source)
        # Inference only: no autograd graphs on the sampling path.
        return model.requires_grad_(False)


def _reject_other_formats(tensors: dict, source: str):
    keys = list(tensors)
    if not keys:
        raise PulidWeightsError(source, f"holds no tensors; expected {EXPECTED}")
    if any(k.startswith("id_adapter") for k in keys):
        raise PulidWeightsError(
            source, "this is an SDXL PuLID file (pulid_v1 / pulid_v1.1: id_adapter.* keys), which has no "
                    f"Flux adapters; expected {EXPECTED}", unexpected=keys)
    if any("lora" in k.lower() for k in keys):
        raise PulidWeightsError(source, f"this looks like a LoRA, not PuLID weights; expected {EXPECTED}",
                                unexpected=keys)
    missing = [p + "*" for p in ("pulid_encoder.", "pulid_ca.") if not any(k.startswith(p) for k in keys)]
    if missing:
        raise PulidWeightsError(source, f"is not a PuLID-Flux file; expected {EXPECTED}",
                                missing=missing, unexpected=[k for k in keys if not k.startswith("pulid_")])


def _shape(sd, key, source, ndim):
    if key not in sd:
        raise PulidWeightsError(source, f"incomplete encoder; expected {EXPECTED}", missing=["pulid_encoder." + key])
    t = sd[key]
    if t.ndim != ndim:
        raise PulidWeightsError(source, f"pulid_encoder.{key} has shape {tuple(t.shape)}, expected {ndim} dimensions")
    return t.shape


def _int_meta(metadata, key):
    value = metadata.get(key)
    return int(value) if value not in (None, "") else None


def _build_encoder(sd: dict, source: str, metadata: dict) -> IDFormer:
    _, num_queries, dim = _shape(sd, "latents", source, 3)
    _, output_dim = _shape(sd, "proj_out", source, 2)
    mapping_dim, id_cond_dim = _shape(sd, "id_embedding_mapping.0.weight", source, 2)
    id_tokens_width, _ = _shape(sd, "id_embedding_mapping.6.weight", source, 2)
    _, vit_dim = _shape(sd, "mapping_0.0.weight", source, 2)
    attn_inner, _ = _shape(sd, "layers.0.0.to_q.weight", source, 2)
    ff_inner, _ = _shape(sd, "layers.0.1.1.weight", source, 2)
    depth = 1 + max(int(m.group(1)) for k in sd if (m := _LAYER_KEY.match(k)))
    num_scales = 1 + max(int(m.group(1)) for k in sd if (m := _MAPPING_KEY.match(k)))
    if id_tokens_width % dim:
        raise PulidWeightsError(source, f"id_embedding_mapping.6 writes {id_tokens_width} values, not a multiple "
                                        f"of the token width {dim}")
    config = IDFormerConfig(
        dim=dim, depth=depth, heads=official_heads(attn_inner, _int_meta(metadata, "pulid.encoder.heads")),
        num_id_token=id_tokens_width // dim, num_queries=num_queries, output_dim=output_dim,
        ff_inner=ff_inner, id_cond_dim=id_cond_dim, mapping_dim=mapping_dim, vit_dim=vit_dim,
        num_scales=num_scales)
    try:
        encoder = IDFormer(config, attn_inner=attn_inner)
    except ValueError as exc:
        raise PulidWeightsError(source, str(exc)) from exc
    _load_strict(encoder, sd, source, "pulid_encoder.")
    return encoder


def _build_adapters(sd: dict, source: str, metadata: dict) -> nn.ModuleList:
    indices = sorted({int(m.group(1)) for k in sd if (m := re.match(r"^(\d+)\.", k))})
    if indices != list(range(len(indices))):
        raise PulidWeightsError(source, f"the adapters pulid_ca.N are not numbered 0..{len(indices) - 1}",
                                missing=[f"pulid_ca.{i}.*" for i in range(max(indices) + 1) if i not in indices])
    adapters = []
    heads_override = _int_meta(metadata, "pulid.ca.heads")
    for i in indices:
        q = sd.get(f"{i}.to_q.weight")
        kv = sd.get(f"{i}.to_kv.weight")
        if q is None or kv is None:
            raise PulidWeightsError(source, f"adapter pulid_ca.{i} is incomplete",
                                    missing=[f"pulid_ca.{i}.{n}" for n, t in (("to_q.weight", q), ("to_kv.weight", kv))
                                             if t is None])
        inner, dim = q.shape
        ca = PerceiverAttentionCA(dim=dim, kv_dim=kv.shape[1], inner=inner,
                                  heads=official_heads(inner, heads_override))
        _load_strict(ca, {k[len(f"{i}."):]: v for k, v in sd.items() if k.startswith(f"{i}.")},
                     source, f"pulid_ca.{i}.")
        adapters.append(ca)
    return nn.ModuleList(adapters)


def _load_strict(module: nn.Module, sd: dict, source: str, prefix: str):
    expected = module.state_dict()
    missing = [prefix + k for k in expected if k not in sd]
    unexpected = [prefix + k for k in sd if k not in expected]
    wrong = [f"{prefix}{k} {tuple(sd[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if k in sd and sd[k].shape != v.shape]
    if missing or unexpected or wrong:
        problem = "weights do not fit the architecture read from the file"
        if wrong:
            problem += "; wrong shapes: " + ", ".join(wrong[:6])
        raise PulidWeightsError(source, problem, missing=missing, unexpected=unexpected)
    module.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
