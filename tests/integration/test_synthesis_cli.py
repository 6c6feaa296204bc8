"""``pulid-studio dataset synthesize | canonicalize --launch --tiny`` against a real ComfyUI on the tiny
models: the whole loop runs (views through the run engine, the filter, captions, grounding images,
the ai-toolkit config, coverage, report, contact sheet), nothing fakes a pass, and a second run
submits nothing.

The portrait is a real photo (dlib finds the subject in it); the tiny images hold no faces, so every
candidate is recorded as no_face / unverifiable and the first K per view are written unverified.
Latents are 256x256 (the head pose follows the latent) to keep the tier within minutes.
"""

import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest_paths import ROOT
from PIL import Image

pytestmark = pytest.mark.integration

TINY_MODELS = Path(tempfile.gettempdir()) / "pulid_studio_runner_tiny_models"
SMALL = ["--set", "Latent.width=256", "--set", "Latent.height=256"]
VIEWS = ["y+0_p+0_portrait", "y+30_p+0_portrait", "y-90_p+0_portrait"]


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "api_client.cli", *args]


def run(args, timeout=2400):
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cli(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def synthesized(comfyui_path, faces_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("synthesis") / "out"
    args = ["dataset", "synthesize", str(faces_dir / "photos" / "obama_01.jpg"), "--launch", str(comfyui_path),
            "--tiny", "--tiny-models", str(TINY_MODELS), "--out", str(out), *SMALL]
    proc = run(args)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return {"out": out, "args": args, "stderr": proc.stderr}


@pytest.mark.timeout(2700)
def test_synthesize_writes_the_whole_set(synthesized):
    out = synthesized["out"]
    images = sorted((out / "train").glob("*.png"))
    assert [p.stem for p in images] == [f"{v}_s1" for v in VIEWS]               # K = 1 per view (--tiny)
    for image in images:
        assert Image.open(image).size == (256, 256)
        caption = image.with_suffix(".txt").read_text().strip()
        assert caption.startswith("ohwx man, in the center, ")
    assert "profile facing left" in (out / "train" / "y-90_p+0_portrait_s1.txt").read_text()
    reg = sorted((out / "reg").glob("*.png"))
    assert len(reg) == 3
    for image in reg:
        caption = image.with_suffix(".txt").read_text().strip()
        assert caption.startswith("a man, ") and "ohwx" not in caption
    config = yaml.safe_load((out / "ai-toolkit.yaml").read_text())
    process = config["config"]["process"][0]
    train, regularization = process["datasets"]
    assert train["folder_path"] == str((out / "train").resolve()) and "is_reg" not in train
    assert regularization["folder_path"] == str((out / "reg").resolve()) and regularization["is_reg"] is True
    assert process["save"]["save_every"] == 250 and len(process["sample"]["prompts"]) == 4
    assert all(p.startswith("photo of ohwx man, ") for p in process["sample"]["prompts"])
    assert Image.open(out / "contact_sheet.jpg").size[1] == 3 * 190
    assert (out / "sweep.yaml").is_file()


@pytest.mark.timeout(2700)
def test_the_filter_ran_and_nothing_fakes_a_pass(synthesized):
    out = synthesized["out"]
    record = json.loads((out / "synthesis.json").read_text())
    assert record["verified"] is False and len(record["candidates"]) == 6
    reasons = {c["name"]: c["filter_reason"] for c in record["candidates"]}
    assert reasons["y+0_p+0_portrait_s2"] == "no_face" and reasons["y-90_p+0_portrait_s1"] == "unverifiable"
    assert {c["status"] for c in record["candidates"]} == {"unverified", "rejected"}
    assert all(c["similarity"] is None for c in record["candidates"])
    rows = {r["view"]: r for r in csv.DictReader(open(out / "coverage.csv"))}
    assert list(rows) == VIEWS
    assert [(rows[v]["tried"], rows[v]["kept"], rows[v]["unverified"]) for v in VIEWS] == [("2", "0", "1")] * 3
    assert rows["y+30_p+0_portrait"]["no_face"] == "2" and rows["y-90_p+0_portrait"]["unverifiable"] == "2"
    report = (out / "report.md").read_text()
    assert "**0 kept**, **3 unverified**" in report and "Unverified run (`--tiny`)" in report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Unverified run (--tiny)" in page and page.count("<img") >= 3 * 2   # every candidate is shown
    assert "| y+0_p+0_portrait | +0 | +0 | portrait | 0 (+1 unverified) / 2 |" in report
    assert "None of them scores as the subject" in report
    assert all(g["status"] == "kept" and g["similarity"] is None for g in record["grounding"])
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 9 and all(r["status"] == "done" for r in lines)
    assert {r["config"] for r in lines} == {"synthesis", "grounding"}


@pytest.mark.timeout(2700)
def test_second_run_submits_nothing_and_starts_no_server(synthesized):
    out = synthesized["out"]
    manifest = (out / "manifest.jsonl").read_bytes()
    captions = {p.name: p.read_text() for p in (out / "train").glob("*.txt")}
    proc = run(synthesized["args"], timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "views: 6 job(s), 6 already done, 0 to run" in proc.stderr
    assert "grounding: 3 job(s), 3 already done, 0 to run" in proc.stderr
    assert "launching ComfyUI" not in proc.stderr and (out / "manifest.jsonl").read_bytes() == manifest
    assert {p.name: p.read_text() for p in (out / "train").glob("*.txt")} == captions


@pytest.mark.timeout(2700)
def test_canonicalize(comfyui_path, faces_dir, tmp_path):
    out = tmp_path / "canon"
    proc = run(["dataset", "canonicalize", str(faces_dir / "photos" / "obama_02.jpg"), "--launch", str(comfyui_path),
                "--tiny", "--tiny-models", str(TINY_MODELS), "--out", str(out), *SMALL])
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert Image.open(out / "portrait.png").size == (256, 256)
    record = json.loads((out / "synthesis.json").read_text())
    chosen = [c for c in record["candidates"] if c["status"] == "unverified"]
    assert len(chosen) == 1 and chosen[0]["filter_reason"] == "no_face" and record["portrait"] == "portrait.png"
    assert (out / chosen[0]["file"]).read_bytes() == (out / "portrait.png").read_bytes()
    report = (out / "report.md").read_text()
    assert report.startswith("# Canonical portrait") and "Unverified run" in report
    assert (out / "contact_sheet.jpg").is_file() and not (out / "ai-toolkit.yaml").exists()
