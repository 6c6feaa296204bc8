"""Integration tier: its fixtures (comfy, tiny_models, comfy_server) live in tests/conftest.py so the
browser tier shares the same server; this folder adds the server helper module to the path."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # comfy_server, conftest_paths helper modules


@pytest.fixture(scope="module")
def single_torch_thread():
    """One torch thread for the module: on a busy 2-core machine torch's thread pool turns each small
    op of a tiny model into a multi-millisecond wait; these forwards are ~20x faster single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
