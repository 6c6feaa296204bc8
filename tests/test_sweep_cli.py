"""``pulid-studio sweep`` without a server: the plan, its checks, and the servers' LoRA names."""

import typing

import pytest

from api_client.runner import main
from api_client.runner.commands import RunnerError


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from pulid_flux.tiny.lora import write_lora

    folder = tmp_path_factory.mktemp("checkpoints")
    for name in ("id_000000250", "id_000000500", "id"):
        write_lora(folder / f"{name}.safetensors")
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny_models")


def test_dry_run_lists_checkpoint_major_jobs(checkpoints, tiny_models, tmp_path, capsys):
    code = main(["sweep", str(checkpoints), "--tiny", "--tiny-models", str(tiny_models), "--max-prompts", "2",
                 "--seeds", "1,2", "--out", str(tmp_path / "out"), "--dry-run"])
    assert code == 0
    lines = [line.split()[2] for line in capsys.readouterr().out.splitlines() if line.startswith("todo")]
    assert lines == ["id_000000250/01_park-wave_s1.png", "id_000000250/01_park-wave_s2.png",
                     "id_000000250/02_studio-headshot_s1.png", "id_000000250/02_studio-headshot_s2.png",
                     "id_000000500/02_studio-headshot_s1.png", "id_000000500/02_studio-headshot_s2.png",
                     "id_000000500/01_park-wave_s1.png", "id_000000500/01_park-wave_s2.png",
                     "id/01_park-wave_s1.png", "id/01_park-wave_s2.png",
                     "id/02_studio-headshot_s1.png", "id/02_studio-headshot_s2.png"]
    assert not (tiny_models / "clip_score").exists()          # built only when images are scored


def test_a_missing_clip_model_fails_before_anything_runs(checkpoints, tmp_path, faces_dir, capsys):
    out = tmp_path / "out"
    code = main(["sweep", str(checkpoints), "--reference", str(faces_dir / "photos" / "obama_01.jpg"),
                 "--models-dir", str(tmp_path / "models"), "--server", "http://127.0.0.1:9", "--out", str(out)])
    assert code == 2
    message = capsys.readouterr().err
    assert "'ViT-L-14-openai.safetensors' not found" in message
    assert str(tmp_path / "models" / "clip_score") in message
    assert not (out / "manifest.jsonl").exists()


@pytest.mark.parametrize("extra, problem", [
    (["--style-lora", "{folder}/id.safetensors"], "--style-lora needs --style-prompt"),
    (["--style-lora", "{folder}/nope.safetensors", "--style-prompt", "x"], "file not found"),
    (["--style-lora", "{folder}/id.safetensors", "--style-prompt", "x", "--checkpoint", "id_9.safetensors"],
     "not among the checkpoints"),
    (["--style-lora", "{folder}/id.safetensors", "--style-prompt", "x", "--strengths", "0,a"],
     "--strengths: expected comma-separated numbers"),
    (["--step-pattern", r"(\d+)"], "no named group 'step'"),
    (["--config", "01_base"], "has no node 'LoRA'"),
    (["--dataset", "{folder}/none"], "--dataset"),
])
def test_bad_options_are_named(checkpoints, tiny_models, tmp_path, capsys, extra, problem):
    extra = [e.replace("{folder}", str(checkpoints)) for e in extra]
    code = main(["sweep", str(checkpoints), "--tiny", "--tiny-models", str(tiny_models), "--out",
                 str(tmp_path / "out"), "--dry-run", *extra])
    assert code == 2
    assert problem in capsys.readouterr().err


def test_style_dry_run_sweeps_the_strengths_on_one_checkpoint(checkpoints, tiny_models, tmp_path, capsys):
    code = main(["sweep", str(checkpoints), "--tiny", "--tiny-models", str(tiny_models), "--max-prompts", "1",
                 "--style-lora", str(checkpoints / "id_000000250.safetensors"), "--style-prompt", "a watercolor",
                 "--strengths", "1,0,0.5", "--checkpoint", "id_000000500.safetensors",
                 "--out", str(tmp_path / "out"), "--dry-run"])
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("todo")]
    assert [line.split()[2] for line in lines] == ["style-0/01_park-wave_s42.png", "style-0.5/01_park-wave_s42.png",
                                                   "style-1/01_park-wave_s42.png"]
    assert all("checkpoint=id_000000500.safetensors" in line for line in lines)


class FakeClient:
    listings: typing.ClassVar[dict] = {}

    def __init__(self, url, **kwargs):
        self.url = url
        self.http = self

    def get_json(self, path):
        assert path == "/models/loras"
        return self.listings[self.url]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_server_lora_names_find_subfolders_and_name_what_is_missing(monkeypatch):
    import api_client.client
    from api_client.runner.sources.sweep.source import server_lora_names

    monkeypatch.setattr(api_client.client, "ComfyClient", FakeClient)
    FakeClient.listings = {"http://a": ["identity_lora.safetensors", "training/id_000000250.safetensors",
                                        "training/id.safetensors"],
                           "http://b": ["training\\id_000000250.safetensors"]}
    assert server_lora_names(["http://a"], ["id_000000250.safetensors", "id.safetensors"]) == {
        "id_000000250.safetensors": "training/id_000000250.safetensors", "id.safetensors": "training/id.safetensors"}
    with pytest.raises(RunnerError) as error:
        server_lora_names(["http://a", "http://b"], ["id_000000250.safetensors", "id.safetensors"])
    message = str(error.value)
    assert "http://b lacks 1 of the LoRA files: id.safetensors" in message
    assert "training/id_000000250.safetensors on one server, training\\id_000000250.safetensors on http://b" in message
    assert "extra_model_paths.yaml" in message and "--launch" in message


def test_an_unlisted_server_falls_back_to_the_plain_names(monkeypatch):
    import api_client.client
    from api_client.errors import ComfyConnectionError
    from api_client.runner.sources.sweep.source import server_lora_names

    class Unreachable(FakeClient):
        def get_json(self, path):
            raise ComfyConnectionError("connection refused")

    monkeypatch.setattr(api_client.client, "ComfyClient", Unreachable)
    assert server_lora_names(["http://a"], ["id.safetensors"]) == {"id.safetensors": "id.safetensors"}
