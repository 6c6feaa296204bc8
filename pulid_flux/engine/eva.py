"""PuLID's face encoder: the EVA02-CLIP-L-14-336 visual tower (on timm's ``Eva``) and its input pipeline.

PuLID feeds the tower a gray face on a white background (:func:`face_features_image`), resized and
normalised like OpenAI CLIP (:func:`preprocess`). It keeps two things from the tower: the projected
CLS vector (L2-normalised by the caller) and the residual stream entering blocks 4, 8, 12, 16 and 20.

Weights come in the EVA-CLIP checkpoint layout (``visual.*`` keys, as in
``EVA02_CLIP_L_336_psz14_s6B.pt``, which also holds the text tower). Every size is read from the
weights; the RoPE tables are not stored in the file and are computed when the tower is built.
"""

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PulidWeightsError
from ..weights import read_state_dict

__all__ = [
    "BACKGROUND_LABELS",
    "HIDDEN_BLOCKS",
    "OPENAI_CLIP_MEAN",
    "OPENAI_CLIP_STD",
    "EvaConfig",
    "EvaVisionTower",
    "build_trunk",
    "face_features_image",
    "preprocess",
]

log = logging.getLogger(__name__)

EXPECTED = ("an EVA02-CLIP visual tower (EVA02_CLIP_L_336_psz14_s6B.pt, or its visual.* keys saved as "
            "safetensors)")

#: BiSeNet (CelebAMask-HQ) classes PuLID paints white: background, ears, earring, neck, necklace,
#: cloth, hat. Hair, skin, brows, eyes, glasses, nose, mouth and lips stay. Valid for BiSeNet only.
BACKGROUND_LABELS = frozenset({0, 7, 8, 9, 14, 15, 16, 18})
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

HEAD_WIDTH = 64
#: EVA02-CLIP-L was pre-trained at 224 px / patch 14 = a 16x16 grid; its RoPE positions are
#: rescaled onto the fine-tuning grid (EVA-CLIP's ``intp_freq``).
PT_HW_SEQ_LEN = 16
#: PuLID keeps the activation entering block ``idx`` when ``0 < idx <= 20 and idx % 4 == 0``.
HIDDEN_BLOCKS = (4, 8, 12, 16, 20)
LAYER_NORM_EPS = 1e-6

_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.")
_VISUAL_PREFIX = "visual."


@dataclass(frozen=True)
class EvaConfig:
    """Sizes of an EVA02-CLIP visual tower, all read from its weights."""

    width: int = 1024
    depth: int = 24
    mlp_hidden: int = 2730
    patch_size: int = 14
    grid_size: int = 24
    embed_dim: int = 768

    @property
    def heads(self) -> int:
        return self.width // HEAD_WIDTH

    @property
    def image_size(self) -> int:
        return self.grid_size * self.patch_size

    @property
    def num_tokens(self) -> int:
        """Patch tokens plus the CLS token (577 for the 336 px tower)."""
        return self.grid_size ** 2 + 1


# -- face features and preprocessing ----------------------------------------------------------

