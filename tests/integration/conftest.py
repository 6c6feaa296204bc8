"""Integration-tier fixtures: ComfyUI imported in-process from COMFYUI_PATH (CPU only)."""

import sys

import pytest


@pytest.fixture(scope="session")
def comfy(comfyui_path):
    """Make ComfyUI's packages importable in this process, forced onto the CPU.

    ComfyUI's model management asserts a CUDA build unless --cpu is set; under pytest its argument
    parser is off, so the flag is set on the parsed defaults before anything imports it.
    """
    root = str(comfyui_path)
    if root not in sys.path:
        sys.path.insert(0, root)
    from comfy.cli_args import args
    args.cpu = True
    import comfy.model_management  # noqa: F401  (fails here, clearly, if the checkout is broken)
    import comfy
    return comfy
