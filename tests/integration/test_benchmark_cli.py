"""`python -m benchmarks.pulid_overhead --json` runs against ComfyUI's blocks and prints its ratios.

Only the interface and the FLOP arithmetic are asserted: timings are the benchmark's business.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest_paths import ROOT

pytestmark = pytest.mark.integration


def test_overhead_benchmark_prints_its_ratios(comfyui_path):
    env = dict(os.environ, COMFYUI_PATH=str(comfyui_path), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "benchmarks.pulid_overhead", "--json", "--scale", "8",
                           "--repeats", "1", "--image-tokens", "256", "--text-tokens", "64"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("overhead_ratio", "flop_floor_ratio", "overhead_outside_window"):
        assert isinstance(result[key], float) and result[key] >= 0, key
    from benchmarks.pulid_overhead import dims, flops
    f = flops(dims(8), 256, 64)
    assert result["flop_floor_ratio"] == pytest.approx(f["pulid"] / f["step"])
    # At real FLUX dimensions the floor is the published ~2.8 % at 1024x1024.
    assert result["real_dims_flop_floor_ratio"] == pytest.approx(0.0282, abs=0.001)
