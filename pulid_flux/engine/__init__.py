"""The PuLID-Flux engine: everything that knows what PuLID is.

- :mod:`.attention`, :mod:`.ca`, :mod:`.idformer`: the official building blocks (perceiver
  attention, the 20 cross-attention adapters, the IDFormer);
- :mod:`.model`: :class:`~.model.PulidFlux`, the weights file as one module (sizes read from it);
- :mod:`.eva`: the EVA02-CLIP-L visual tower and the gray-face image it reads;
- :mod:`.encoder`: reference photos -> ID tokens (the face pipeline of :mod:`pulid_flux.face`,
  then EVA and the IDFormer), fused and cached;
- :mod:`.identity`: :class:`~.identity.PulidIdentity` and its ``.pulidembd`` file format;
- :mod:`.inject`: the ComfyUI block hooks that add the identity to a Flux model clone.

The engine imports the base (:mod:`pulid_flux.errors`, :mod:`pulid_flux.images`,
:mod:`pulid_flux.weights`) and :mod:`pulid_flux.face`; nothing below it imports the engine
(``docs/architecture.md``).
"""
