"""``python -m api_client.runner`` against real ComfyUI servers on the tiny models.

* the shipped spec end to end (``ablate --launch --tiny --max-prompts 2``, the tiny profile's half size), then
  the same command again: nothing submitted, no server started, done in seconds;
* the text encoder runs once per distinct prompt across the four configs (``executing`` events);
* a server killed mid-run, then the client killed mid-run: re-running completes the set exactly once;
* two servers share the jobs, and the union of their outputs is complete and duplicate-free.

The last two use 256x256 latents to stay quick; the first keeps the spec's sizes (halved by --tiny).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from comfy_server import ComfyServer
from conftest_paths import ROOT
from PIL import Image

pytestmark = pytest.mark.integration

SPEC = ROOT / "workflows" / "ablation.yaml"
CONFIGS = ["01_base", "02_lora", "03_lora_pulid", "04_full"]
SMALL = ["--set", "Latent.width=256", "--set", "Latent.height=256"]
# Shared between sessions: the tiny models are fingerprinted, so a second session reuses them. Kept
# beside the session's tiny models (PULID_STUDIO_TINY_MODELS), as --tiny builds its own random EVA.
_SESSION_MODELS = Path(os.environ.get("PULID_STUDIO_TINY_MODELS",
                                      Path(tempfile.gettempdir()) / "pulid_studio_tiny_models"))
TINY_MODELS = _SESSION_MODELS.with_name(_SESSION_MODELS.name + "_runner")


def runner_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "PYTHONUNBUFFERED": "1"}


def runner(*args) -> list[str]:
    return [sys.executable, "-m", "api_client.runner", *args]


def records(out: Path) -> list[dict]:
    path = out / "manifest.jsonl"
    if not path.is_file():
        return []
    result = []
    for line in path.read_text().splitlines():
        try:
            result.append(json.loads(line))
        except ValueError:
            pass  # a line torn by a killed client
    return result


def done(out: Path) -> list[dict]:
    return [r for r in records(out) if r["status"] == "done"]


def expected_jobs(*args) -> list[str]:
    """The job labels a run would do (from --dry-run)."""
    proc = subprocess.run(runner("run", str(SPEC), "--dry-run", *args), cwd=ROOT, env=runner_env(),
                          capture_output=True, text=True, timeout=120, check=True)
    return [line.split()[2] for line in proc.stdout.splitlines() if line.startswith(("todo", "done"))]


# ----------------------------------------------------------------------------- the main check


@pytest.fixture(scope="module")
def ablation(comfyui_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation") / "out"
    args = ["ablate", str(SPEC), "--launch", str(comfyui_path), "--tiny", "--tiny-models", str(TINY_MODELS),
            "--max-prompts", "2", "--out", str(out)]
    started = time.monotonic()
    proc = subprocess.run(runner(*args), cwd=ROOT, env=runner_env(), capture_output=True, text=True, timeout=2400,
                          check=False)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-6000:]
    return {"out": out, "args": args, "stderr": proc.stderr, "elapsed": elapsed}


@pytest.mark.timeout(2700)
def test_ablate_produces_every_output(ablation):
    out = ablation["out"]
    for config in CONFIGS:
        images = sorted((out / "gallery" / config).glob("*.png"))
        assert [p.name for p in images] == ["01_park-wave_s42.png", "02_studio-headshot_s42.png"], config
        for image in images:
            assert Image.open(image).size == (448, 608)        # the shipped 896x1216, halved by --tiny
        assert (out / "eval" / f"{config}.csv").is_file()
    lines = records(out)
    assert len(lines) == 8 and all(r["status"] == "done" for r in lines)
    assert len({r["job_id"] for r in lines}) == 8
    for r in lines:
        assert r["server"].startswith("http://127.0.0.1:") and r["prompt_id"] and r["files"]
        assert r["timings"]["run_s"] >= 0 and r["seed"] == 42
    for name in ("grid.jpg", "grid_small.png", "summary_plot.png", "summary.csv", "report.md",
                 "gallery/manifest.json"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "random-weight" in report and "| 04_full | 2 |" in report
    assert "launching ComfyUI" in ablation["stderr"]
    assert len(list((out / "logs").iterdir())) == 1


@pytest.mark.timeout(2700)
def test_text_encoder_runs_once_per_prompt(ablation):
    lines = records(ablation["out"])
    assert all(r["executed"] is not None for r in lines), "every job's events were observed"
    encoded = Counter(r["prompt"] for r in lines if set(r["text_nodes"]) & set(r["executed"]))
    assert len(lines) == 8 and len({r["prompt"] for r in lines}) == 2
    assert dict(encoded) == {p: 1 for p in {r["prompt"] for r in lines}}
    # The bypassed 04 headshot has 03's graph: everything but the save node came from the cache.
    bypassed = next(r for r in lines if r["config"] == "04_full" and r["rule"] == "bypass")
    assert bypassed["executed"] == ["13"]
    assert "Prompt text encoded 2 time(s) for 2 distinct prompt(s)" in (ablation["out"] / "report.md").read_text()


@pytest.mark.timeout(2700)
def test_second_run_submits_nothing_and_starts_no_server(ablation):
    out = ablation["out"]
    manifest = (out / "manifest.jsonl").read_bytes()
    started = time.monotonic()
    proc = subprocess.run(runner(*ablation["args"]), cwd=ROOT, env=runner_env(), capture_output=True, text=True,
                          timeout=300, check=False)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "8 already done, 0 to run" in proc.stderr and "up to date" in proc.stderr
    assert "launching ComfyUI" not in proc.stderr
    assert (out / "manifest.jsonl").read_bytes() == manifest
    assert len(list((out / "logs").iterdir())) == 1          # no new server log
    assert elapsed < 30, f"a finished spec took {elapsed:.1f}s"


# ----------------------------------------------------------------------------- failures and servers


@pytest.fixture(scope="module")
def second_server(comfyui_path, tiny_models, tmp_path_factory):
    server = ComfyServer(comfyui_path, tmp_path_factory.mktemp("second_server"), models_dir=tiny_models)
    server.start()
    yield server
    server.stop()


def wait_for_done(out: Path, count: int, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while len(done(out)) < count:
        assert proc.poll() is None, "the runner ended before the kill"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.2)


@pytest.mark.timeout(1800)
def test_killed_server_and_killed_client_then_resume_exactly_once(comfyui_path, tiny_models, second_server,
                                                                  tmp_path):
    out = tmp_path / "out"
    common = ["run", str(SPEC), "--tiny", "--max-prompts", "2", "--out", str(out), *SMALL]
    expected = expected_jobs(*common[2:])
    assert len(expected) == 8

    victim = ComfyServer(comfyui_path, tmp_path / "victim", models_dir=tiny_models)
    victim.start()
    try:
        log_path = tmp_path / "first_run.log"
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen(runner(*common, "--server", victim.url), cwd=ROOT, env=runner_env(),
                                    stdout=subprocess.DEVNULL, stderr=log_file)
            wait_for_done(out, 2, proc)
            victim.proc.kill()                                   # the server dies mid-run
            proc.wait(timeout=120)
        stderr = log_path.read_text()
    finally:
        victim.stop()
    assert proc.returncode == 1, stderr
    assert "is gone" in stderr and "run the same command again" in stderr
    after_server_kill = {r["job_id"] for r in done(out)}
    assert 2 <= len(after_server_kill) < 8

    proc = subprocess.Popen(runner(*common, "--server", second_server.url), cwd=ROOT, env=runner_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_done(out, len(after_server_kill) + 1, proc)
    proc.send_signal(signal.SIGKILL)                             # the client dies mid-run
    proc.wait(timeout=60)
    after_client_kill = {r["job_id"] for r in done(out)}
    assert after_server_kill < after_client_kill

    final = subprocess.run(runner(*common, "--server", second_server.url), cwd=ROOT, env=runner_env(),
                           capture_output=True, text=True, timeout=900, check=False)
    assert final.returncode == 0, final.stderr[-4000:]
    assert f"{len(after_client_kill)} already done, {8 - len(after_client_kill)} to run" in final.stderr
    lines = done(out)
    assert Counter(r["job_id"] for r in lines).most_common(1)[0][1] == 1   # one done line per job
    assert sorted(f"{r['config']}/{r['file'].rsplit('/', 1)[1]}" for r in lines) == sorted(expected)
    pngs = sorted(p.relative_to(out).as_posix() for p in (out / "gallery").glob("*/*.png"))
    assert pngs == sorted(r["files"][0] for r in lines)
    assert not list((out / "gallery").glob("*/.*.tmp"))


@pytest.mark.timeout(1800)
def test_two_servers_share_the_jobs(comfy_server, second_server, tmp_path):
    out = tmp_path / "out"
    args = ["run", str(SPEC), "--tiny", "--max-prompts", "2", "--seeds", "1,2", "--out", str(out), *SMALL]
    expected = expected_jobs(*args[2:])
    assert len(expected) == 16
    proc = subprocess.run(runner(*args, "--server", comfy_server.url, "--server", second_server.url), cwd=ROOT,
                          env=runner_env(), capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = done(out)
    per_server = Counter(r["server"] for r in lines)
    assert set(per_server) == {comfy_server.url, second_server.url}, per_server
    assert len(lines) == len({r["job_id"] for r in lines}) == 16
    assert sorted(f"{r['config']}/{r['file'].rsplit('/', 1)[1]}" for r in lines) == sorted(expected)
    assert len(list((out / "gallery").glob("*/*.png"))) == 16


@pytest.mark.timeout(900)
def test_ctrl_c_cancels_the_queued_prompts(second_server, tmp_path):
    out = tmp_path / "out"
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(runner("run", str(SPEC), "--tiny", "--max-prompts", "2", "--out", str(out),
                                       "--server", second_server.url, *SMALL),
                                cwd=ROOT, env=runner_env(), stdout=subprocess.DEVNULL, stderr=log_file)
        wait_for_done(out, 1, proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130, log_path.read_text()
    lines = records(out)
    interrupted = [r for r in lines if r["status"] == "interrupted"]
    assert interrupted and not {r["job_id"] for r in interrupted} & {r["job_id"] for r in done(out)}
    assert "cancelling the queued and running prompts" in log_path.read_text()
    assert json.loads((out / "gallery" / "manifest.json").read_text())          # written on the way out
    ours = {r["prompt_id"] for r in interrupted}
    deadline = time.monotonic() + 60                 # an interrupt lands at the running node's next step
    while True:
        queue = second_server.get_json("/queue")
        left = ours & {item[1] for item in queue["queue_pending"] + queue["queue_running"]}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left
