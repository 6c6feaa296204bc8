"""``ablate`` and ``report`` end to end with fake servers: scores, CSVs, grid, plot and report.md.

Scoring uses the synthetic tiny insightface pack: the fake servers return noise for 01/02 (no face)
and a synthetic face for 03/04, so both the no-face and the pass columns are exercised.
"""

import csv
import json
from pathlib import Path

import pytest
from runner_fakes import FakeComfyBackends

from api_client.runner import main
from api_client.runner.execution import comfy_backend

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "workflows" / "ablation.yaml"
CONFIGS = ["01_base", "02_lora", "03_lora_pulid", "04_full"]


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory):
    from pulid_flux.tiny.insightface_pack import build_pack

    models = tmp_path_factory.mktemp("tiny_models")
    build_pack(models / "insightface" / "models" / "antelopev2")
    return models


def ablate(out, models, *extra):
    return main(["ablate", str(SPEC), "--out", str(out), "--server", "http://fake:1", "--tiny", "--tiny-models",
                 str(models), "--max-prompts", "2", "--quiet", *extra])


def test_ablate_scores_every_config_and_writes_the_report(tmp_path, tiny_pack, monkeypatch):
    monkeypatch.setattr(comfy_backend, "ComfyBackend", FakeComfyBackends(ticks=1, face_configs=("03_lora_pulid", "04_full")))
    out = tmp_path / "out"
    assert ablate(out, tiny_pack) == 0
    for config in CONFIGS:
        assert len(list((out / "gallery" / config).glob("*.png"))) == 2
        with open(out / "eval" / f"{config}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 2 and {r["prompt"] for r in rows} == {"park-wave", "studio-headshot"}
    for name in ("summary.csv", "summary.json", "grid.jpg", "grid_small.png", "summary_plot.png", "report.md"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["01_base"]["insightface"]["no_face_rate"] == 1.0
    assert summary["03_lora_pulid"]["insightface"]["pass_rate"] == 1.0
    report = (out / "report.md").read_text()
    assert "random-weight" in report and "NOT real results" in report
    for config in CONFIGS:
        assert f"| {config} | 2 |" in report
    assert "| 01_base | 2 | 0 | – | – | – | 100% | 0% |" in report
    assert "(grid.jpg)" in report and "summary_plot.png" in report and "eval/04_full.csv" in report
    assert "04_full runs as shipped only for prompts whose pose-bank entry is" in report
    assert "Prompt text encoded" in report
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["tiny"] and Path(run_info["reference"][0]).is_file()

    # Nothing changed: no scoring the second time.
    state = (out / "report_state.json").read_bytes()
    mtime = (out / "report.md").stat().st_mtime_ns
    assert ablate(out, tiny_pack) == 0
    assert (out / "report.md").stat().st_mtime_ns == mtime and (out / "report_state.json").read_bytes() == state

    # `report` scores again on demand, from run.json alone.
    (out / "report.md").unlink()
    assert main(["report", str(out), "--engine", "insightface", "--models-dir", str(tiny_pack)]) == 0
    assert "| 04_full | 2 |" in (out / "report.md").read_text()


def test_report_needs_a_run_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "run.json" in capsys.readouterr().err


def test_scoring_failure_keeps_the_run_and_says_what_to_do(tmp_path, tiny_pack, monkeypatch, capsys):
    from runner_fakes import png_bytes

    monkeypatch.setattr(comfy_backend, "ComfyBackend", FakeComfyBackends(ticks=1))
    gray = tmp_path / "gray.png"
    gray.write_bytes(png_bytes(3, 64))           # noise: no face for the reference centroid
    out = tmp_path / "out"
    code = main(["ablate", str(SPEC), "--out", str(out), "--server", "http://fake:1", "--reference", str(gray),
                 "--engine", "insightface", "--models-dir", str(tiny_pack), "--max-prompts", "1", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "scoring failed" in err and f"report {out}" in err
    assert len([l for l in (out / "manifest.jsonl").read_text().splitlines() if '"done"' in l]) == 4
    assert not (out / "report.md").exists()


def test_tiny_run_on_remote_servers_builds_the_scoring_pack(tmp_path, monkeypatch):
    monkeypatch.setattr(comfy_backend, "ComfyBackend", FakeComfyBackends(ticks=1))
    models = tmp_path / "empty_models"
    out = tmp_path / "out"
    assert ablate(out, models, "--configs", "01_base") == 0
    assert (models / "insightface" / "models" / "antelopev2").is_dir()
    assert "| 01_base | 2 | 0 |" in (out / "report.md").read_text()
