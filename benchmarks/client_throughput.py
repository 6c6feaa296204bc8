"""The headless client on real ComfyUI servers: idle gap between jobs, jobs/minute with 1 and 2 servers.

Two servers are launched from COMFYUI_PATH with the tiny models; a warm-up run loads the models on
both, then the same job set (the shipped ablation spec, ``--tiny``, small latents, a fresh seed per
measured run so nothing is served from ComfyUI's image cache) runs on one server and on two. From
each job's manifest timings (the server's execution start and end):

- idle gap: on one server, the time from a job's end to the next job's start (pipelined submission
  keeps it near zero; submit-and-wait would show a whole round trip here);
- jobs/minute: jobs / (last end - first start) * 60.

    COMFYUI_PATH=/path/to/ComfyUI python -m benchmarks.client_throughput
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "workflows" / "ablation.yaml"
SMALL = ['"Latent".width=256', '"Latent".height=256']


def _run(urls, out: Path, seed: int, prompts: int) -> list[dict]:
    cmd = [sys.executable, "-m", "api_client.runner", "run", str(SPEC), "--tiny", "--out", str(out),
           "--max-prompts", str(prompts), "--seeds", str(seed), "--quiet"]
    for url in urls:
        cmd += ["--server", url]
    for item in SMALL:
        cmd += ["--set", item]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"runner failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in lines if r.get("status") == "done"]


def measure(records: list[dict]) -> dict:
    starts = [r["timings"]["started_at"] for r in records]
    ends = [r["timings"]["finished_at"] for r in records]
    gaps = []
    by_server: dict[str, list[dict]] = {}
    for r in records:
        by_server.setdefault(r["server"], []).append(r)
    for rows in by_server.values():
        rows.sort(key=lambda r: r["timings"]["started_at"])
        gaps += [max(0.0, b["timings"]["started_at"] - a["timings"]["finished_at"]) for a, b in zip(rows, rows[1:])]
    span = max(ends) - min(starts)
    return {"jobs": len(records), "seconds": span, "jobs_per_min": len(records) / span * 60.0,
            "idle_gap_median_s": statistics.median(gaps) if gaps else 0.0,
            "servers_used": len(by_server)}


def run(comfyui: str, prompts: int = 3) -> dict:
    from api_client.runner.execution.launch import DEFAULT_TINY_MODELS, launch, prepare_tiny_models

    models = prepare_tiny_models(Path(os.environ.get("PULID_STUDIO_TINY_MODELS", DEFAULT_TINY_MODELS)))
    work = Path(tempfile.mkdtemp(prefix="pulid_bench_client_"))
    servers = [launch(comfyui, models_dirs=[models], log_path=work / f"server{i}.log", single_thread=True, tiny=True)
               for i in range(2)]
    try:
        urls = [s.url for s in servers]
        _run(urls, work / "warmup", seed=1, prompts=prompts)
        one = measure(_run(urls[:1], work / "one", seed=2, prompts=prompts))
        two = measure(_run(urls, work / "two", seed=3, prompts=prompts))
    finally:
        for s in servers:
            s.stop()
    return {
        "one_server": one, "two_servers": two, "speedup": two["jobs_per_min"] / one["jobs_per_min"],
        "table_rows": [
            f"| Client, idle gap between consecutive jobs on one server (median) | "
            f"{one['idle_gap_median_s'] * 1e3:.0f} ms |",
            f"| Client, tiny-model jobs/minute, 1 server vs 2 servers | {one['jobs_per_min']:.1f} vs "
            f"{two['jobs_per_min']:.1f} ({two['jobs_per_min'] / one['jobs_per_min']:.2f}x; 2 CPU cores shared) |",
        ],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"))
    parser.add_argument("--prompts", type=int, default=3)
    a = parser.parse_args(argv)
    if not a.comfyui:
        parser.error("set COMFYUI_PATH or --comfyui")
    print(json.dumps(run(a.comfyui, a.prompts), indent=1))


if __name__ == "__main__":
    main()
