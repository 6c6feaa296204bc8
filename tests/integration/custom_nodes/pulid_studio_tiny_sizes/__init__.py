"""Test-only ComfyUI custom node: ComfyUI's detection reads a tiny model file's sizes from its shapes.

Loads ``pulid_flux/tiny/detection.py`` by path (this folder is linked into a test server's
``custom_nodes``; the server's Python may see another install of ``pulid_flux``) and installs it.
It changes nothing for real model files. No nodes.
"""

import importlib.util
from pathlib import Path

import comfy.model_detection

_SOURCE = Path(__file__).resolve().parents[4] / "pulid_flux" / "tiny" / "detection.py"
_spec = importlib.util.spec_from_file_location("pulid_studio_tiny_detection", _SOURCE)
_detection = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_detection)
_detection.install(comfy.model_detection)

NODE_CLASS_MAPPINGS = {}