def face_features_image(aligned: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The image PuLID shows EVA: the face in gray, everything BiSeNet calls background in white.

    ``aligned`` is (B,3,H,W) RGB in [0,1]; ``labels`` holds the BiSeNet classes, (B,1,H,W) or (B,H,W).
    The gray is 0.299 R + 0.587 G + 0.114 B copied to three channels; white is 1.0 (before normalising).
    """
    if aligned.ndim != 4 or aligned.shape[1] != 3:
        raise ValueError(f"aligned faces must be (B, 3, H, W) RGB, got shape {tuple(aligned.shape)}")
    if labels.ndim == 3:
        labels = labels.unsqueeze(1)
    if labels.ndim != 4 or labels.shape[1] != 1:
        raise ValueError(f"parsing labels must be (B, 1, H, W) or (B, H, W), got shape {tuple(labels.shape)}")
    if labels.shape[0] != aligned.shape[0] or labels.shape[2:] != aligned.shape[2:]:
        raise ValueError(f"parsing labels {tuple(labels.shape)} do not cover the aligned faces "
                         f"{tuple(aligned.shape)} (same batch and H, W expected)")
    if labels.is_floating_point():
        if not torch.equal(labels, labels.round()):
            raise ValueError("parsing labels must be class indices (integers), got fractional values")
        labels = labels.round()
    labels = labels.to(device=aligned.device, dtype=torch.int64)
    background = torch.isin(labels, torch.tensor(sorted(BACKGROUND_LABELS), device=labels.device))
    gray = 0.299 * aligned[:, 0:1] + 0.587 * aligned[:, 1:2] + 0.114 * aligned[:, 2:3]
    return torch.where(background, torch.ones_like(aligned), gray.repeat(1, 3, 1, 1))


def preprocess(image: torch.Tensor, size: int = 336) -> torch.Tensor:
    """(B,3,H,W) in [0,1] -> (B,3,size,size): bicubic antialiased resize, then OpenAI CLIP mean/std.

    The resize is the one ``torchvision.transforms.functional.resize`` applies to a float tensor
    (bicubic, ``antialias=True``, no clamping). PuLID resizes the shorter side to ``size``; its
    aligned faces are square, so both give ``size`` x ``size``. Non-square input is stretched here.
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"EVA input must be (B, 3, H, W) RGB, got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"EVA input must be a float image in [0, 1], got dtype {image.dtype}")
    if tuple(image.shape[2:]) != (size, size):
        image = F.interpolate(image, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    mean = torch.tensor(OPENAI_CLIP_MEAN, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
    return (image - mean) / std


# -- the tower --------------------------------------------------------------------------------

class EvaVisionTower(nn.Module):
    """EVA02-CLIP visual tower returning ``(cls, hidden)`` as PuLID consumes them.

    ``cls`` (B, embed_dim) is ``head(norm(x)[:, 0])``, not normalised. ``hidden`` is a list of
    ``len(HIDDEN_BLOCKS)`` tensors (B, num_tokens, width): the residual stream entering blocks 4, 8,
    12, 16 and 20, CLS token kept, no final norm.
    """

    def __init__(self, config: EvaConfig, trunk: nn.Module, source: str = "<memory>"):
        super().__init__()
        self.config = config
        self.trunk = trunk
        self.source = source
        # timm numbers intermediates by the block that produced them: "entering block i" = output of i-1.
        self._take = [i - 1 for i in HIDDEN_BLOCKS]

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        c = self.config
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, c.image_size, c.image_size):
            raise ValueError(f"EVA input must be (B, 3, {c.image_size}, {c.image_size}) and normalised "
                             f"(see preprocess), got shape {tuple(x.shape)}")
        final, taken = self.trunk.forward_intermediates(
            x, indices=self._take, output_fmt="NLC", return_prefix_tokens=True)
        hidden = [torch.cat((prefix, patches), dim=1) for patches, prefix in taken]
        cls = self.trunk.forward_head(final)
        return cls, hidden

    @torch.no_grad()
    def encode_face(self, face_features: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """face_features (B,3,H,W) in [0,1] (see :func:`face_features_image`) -> (L2-normalised cls, hidden).

        Preprocessing runs in float32 on the tower's device; the tower runs in its own dtype, as the
        official pipeline does. Outputs are in the tower's dtype.
        """
        p = self.trunk.pos_embed
        x = preprocess(face_features.to(device=p.device, dtype=torch.float32), self.config.image_size)
        cls, hidden = self(x.to(dtype=p.dtype))
        cls = cls / torch.linalg.vector_norm(cls, dim=1, keepdim=True)
        return cls, hidden

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path, device="cpu", dtype=torch.float32) -> "EvaVisionTower":
        tensors, _ = read_state_dict(path, expect=EXPECTED)
        return cls.from_state_dict(tensors, source=str(path), device=device, dtype=dtype)

    @classmethod
    def from_state_dict(cls, tensors: dict, source: str = "<memory>", device="cpu",
                        dtype=torch.float32) -> "EvaVisionTower":
        """Build the tower from EVA-CLIP keys (``visual.*``, or the same keys without the prefix).

        Keys outside ``visual.*`` (the text tower, ``logit_scale``) are ignored when the prefix is used.
        """
        sd, prefix = _visual_state_dict(tensors, source)
        config = _infer_config(sd, source, prefix)
        _check_layout(sd, config, source, prefix)
        trunk = build_trunk(config, device="meta")
        from timm.models.eva import checkpoint_filter_fn
        timm_sd = checkpoint_filter_fn(sd, trunk)
        timm_sd = {k: v.to(device=device, dtype=dtype) for k, v in timm_sd.items()}
        try:
            # assign=True adopts the loaded tensors, so the 300M parameters are never randomly initialised.
            trunk.load_state_dict(timm_sd, strict=True, assign=True)
        except RuntimeError as exc:
            raise PulidWeightsError(source, f"the weights do not fit timm's Eva built for {config} ({exc}); "
                                            f"expected {EXPECTED}") from exc
        trunk = trunk.to(device=device, dtype=dtype).eval().requires_grad_(False)
        leftover = [n for n, t in (*trunk.named_parameters(), *trunk.named_buffers()) if t.is_meta]
        if leftover:
            raise RuntimeError(f"timm's Eva left tensors unloaded after loading {source}: {leftover}; "
                               f"this timm version is not supported")
        log.info("EVA-CLIP visual tower %s: width %d, %d blocks, %d heads, %d px / patch %d, head -> %d",
                 Path(source).name, config.width, config.depth, config.heads, config.image_size,
                 config.patch_size, config.embed_dim)
        return cls(config, trunk, source=source)


def build_trunk(config: EvaConfig, device="cpu") -> nn.Module:
    """timm ``Eva`` configured as EVA-CLIP's EVAVisionTransformer (rope, intp_freq, naiveswiglu, subln).

    On ``device="meta"`` only the shapes are allocated (weights are loaded with ``assign=True``); the
    RoPE tables, which are buffers computed at construction, are then taken from a depth-0 twin built
    on the CPU, so they come out of exactly the same timm code.
    """
    from timm.models.eva import Eva

    kwargs = {
        "img_size": config.image_size, "patch_size": config.patch_size, "embed_dim": config.width,
        "num_heads": config.heads,
        # Eva sizes the MLP as int(width * mlp_ratio); +0.5 keeps float rounding from losing a unit.
        "mlp_ratio": (config.mlp_hidden + 0.5) / config.width,
        "qkv_fused": False, "swiglu_mlp": True, "scale_mlp": True, "scale_attn_inner": True,
        "use_rot_pos_emb": True, "ref_feat_shape": (PT_HW_SEQ_LEN, PT_HW_SEQ_LEN),
        "global_pool": "token", "norm_layer": _layer_norm,
    }
    if str(device) != "meta":
        return Eva(depth=config.depth, num_classes=config.embed_dim, **kwargs).to(device)
    with torch.device("meta"):
        trunk = Eva(depth=config.depth, num_classes=config.embed_dim, **kwargs)
    with torch.device("cpu"):
        trunk.rope = Eva(depth=0, num_classes=0, **kwargs).rope
    return trunk


def _layer_norm(dim, **kwargs):
    return nn.LayerNorm(dim, eps=LAYER_NORM_EPS, **kwargs)


# -- checkpoint layout ------------------------------------------------------------------------

def _is_rope_buffer(key: str) -> bool:
    # EVA-CLIP's rope tables (rope.freqs_cos/sin, also under blocks.N.attn.rope) are recomputed.
    return key.startswith("rope.") or ".rope." in key


def _visual_state_dict(tensors: dict, source: str) -> tuple[dict, str]:
    """The tower's tensors without their prefix, and that prefix (``visual.`` or none) for messages."""
    if not tensors:
        raise PulidWeightsError(source, f"holds no tensors; expected {EXPECTED}")
    prefix = _VISUAL_PREFIX if any(k.startswith(_VISUAL_PREFIX) for k in tensors) else ""
    sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    dropped = [k for k in sd if _is_rope_buffer(k)]
    if dropped:
        log.debug("%s: ignoring %d stored rope buffers (recomputed)", source, len(dropped))
    return {k: v for k, v in sd.items() if not _is_rope_buffer(k)}, prefix


def _infer_config(sd: dict, source: str, prefix: str) -> EvaConfig:
    anchors = ("pos_embed", "cls_token", "patch_embed.proj.weight", "head.weight", "blocks.0.mlp.w1.weight")
    missing = [k for k in anchors if k not in sd]
    if missing:
        known = set(_expected_shapes(EvaConfig(depth=1)))
        foreign = [k for k in sd if _BLOCK_KEY.sub("blocks.0.", k) not in known]
        raise PulidWeightsError(
            source, f"is not an EVA02-CLIP visual tower (SwiGLU EVA-CLIP layout); expected {EXPECTED}",
            missing=[prefix + k for k in missing], unexpected=[prefix + k for k in foreign])

    def dims(key, ndim):
        t = sd[key]
        if t.ndim != ndim:
            raise PulidWeightsError(source, f"{prefix}{key} has shape {tuple(t.shape)}, expected {ndim} dimensions; "
                                            f"expected {EXPECTED}")
        return tuple(t.shape)

    _, tokens, width = dims("pos_embed", 3)
    width_out, in_chans, patch_h, patch_w = dims("patch_embed.proj.weight", 4)
    embed_dim, head_in = dims("head.weight", 2)
    mlp_hidden, _ = dims("blocks.0.mlp.w1.weight", 2)
    grid = math.isqrt(max(tokens - 1, 0))
    problems = []
    if grid < 1 or grid * grid != tokens - 1:
        problems.append(f"{prefix}pos_embed holds {tokens} tokens, not 1 CLS + a square grid of patches")
    if patch_h != patch_w or in_chans != 3 or width_out != width:
        problems.append(f"{prefix}patch_embed.proj.weight is {(width_out, in_chans, patch_h, patch_w)}, expected "
                        f"({width}, 3, P, P)")
    if head_in != width:
        problems.append(f"{prefix}head.weight reads {head_in} features but the tower is {width} wide")
    if width % HEAD_WIDTH:
        problems.append(f"width {width} is not a multiple of the EVA head width {HEAD_WIDTH}")
    if problems:
        raise PulidWeightsError(source, "; ".join(problems) + f"; expected {EXPECTED}")

    indices = sorted({int(m.group(1)) for k in sd if (m := _BLOCK_KEY.match(k))})
    depth = len(indices)
    if indices != list(range(depth)):
        raise PulidWeightsError(source, f"the blocks are not numbered 0..{max(indices)}",
                                missing=[f"{prefix}blocks.{i}.*" for i in range(max(indices) + 1) if i not in indices])
    if depth <= HIDDEN_BLOCKS[-1]:
        raise PulidWeightsError(
            source, f"the tower has {depth} blocks; PuLID reads the residual stream entering blocks "
                    f"{', '.join(map(str, HIDDEN_BLOCKS))}, so it needs at least {HIDDEN_BLOCKS[-1] + 1}")
    return EvaConfig(width=width, depth=depth, mlp_hidden=mlp_hidden, patch_size=patch_h, grid_size=grid,
                     embed_dim=embed_dim)


def _expected_shapes(c: EvaConfig) -> dict[str, tuple]:
    """Every key of an EVA-CLIP visual tower (without ``visual.``) and its shape."""
    w, h = c.width, c.mlp_hidden
    shapes = {
        "cls_token": (1, 1, w),
        "pos_embed": (1, c.num_tokens, w),
        "patch_embed.proj.weight": (w, 3, c.patch_size, c.patch_size),
        "patch_embed.proj.bias": (w,),
        "norm.weight": (w,), "norm.bias": (w,),
        "head.weight": (c.embed_dim, w), "head.bias": (c.embed_dim,),
    }
    block = {
        "norm1.weight": (w,), "norm1.bias": (w,),
        "attn.q_proj.weight": (w, w), "attn.k_proj.weight": (w, w), "attn.v_proj.weight": (w, w),
        "attn.q_bias": (w,), "attn.v_bias": (w,),
        "attn.inner_attn_ln.weight": (w,), "attn.inner_attn_ln.bias": (w,),
        "attn.proj.weight": (w, w), "attn.proj.bias": (w,),
        "norm2.weight": (w,), "norm2.bias": (w,),
        "mlp.w1.weight": (h, w), "mlp.w1.bias": (h,),
        "mlp.w2.weight": (h, w), "mlp.w2.bias": (h,),
        "mlp.ffn_ln.weight": (h,), "mlp.ffn_ln.bias": (h,),
        "mlp.w3.weight": (w, h), "mlp.w3.bias": (w,),
    }
    for i in range(c.depth):
        shapes.update({f"blocks.{i}.{k}": s for k, s in block.items()})
    return shapes


def _check_layout(sd: dict, config: EvaConfig, source: str, prefix: str):
    expected = _expected_shapes(config)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [f"{prefix}{k} {tuple(sd[k].shape)} (expected {s})"
             for k, s in expected.items() if k in sd and tuple(sd[k].shape) != s]
    not_float = [f"{prefix}{k} ({v.dtype})" for k, v in sd.items() if k in expected and not v.is_floating_point()]
    if missing or unexpected or wrong or not_float:
        problem = (f"does not match the EVA02-CLIP visual tower its own shapes describe (width {config.width}, "
                   f"{config.depth} blocks, MLP {config.mlp_hidden})")
        if wrong:
            problem += "; wrong shapes: " + ", ".join(wrong[:6])
        if not_float:
            problem += "; not floating point: " + ", ".join(not_float[:6])
        raise PulidWeightsError(source, problem + f"; expected {EXPECTED}",
                                missing=[prefix + k for k in missing], unexpected=[prefix + k for k in unexpected])
