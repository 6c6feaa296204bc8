"""Tiny random-weight models in the exact file formats users have, for tests and smoke runs.

``build_tiny_models(models_dir)`` writes a FLUX.1-dev transformer, a CLIP-L text encoder, a Flux
VAE, an ai-toolkit LoRA, two union ControlNets and a PuLID-Flux file into ComfyUI's standard
sub-folders (see :mod:`.build`); the per-family builders live in their own modules. Named in
``include``, it also writes the model-family files (Kontext, Chroma, Chroma Radiance, fp8, scaled
fp8, GGUF, and an SD1.5 UNet to refuse).
"""

from .build import FILES, build_tiny_models

__all__ = ["FILES", "build_tiny_models"]
