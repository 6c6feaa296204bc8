"""A random-weight CLIP-L text encoder (``clip_l.safetensors``) for the tiny Flux.

Layout: the Hugging Face ``CLIPTextModelWithProjection`` keys that ComfyUI's ``sd1_clip`` loads
(``text_model.embeddings.*``, ``text_model.encoder.layers.N.*``, ``text_model.final_layer_norm.*``,
``text_projection.weight``), fp16 like the ``clip_l.safetensors`` users download.

It has to be the real size (12 layers, width 768, MLP 3072, vocabulary 49408, 77 positions, about
123 M parameters, ~236 MB in fp16): ComfyUI builds the CLIP-L module from its own fixed
``sd1_clip_config.json`` and only adapts the number of positions to the file, so a narrower or
shallower file fails to load or leaves layers uninitialised.

Loading it for Flux (checked against ComfyUI 0.33, ``comfy/sd.py: load_text_encoder_state_dicts``,
in-process and through a real server prompt):

* Node graph: ``CLIPLoader`` with ``type="stable_diffusion"`` (the default). The node offers no
  ``"flux"`` type (only ``"flux2"``, which is another model). A lone CLIP-L is detected as
  ``TEModel.CLIP_L`` and built as ``sd1_clip.SD1ClipModel`` for every type except
  ``sd3``/``hidream``; the conditioning is tokens (B, 77, 768) plus a 768-d ``pooled_output`` (the
  projected EOS token), exactly what a Flux with ``context_in_dim = vec_in_dim = 768`` consumes
  (``y`` = pooled; guidance from ``FluxGuidance``).
* In-process: ``comfy.sd.load_clip([path], clip_type=CLIPType.FLUX)`` or ``STABLE_DIFFUSION`` give
  the same ``SD1ClipModel`` and identical conditioning.
* Encode with the plain ``CLIPTextEncode`` (+ ``FluxGuidance``). ``CLIPTextEncodeFlux`` does not work
  with it: that node also asks the tokenizer for ``t5xxl`` tokens, which a CLIP-L-only tokenizer
  does not produce.
* ``DualCLIPLoader(type="flux")`` is not usable: it needs a real T5-XXL as its second file (4096-d
  tokens, which the 768-wide tiny Flux cannot take); given this file twice it routes both to CLIP-L
  and leaves a full-size, uninitialised T5-XXL (9 GB, non-finite output).
"""

from dataclasses import dataclass

import torch

from .files import config_dict, ensure_file
from .random_weights import SeededTensors


@dataclass(frozen=True)
class ClipLConfig:
    """Fixed by ComfyUI's ``sd1_clip_config.json``; kept as a config only for the fingerprint."""
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_layers: int = 12
    vocab_size: int = 49408
    max_positions: int = 77


CLIP_L = ClipLConfig()


def clip_l_state_dict(seed: int = 0, dtype: torch.dtype = torch.float16,
                      config: ClipLConfig = CLIP_L) -> dict[str, torch.Tensor]:
    c = config
    h = c.hidden_size
    t = SeededTensors(seed, dtype)
    t.embedding("text_model.embeddings.token_embedding.weight", c.vocab_size, h, std=0.02)
    t.embedding("text_model.embeddings.position_embedding.weight", c.max_positions, h, std=0.01)
    for i in range(c.num_layers):
        p = f"text_model.encoder.layers.{i}"
        t.norm(f"{p}.layer_norm1", h)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t.linear(f"{p}.self_attn.{proj}", h, h)
        t.norm(f"{p}.layer_norm2", h)
        t.linear(f"{p}.mlp.fc1", c.intermediate_size, h)
        t.linear(f"{p}.mlp.fc2", h, c.intermediate_size)
    t.norm("text_model.final_layer_norm", h)
    t.linear("text_projection", h, h, bias=False)
    return t.tensors


def write_clip_l(path, seed: int = 0, dtype: torch.dtype = torch.float16, config: ClipLConfig = CLIP_L):
    """Write (or reuse) a random ``clip_l.safetensors``; returns its path."""
    return ensure_file(path, "clip_l", config_dict(config), seed, dtype,
                       lambda: clip_l_state_dict(seed, dtype, config), source=__file__)
