"""``pulid-studio sweep`` against a real ComfyUI on the tiny models.

Three tiny ai-toolkit-named LoRAs (``id_000000250``, ``id_000000500`` and the final ``id``) are
swept with ``--launch --tiny --max-prompts 2``: every checkpoint x prompt x seed gives an image, the
outputs are written, the report names one of the three, ComfyUI's events show the LoRA loader
executing once per checkpoint, and the same command again submits nothing and rewrites nothing.
A ``--server`` that cannot see the checkpoints is refused before anything is queued.
"""

import csv
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest_paths import ROOT
from PIL import Image
from test_ablate import runner_env

pytestmark = pytest.mark.integration

CHECKPOINTS = ["id_000000250", "id_000000500", "id"]
PROMPTS = ["01_park-wave_s42.png", "02_studio-headshot_s42.png"]
TINY_MODELS = Path(tempfile.gettempdir()) / "pulid_studio_runner_tiny_models"
LORA_NODE = "20"                        # the "LoRA" node of workflows/02_lora_api.json


def sweep(*args) -> list[str]:
    return [sys.executable, "-m", "api_client.runner", "sweep", *args]


def write_checkpoints(folder: Path) -> Path:
    from pulid_flux.tiny.lora import write_lora

    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(CHECKPOINTS):
        write_lora(folder / f"{name}.safetensors", seed=10 + seed)        # three different LoRAs
    return folder


def write_reference(path: Path) -> Path:
    from api_client.runner.sources import tiny_reference_png

    path.write_bytes(tiny_reference_png())
    return path


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def swept(comfyui_path, tmp_path_factory):
    work = tmp_path_factory.mktemp("sweep")
    folder = write_checkpoints(work / "checkpoints")
    reference = write_reference(work / "reference.png")
    out = work / "out"
    args = [str(folder), "--reference", str(reference), "--launch", str(comfyui_path), "--tiny",
            "--tiny-models", str(TINY_MODELS), "--max-prompts", "2", "--out", str(out)]
    proc = subprocess.run(sweep(*args), cwd=ROOT, env=runner_env(), capture_output=True, text=True, timeout=2400,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return {"out": out, "args": args, "stderr": proc.stderr, "folder": folder}


@pytest.mark.timeout(2700)
def test_sweep_writes_an_image_per_checkpoint_prompt_seed_and_every_output(swept):
    out = swept["out"]
    for checkpoint in CHECKPOINTS:
        images = sorted(p.name for p in (out / "gallery" / checkpoint).glob("*.png"))
        assert images == PROMPTS, checkpoint
        for name in images:
            assert Image.open(out / "gallery" / checkpoint / name).size == (448, 608)
    with open(out / "sweep.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
        assert tuple(rows[0]) == ("step", "checkpoint", "prompt", "seed", "file", "identity_arcface", "identity_dlib",
                                  "clip_score", "memorization", "face_found")
    assert len(rows) == 6
    assert Counter(r["step"] for r in rows) == {"250": 2, "500": 2, "final": 2}
    assert {r["checkpoint"] for r in rows} == {f"{c}.safetensors" for c in CHECKPOINTS}
    assert all(-1.0 <= float(r["clip_score"]) <= 1.0 for r in rows)
    assert Image.open(out / "curve.png").size[0] > 400
    assert sorted(p.name for p in (out / "strips").glob("*.png")) == ["park-wave.png", "studio-headshot.png"]
    report = (out / "report.md").read_text()
    line = next(line for line in report.splitlines() if line.startswith("Recommended checkpoint: "))
    assert line.split(": ", 1)[1] in {f"{c}.safetensors" for c in CHECKPOINTS}
    # Random-weight images: the tiny detector may or may not "see" a face (a red patch) in them.
    if any(r["face_found"] == "1" for r in rows):
        assert "No image of any checkpoint holds a face" not in report
    else:
        assert "by CLIP score alone" in report
    assert "NOT real results" in report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert line in page and page.count('<img') >= 6 + 2 + 1       # every image, the strips, the curve
    chosen = line.split(": ", 1)[1][:-len(".safetensors")]
    spec = (out / f"ablation_{chosen}.yaml").read_text()
    assert f"LoRA.lora_name: {chosen}.safetensors" in spec
    assert "launching ComfyUI" in swept["stderr"]


@pytest.mark.timeout(2700)
def test_the_lora_loader_runs_once_per_checkpoint_per_server(swept):
    lines = records(swept["out"])
    assert len(lines) == 6 and all(r["status"] == "done" and r["executed"] is not None for r in lines)
    loads = Counter((r["server"], r["config"]) for r in lines if LORA_NODE in r["executed"])
    assert loads == {(lines[0]["server"], c): 1 for c in CHECKPOINTS}
    # The other job of each checkpoint found the patched model in ComfyUI's cache.
    cached = [r for r in lines if LORA_NODE not in r["executed"]]
    assert len(cached) == 3 and all(LORA_NODE in r["cached"] for r in cached)
    assert "executed 3 time(s) over 6 observed job(s) for 3 column(s) on 1 server(s)" in \
        (swept["out"] / "report.md").read_text()


@pytest.mark.timeout(2700)
def test_the_same_sweep_again_submits_nothing_and_rewrites_nothing(swept):
    out = swept["out"]
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".png", ".csv", ".md", ".jsonl", ".yaml"))
    before = {p: p.stat().st_mtime_ns for p in files}
    started = time.monotonic()
    proc = subprocess.run(sweep(*swept["args"]), cwd=ROOT, env=runner_env(), capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "6 already done, 0 to run" in proc.stderr and "up to date" in proc.stderr
    assert "launching ComfyUI" not in proc.stderr
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert time.monotonic() - started < 60


@pytest.mark.timeout(900)
def test_a_server_that_cannot_see_the_checkpoints_is_named(comfy_server, tmp_path):
    folder = write_checkpoints(tmp_path / "checkpoints")
    out = tmp_path / "out"
    proc = subprocess.run(sweep(str(folder), "--reference", str(write_reference(tmp_path / "ref.png")), "--server",
                                comfy_server.url, "--tiny", "--tiny-models", str(TINY_MODELS), "--out", str(out)),
                          cwd=ROOT, env=runner_env(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert (f"{comfy_server.url} lacks 3 of the LoRA files: id_000000250.safetensors, id_000000500.safetensors, "
            "id.safetensors") in proc.stderr
    assert not (out / "manifest.jsonl").exists()
