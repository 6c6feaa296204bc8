"""The checkpoint sweep's job order against the naive one: LoRA loads, text encodings and wall time.

One ComfyUI server is launched from COMFYUI_PATH with the tiny models and a folder of tiny
ai-toolkit checkpoints as an extra LoRA path. The same sweep (N checkpoints x P prompts, the
shipped spec's 02_lora config, 256x256 latents) runs twice through the run engine's scheduler:

- sweep order (``api_client.runner.sources.sweep.jobs``): checkpoint-major, prompts snaking, one block per
  checkpoint;
- naive order: prompt-major (every checkpoint of a prompt back to back, as the ablation orders
  configs).

Each run uses its own seed, so no image comes from ComfyUI's cache of the other run. From every
job's observed events: how often the LoRA loader executed (a LoRA read and the model re-patched)
and how often the text encoder did; wall time is the run's span. On the tiny models a LoRA patch
is cheap and the full-size CLIP-L text encoder is not, so the wall time here understates what the
order saves on a real FLUX (where each re-patch rewrites ~12 B weights).

    COMFYUI_PATH=/path/to/ComfyUI python -m benchmarks.sweep_order [--checkpoints 4] [--prompts 3]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "workflows" / "ablation.yaml"
SMALL = ('"Latent".width=256', '"Latent".height=256')


def _plan(folder: Path, prompts: int, seed: int, strength: float | None = None):
    from api_client.overrides import parse_override, resolve_node
    from api_client.runner.sources.ablation.jobs import Selection
    from api_client.runner.sources.ablation.spec import load_spec
    from api_client.runner.sources.sweep.jobs import (
        identity_columns,
        lora_strength,
        sweep_config,
        sweep_jobs,
    )
    from pulid_flux.sweep.checkpoints import discover_checkpoints

    spec = load_spec(SPEC)
    config = sweep_config(spec, "02_lora", "LoRA")
    checkpoints = discover_checkpoints(folder)
    strength = lora_strength(spec, config, "LoRA") if strength is None else strength
    columns = identity_columns(checkpoints, {c.file: c.file for c in checkpoints}, strength)
    selection = Selection(max_prompts=prompts, seeds=(seed,), tiny=True,
                          overrides=tuple(parse_override(o) for o in SMALL))
    jobs = sweep_jobs(spec, config, columns, lora_node="LoRA", selection=selection)
    return jobs, resolve_node(jobs[0].graph, "LoRA")


def _run(url: str, jobs, out: Path) -> dict:
    from api_client.runner.execution.comfy_backend import ComfyBackend
    from api_client.runner.execution.manifest import RunManifest
    from api_client.runner.execution.results import ResultWriter
    from api_client.runner.execution.scheduler import Scheduler

    backend = ComfyBackend(url).open()
    manifest = RunManifest(out)
    try:
        started = time.monotonic()
        outcome = Scheduler([backend], ResultWriter(manifest)).run(jobs)
        seconds = time.monotonic() - started
    finally:
        backend.close()
    if not outcome.complete:
        raise RuntimeError(f"{len(outcome.failed)} job(s) failed; see {out / 'manifest.jsonl'}")
    return {"seconds": seconds, "records": [r for r in manifest.records() if r["status"] == "done"]}


def _count(records, node: str) -> dict:
    lora = sum(node in (r["executed"] or ()) for r in records)
    text = sum(bool(set(r["text_nodes"]) & set(r["executed"] or ())) for r in records)
    return {"jobs": len(records), "lora_loads": lora, "text_encodes": text}


def run(comfyui: str, checkpoints: int = 4, prompts: int = 3) -> dict:
    from api_client.runner.execution.launch import (
        DEFAULT_TINY_MODELS,
        launch,
        prepare_tiny_models,
    )
    from api_client.runner.sources.sweep.jobs import naive_order
    from pulid_flux.tiny.lora import write_lora

    models = prepare_tiny_models(Path(os.environ.get("PULID_STUDIO_TINY_MODELS", DEFAULT_TINY_MODELS)))
    work = Path(tempfile.mkdtemp(prefix="pulid_bench_sweep_"))
    folder = work / "checkpoints"
    folder.mkdir()
    for i in range(checkpoints):
        name = "id" if i == checkpoints - 1 else f"id_{250 * (i + 1):09d}"
        write_lora(folder / f"{name}.safetensors", seed=20 + i)
    server = launch(comfyui, models_dirs=[models], log_path=work / "server.log", single_thread=True, tiny=True,
                    extra_paths={"loras": [folder]})
    try:
        # Before each measurement: a job whose LoRA (another strength) and prompt (one more than the
        # measured ones) no measured job shares, so neither run starts with anything cached; the
        # first one also loads the models.
        reset = [j for j in _plan(folder, prompts + 1, seed=1, strength=0.37)[0] if j.prompt.index == prompts + 1][:1]
        jobs, node = _plan(folder, prompts, seed=2)
        _run(server.url, reset, work / "reset1")
        ordered = _run(server.url, jobs, work / "sweep")
        naive_jobs, _ = _plan(folder, prompts, seed=3)
        _run(server.url, reset, work / "reset2")
        naive = _run(server.url, naive_order(naive_jobs), work / "naive")
    finally:
        server.stop()
    result = {"checkpoints": checkpoints, "prompts": prompts,
              "sweep": {**_count(ordered["records"], node), "seconds": ordered["seconds"]},
              "naive": {**_count(naive["records"], node), "seconds": naive["seconds"]}}
    s, n = result["sweep"], result["naive"]
    result["table_rows"] = [
        (f"| Checkpoint sweep, {checkpoints} checkpoints x {prompts} prompts (tiny models, 1 server): LoRA loads, "
        f"sweep order vs naive | {s['lora_loads']} vs {n['lora_loads']} (text encodings {s['text_encodes']} vs "
        f"{n['text_encodes']}) |"),
        (f"| … wall time, sweep order vs naive | {s['seconds']:.1f} s vs {n['seconds']:.1f} s "
        f"({n['seconds'] / s['seconds']:.2f}x) |"),
    ]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"))
    parser.add_argument("--checkpoints", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=3)
    a = parser.parse_args(argv)
    if not a.comfyui:
        parser.error("set COMFYUI_PATH or --comfyui")
    result = run(a.comfyui, a.checkpoints, a.prompts)
    print(json.dumps({k: v for k, v in result.items() if k != "table_rows"}, indent=1))
    print("\n".join(result["table_rows"]))


if __name__ == "__main__":
    main()
