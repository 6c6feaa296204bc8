"""The whole sweep on fake servers (no ComfyUI): plan -> the run engine -> the sweep's report, then
``report OUT`` on the finished folder. Checkpoint 500's images hold a face the tiny detector sees,
the others are noise, so the recommendation must be step 500."""

import csv
import json

import pytest
from runner_fakes import FakeComfyBackends

from api_client.runner import main
from api_client.runner.execution import comfy_backend

CHECKPOINTS = ("id_000000250", "id_000000500", "id")


class ListingClient:
    """Stands in for ComfyClient(url) when the sweep reads a server's LoRA list."""

    def __init__(self, url, **kwargs):
        self.http = self

    def get_json(self, path):
        assert path == "/models/loras"
        return ["identity_lora.safetensors"] + [f"training/{c}.safetensors" for c in CHECKPOINTS]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from pulid_flux.tiny.lora import write_lora

    folder = tmp_path_factory.mktemp("checkpoints")
    for name in CHECKPOINTS:
        write_lora(folder / f"{name}.safetensors")
    return folder


def test_a_sweep_on_fake_servers_recommends_the_checkpoint_with_faces(checkpoints, tmp_path, monkeypatch, caplog):
    import api_client.client

    servers = FakeComfyBackends(ticks=1, face_configs=("id_000000500",))
    monkeypatch.setattr(comfy_backend, "ComfyBackend", servers)
    monkeypatch.setattr(api_client.client, "ComfyClient", ListingClient)
    out = tmp_path / "out"
    args = ["sweep", str(checkpoints), "--tiny", "--tiny-models", str(tmp_path / "tiny"), "--max-prompts", "2",
            "--seeds", "1,2", "--server", "http://fake:1", "--out", str(out), "--quiet"]
    assert main(args) == 0, caplog.text
    [server] = servers.created.values()
    assert len(server.submitted) == 12
    jobs = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    # The servers list the checkpoints in a subfolder: the jobs use those names.
    assert {j["params"]["checkpoint"] for j in jobs} == {f"training/{c}.safetensors" for c in CHECKPOINTS}
    with open(out / "sweep.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12
    assert {r["step"] for r in rows if r["face_found"] == "1"} == {"500"}
    assert all(r["identity_arcface"] and float(r["identity_arcface"]) > 0.9 for r in rows if r["step"] == "500")
    report = (out / "report.md").read_text()
    assert "Recommended checkpoint: training/id_000000500.safetensors\n" in report
    assert "No image of any checkpoint holds a face" not in report
    assert sorted(p.name for p in (out / "strips").iterdir()) == ["park-wave.png", "studio-headshot.png"]
    spec = (out / "ablation_id_000000500.yaml").read_text()
    assert "LoRA.lora_name: training/id_000000500.safetensors" in spec

    # report OUT: up to date without --force-report; scored again (same recommendation) with it.
    before = (out / "report.md").stat().st_mtime_ns
    caplog.clear()
    assert main(["report", str(out)]) == 0
    assert "up to date" in caplog.text and (out / "report.md").stat().st_mtime_ns == before
    (out / "report.md").write_text("stale")
    assert main(["report", str(out), "--force-report"]) == 0
    assert "Recommended checkpoint: training/id_000000500.safetensors\n" in (out / "report.md").read_text()


class TopLevelListing(ListingClient):
    def get_json(self, path):
        return [f"{c}.safetensors" for c in CHECKPOINTS] + ["watercolor.safetensors"]


def test_a_style_sweep_on_fake_servers_reports_identity_retention(checkpoints, tmp_path, monkeypatch, caplog):
    import api_client.client

    servers = FakeComfyBackends(ticks=1, face_configs=("style-0", "style-0.5"))
    monkeypatch.setattr(comfy_backend, "ComfyBackend", servers)
    monkeypatch.setattr(api_client.client, "ComfyClient", TopLevelListing)
    out = tmp_path / "out"
    style = tmp_path / "styles" / "watercolor.safetensors"
    style.parent.mkdir()
    style.write_bytes((checkpoints / "id.safetensors").read_bytes())
    assert main(["sweep", str(checkpoints), "--tiny", "--tiny-models", str(tmp_path / "tiny"), "--max-prompts", "1",
                 "--style-lora", str(style), "--style-prompt", "a watercolor painting", "--strengths", "0,0.5,1",
                 "--checkpoint", "id_000000500.safetensors", "--server", "http://fake:1", "--out", str(out),
                 "--quiet"]) == 0, caplog.text
    jobs = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [j["config"] for j in jobs] == ["style-0", "style-0.5", "style-1"]
    assert {j["params"]["checkpoint"] for j in jobs} == {"id_000000500.safetensors"}
    with open(out / "sweep.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[-3:] == ["style_lora", "style_strength", "style_clip_score"]
    assert [(r["style_strength"], r["face_found"]) for r in rows] == [("0.0", "1"), ("0.5", "1"), ("1.0", "0")]
    report = (out / "report.md").read_text()
    line = next(line for line in report.splitlines() if line.startswith("Recommended style strength: "))
    assert line.split()[3] in {"0", "0.5"}                 # strength 1 lost the face
    assert "identity retention" in report
    assert list(out.glob("ablation_id_000000500_style*.yaml"))
