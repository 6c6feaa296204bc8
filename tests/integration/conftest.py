"""Integration tier: its fixtures (comfy, tiny_models, comfy_server) live in tests/conftest.py so the
browser tier shares the same server; this folder adds the server helper module to the path."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # comfy_server, conftest_paths helper modules
