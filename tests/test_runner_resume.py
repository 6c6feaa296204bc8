"""Resume: the append-only manifest, atomic files, and re-runs that complete a spec exactly once.

The commands run in-process with fake servers (no ComfyUI): ``ComfyBackend`` is replaced by
:class:`FakeComfyBackends`, whose servers record every job submitted to them.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
from runner_fakes import FakeComfyBackends, png_bytes

import api_client.runner.execution.launch as launch_module
from api_client.runner import main
from api_client.runner.execution import comfy_backend
from api_client.runner.execution.manifest import RunManifest, write_gallery_manifest
from api_client.runner.files import write_atomic

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "workflows" / "ablation.yaml"


@pytest.fixture
def reference(tmp_path):
    path = tmp_path / "me.png"
    path.write_bytes(png_bytes(1, 64))
    return path


def run_cli(out, reference, *extra, servers=("http://fake-a:1",)):
    argv = ["run", str(SPEC), "--out", str(out), "--reference", str(reference), "--max-prompts", "2", "--quiet"]
    for url in servers:
        argv += ["--server", url]
    return main(argv + list(extra))


def done_lines(out: Path) -> list[dict]:
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in lines if r["status"] == "done"]


def test_manifest_append_read_and_torn_line(tmp_path):
    manifest = RunManifest(tmp_path)
    write_atomic(tmp_path / "gallery/a/01_x_s1.png", b"png")
    manifest.append({"job_id": "j1", "status": "done", "files": ["gallery/a/01_x_s1.png"]})
    manifest.append({"job_id": "j2", "status": "failed", "files": []})
    with open(manifest.path, "ab") as fh:
        fh.write(b'{"job_id": "j3", "status": "do')      # a run killed mid-write
    manifest.append({"job_id": "j4", "status": "done", "files": ["gallery/a/missing.png"]})
    records = manifest.records()
    assert [r["job_id"] for r in records] == ["j1", "j2", "j4"]    # the torn line is skipped, not the next one
    assert set(manifest.finished()) == {"j1"}                       # failed and image-less jobs run again
    manifest.append({"job_id": "j2", "status": "done", "files": ["gallery/a/01_x_s1.png"]})
    assert set(manifest.finished()) == {"j1", "j2"}                 # the last done line wins


def test_write_atomic_replaces_without_leftovers(tmp_path):
    target = tmp_path / "sub" / "img.png"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["img.png"]


def test_gallery_manifest_is_what_the_scorer_reads(tmp_path, reference):
    from api_client.runner import Selection, expand_jobs, load_spec
    from pulid_flux.scoring.naming import image_meta, read_manifest

    jobs = expand_jobs(load_spec(SPEC), Selection(max_prompts=2, reference_image="pulid_studio/r.png"))
    finished = {j.job_id: {"files": [j.file]} for j in jobs[:3]}
    path = write_gallery_manifest(tmp_path, jobs, finished)
    records = read_manifest(path)
    assert len(records) == 3
    meta = image_meta(jobs[1].file.split("/", 1)[1], records)
    assert (meta.prompt, meta.seed, meta.index) == (jobs[1].prompt.tag, jobs[1].seed, 1)


def test_interrupted_run_resumes_exactly_once(tmp_path, reference, monkeypatch):
    out = tmp_path / "out"
    interrupting = FakeComfyBackends(ticks=1, interrupt_on_poll=4)
    monkeypatch.setattr(comfy_backend, "ComfyBackend", interrupting)
    assert run_cli(out, reference) == 130
    first = interrupting.created["http://fake-a:1"]
    done_first = {r["job_id"] for r in done_lines(out)}
    assert 0 < len(done_first) < 8
    assert first.cancelled, "queued prompts are cancelled on Ctrl-C"
    interrupted = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines() if '"interrupted"' in l]
    assert interrupted and all(r["job_id"] not in done_first for r in interrupted)

    resumed = FakeComfyBackends(ticks=1)
    monkeypatch.setattr(comfy_backend, "ComfyBackend", resumed)
    assert run_cli(out, reference) == 0
    second = resumed.created["http://fake-a:1"]
    assert not set(second.submitted) & done_first                   # finished jobs are not run again
    done = done_lines(out)
    assert len(done) == 8 and Counter(r["job_id"] for r in done).most_common(1)[0][1] == 1
    assert {r["job_id"] for r in done} == done_first | set(second.submitted)
    images = sorted(p.relative_to(out).as_posix() for p in (out / "gallery").glob("*/*.png"))
    assert images == sorted(r["files"][0] for r in done)
    assert len(json.loads((out / "gallery" / "manifest.json").read_text())) == 8


def test_second_identical_run_contacts_no_server(tmp_path, reference, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(comfy_backend, "ComfyBackend", FakeComfyBackends(ticks=1))
    assert run_cli(out, reference) == 0
    before = (out / "manifest.jsonl").read_bytes()

    def refuse(*args, **kwargs):
        raise AssertionError("a finished spec must not contact or start a server")

    monkeypatch.setattr(comfy_backend, "ComfyBackend", refuse)
    monkeypatch.setattr(launch_module, "launch", refuse)
    monkeypatch.setattr(launch_module, "prepare_tiny_models", refuse)
    assert run_cli(out, reference, "--launch", str(tmp_path / "no-comfyui"), servers=()) == 0
    assert (out / "manifest.jsonl").read_bytes() == before


def test_deleted_image_and_torn_line_run_again(tmp_path, reference, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(comfy_backend, "ComfyBackend", FakeComfyBackends(ticks=1))
    assert run_cli(out, reference) == 0
    done = done_lines(out)
    (out / done[2]["files"][0]).unlink()
    text = (out / "manifest.jsonl").read_text()
    (out / "manifest.jsonl").write_text(text[:-20])                  # the last job's line is torn
    again = FakeComfyBackends(ticks=1)
    monkeypatch.setattr(comfy_backend, "ComfyBackend", again)
    assert run_cli(out, reference) == 0
    assert sorted(again.created["http://fake-a:1"].submitted) == sorted([done[2]["job_id"], done[-1]["job_id"]])
    assert set(RunManifest(out).finished()) == {r["job_id"] for r in done}


def test_two_servers_and_a_dead_one(tmp_path, reference, monkeypatch):
    out = tmp_path / "out"
    backends = FakeComfyBackends(ticks=1)
    monkeypatch.setattr(comfy_backend, "ComfyBackend", backends)
    assert run_cli(out, reference, servers=("http://fake-a:1", "http://fake-b:2")) == 0
    servers = Counter(r["server"] for r in done_lines(out))
    assert set(servers) == {"http://fake-a:1", "http://fake-b:2"} and sum(servers.values()) == 8

    out2 = tmp_path / "out2"
    dying = FakeComfyBackends(ticks=1, die_after=2)
    monkeypatch.setattr(comfy_backend, "ComfyBackend", dying)
    assert run_cli(out2, reference, servers=("http://fake-a:1",)) == 1   # incomplete: the only server died
    partial = {r["job_id"] for r in done_lines(out2)}
    healthy = FakeComfyBackends(ticks=1)
    monkeypatch.setattr(comfy_backend, "ComfyBackend", healthy)
    assert run_cli(out2, reference, servers=("http://fake-b:2",)) == 0
    done = done_lines(out2)
    assert len(done) == len({r["job_id"] for r in done}) == 8
    assert not partial & set(healthy.created["http://fake-b:2"].submitted)


def test_reference_is_uploaded_under_a_content_name(tmp_path, reference, monkeypatch):
    backends = FakeComfyBackends(ticks=1)
    monkeypatch.setattr(comfy_backend, "ComfyBackend", backends)
    assert run_cli(tmp_path / "out", reference) == 0
    record = done_lines(tmp_path / "out")[0]
    assert record["prompt_id"] and record["server"] == "http://fake-a:1" and record["timings"]["run_s"] == 1.0
    assert {"job_id", "config", "prompt", "seed", "params", "files", "status"} <= set(record)


def test_run_without_server_or_reference_fails_clearly(tmp_path, reference, capsys):
    assert main(["run", str(SPEC), "--out", str(tmp_path / "o"), "--reference", str(reference)]) == 2
    assert "no server" in capsys.readouterr().err
    assert main(["run", str(SPEC), "--out", str(tmp_path / "o"), "--server", "http://x:1"]) == 2
    assert "needs a reference photo" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()            # an error before any work leaves no output folder
