"""PuLID-Flux Studio: ComfyUI custom-node pack entry point (V3 schema: `comfy_entrypoint`).

No NODE_CLASS_MAPPINGS here: ComfyUI would then ignore `comfy_entrypoint`.
"""

from .nodes import comfy_entrypoint  # noqa: F401

WEB_DIRECTORY = "./web"
