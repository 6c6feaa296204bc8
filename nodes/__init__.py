"""ComfyUI glue for PuLID-Flux Studio (V3 schema). Reached only through the pack's __init__.py."""

import os

from comfy_api.v0_0_2 import ComfyExtension, io

from ..pulid_flux.tiny.comfyui_detection import TINY_FLUX_ENV, allow_narrow_flux
from . import dataset, face, identity, pose, pulid, scoring, sweep, synthesis
from .paths import register_model_folders

register_model_folders()
# Only in servers started for the tiny random-weight models (tests, `pulid-studio ... --tiny`).
if os.environ.get(TINY_FLUX_ENV) == "1":
    allow_narrow_flux()

NODE_MODULES = [pulid, face, identity, pose, scoring, dataset, sweep, synthesis]


class PulidStudioExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [node for module in NODE_MODULES for node in module.NODE_LIST]


async def comfy_entrypoint() -> PulidStudioExtension:
    return PulidStudioExtension()
