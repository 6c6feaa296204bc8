"""Run every benchmark and write the results table into the README.

    COMFYUI_PATH=/path/to/ComfyUI python -m benchmarks.run [--no-readme] [--json]

Every number is a ratio or a rate measured within one run on this machine (never a timed test):
- PuLID overhead per denoising step vs. its FLOP floor (benchmarks.pulid_overhead);
- identity encoding, first call vs. cached call (tiny models, the real pipeline);
- dataset preparation throughput with the dlib engine on the shared photos;
- the headless client: idle gap between jobs and jobs/minute with 1 and 2 servers
  (benchmarks.client_throughput, when COMFYUI_PATH is set);
- the checkpoint sweep's job order vs the naive one: LoRA loads and wall time
  (benchmarks.sweep_order, when COMFYUI_PATH is set).
"""

import argparse
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PULID_STUDIO_SHARED", ROOT.parent / "shared"))
TINY_CACHE = Path(tempfile.gettempdir()) / "pulid_studio_tiny_models"


def bench_overhead(comfyui: str) -> dict:
    from . import pulid_overhead
    return pulid_overhead.run(scale=4, repeats=3, img=4096, txt=512, comfyui=comfyui, threads=None)


def bench_encode() -> dict:
    from pulid_flux.engine.eva import EvaVisionTower
    from pulid_flux.face import load_bisenet, load_engine
    from pulid_flux.engine.encoder import EncodeCache, FaceModels, encode_identity
    from pulid_flux.engine.model import PulidFlux
    from pulid_flux.tiny import build_tiny_models
    from pulid_flux.tiny.insightface_pack import paint_faces

    files = build_tiny_models(TINY_CACHE, include=["pulid", "eva", "bisenet", "insightface"])
    engine = load_engine("insightface", pack_dir=files["insightface"])
    models = FaceModels(detector=engine, recognizer=engine, parser=load_bisenet(files["bisenet"]),
                        eva=EvaVisionTower.from_file(files["eva"]), pulid=PulidFlux.from_file(files["pulid"]))
    image = paint_faces(640, 640, [(9, 8)])
    cache = EncodeCache()
    t0 = time.perf_counter()
    encode_identity([image], models, cache=cache)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    encode_identity([image], models, cache=cache)
    cached = time.perf_counter() - t0
    return {"first_s": first, "cached_s": cached, "speedup": first / cached}


def bench_dataset() -> dict | None:
    photos = SHARED / "faces" / "photos"
    if not photos.is_dir():
        return None
    from pulid_flux.dataset import prepare_dataset
    from pulid_flux.face import load_engine

    out = Path(tempfile.mkdtemp(prefix="pulid_bench_dataset_"))
    try:
        t0 = time.perf_counter()
        result = prepare_dataset(photos, out, "ohwx man", load_engine("dlib"))
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    n = len(result.items)
    return {"photos": n, "seconds": seconds, "photos_per_s": n / seconds, "accepted": len(result.accepted)}


def bench_client(comfyui: str) -> dict | None:
    try:
        from . import client_throughput
    except ImportError:
        return None
    return client_throughput.run(comfyui)


def bench_sweep_order(comfyui: str) -> dict:
    from . import sweep_order
    return sweep_order.run(comfyui)


def table(results: dict) -> str:
    rows = ["| Benchmark | Result |", "|---|---|"]
    o = results.get("pulid_overhead")
    if o:
        rows.append(f"| PuLID overhead per step, FLUX/{o['scale']} at {o['image_tokens']}+{o['text_tokens']} tokens | "
                    f"{o['overhead_ratio']:.2%} of a step (FLOP floor {o['flop_floor_ratio']:.2%}: "
                    f"{o['overhead_ratio'] / o['flop_floor_ratio']:.2f}x the floor) |")
        rows.append(f"| … with the sigma outside [start_at, end_at] | {o['overhead_outside_window']:.4%} |")
        rows.append(f"| FLOP floor at real FLUX dimensions, 1024² | {o['real_dims_flop_floor_ratio']:.2%} |")
    e = results.get("encode")
    if e:
        rows.append(f"| Identity encoding (tiny models), first vs cached call | {e['first_s'] * 1e3:.0f} ms vs "
                    f"{e['cached_s'] * 1e3:.2f} ms ({e['speedup']:.0f}x) |")
    d = results.get("dataset")
    if d:
        rows.append(f"| Dataset prep, dlib engine, {d['photos']} photos | {d['photos_per_s']:.2f} photos/s "
                    f"({d['seconds']:.1f} s) |")
    for key in ("client", "sweep_order"):
        rows += (results.get(key) or {}).get("table_rows", [])
    rows.append(f"\nMeasured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores with "
                "`python -m benchmarks.run`.")
    return "\n".join(rows)


def write_readme(text: str, readme: Path = ROOT / "README.md") -> None:
    content = readme.read_text()
    new = re.sub(r"(<!-- benchmarks:start -->\n).*?(\n<!-- benchmarks:end -->)",
                 lambda m: m.group(1) + text + m.group(2), content, flags=re.DOTALL)
    readme.write_text(new)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"))
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md alone")
    parser.add_argument("--json", action="store_true")
    a = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = {}
    if a.comfyui:
        results["pulid_overhead"] = bench_overhead(a.comfyui)
    results["encode"] = bench_encode()
    results["dataset"] = bench_dataset()
    if a.comfyui:
        results["client"] = bench_client(a.comfyui)
        results["sweep_order"] = bench_sweep_order(a.comfyui)
    text = table(results)
    if a.json:
        print(json.dumps(results, default=str))
    else:
        print(text)
    if not a.no_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
