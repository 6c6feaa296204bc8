"""PuLID-Flux Studio: ComfyUI custom-node pack entry point (V3 schema: `comfy_entrypoint`).

No NODE_CLASS_MAPPINGS here: ComfyUI would then ignore `comfy_entrypoint`.
"""

import importlib.util

WEB_DIRECTORY = "./web"

# Tools that import the repository root as a package outside ComfyUI (pytest collecting tests/,
# packaging) must not need ComfyUI; inside ComfyUI comfy_api is always importable.
if importlib.util.find_spec("comfy_api") is not None:
    from .nodes import comfy_entrypoint  # noqa: F401
