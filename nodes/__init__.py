"""ComfyUI glue for PuLID-Flux Studio (V3 schema). Reached only through the pack's __init__.py."""

from comfy_api.v0_0_2 import ComfyExtension, io

from . import dataset, face, identity, pose, pulid, scoring, synthesis
from .paths import register_model_folders

register_model_folders()

NODE_MODULES = [pulid, face, identity, pose, scoring, dataset, synthesis]


class PulidStudioExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [node for module in NODE_MODULES for node in module.NODE_LIST]


async def comfy_entrypoint() -> PulidStudioExtension:
    return PulidStudioExtension()
