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
    real = flops(dims(1), 256, 64)
    assert result["real_dims_flop_floor_ratio"] == pytest.approx(real["pulid"] / real["step"])
    # At real FLUX dimensions the floor is the published ~2.8 % at 1024x1024 and ~2.4 % at 512x512.
    at_1024, at_512 = flops(dims(1), 4096, 512), flops(dims(1), 1024, 512)
    assert at_1024["pulid"] / at_1024["step"] == pytest.approx(0.028, abs=0.001)
    assert at_512["pulid"] / at_512["step"] == pytest.approx(0.024, abs=0.001)
