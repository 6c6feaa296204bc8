"""execution.shared_servers: the plans of one command (synthesize: views, then grounding images)
share one launched ComfyUI and one progress display; a finished plan starts no server."""

from argparse import Namespace
from types import SimpleNamespace

import pytest

from api_client.runner.execution import shared_servers


class FakeServer:
    url = "http://127.0.0.1:8190"

    def __init__(self):
        self.stopped = False

    def stop(self):
        self.stopped = True


@pytest.fixture
def recorded(monkeypatch):
    calls = {"launched": [], "runs": []}

    def launch_local(plan, comfyui_path, extra_paths=None):
        server = FakeServer()
        calls["launched"].append((plan, comfyui_path, server))
        return server

    def run_plan(plan, options, display=None):
        calls["runs"].append((plan, options, display))
        return "result"

    monkeypatch.setattr(shared_servers, "launch_local", launch_local)
    monkeypatch.setattr(shared_servers, "run_plan", run_plan)
    return calls


def _args(tmp_path, **extra):
    comfyui = tmp_path / "ComfyUI"
    comfyui.mkdir(exist_ok=True)
    (comfyui / "main.py").write_text("")
    values = {"server": [], "launch": str(comfyui), "quiet": False, "depth": 2, "connect_timeout": 5.0}
    return Namespace(**{**values, **extra})


def _plan(tmp_path, name, jobs=("a", "b")):
    out = tmp_path / name
    out.mkdir()
    return SimpleNamespace(out=out, jobs=tuple(SimpleNamespace(job_id=j) for j in jobs))


def test_two_plans_one_launched_server_one_display(tmp_path, recorded):
    views, grounding = _plan(tmp_path, "views"), _plan(tmp_path, "grounding")
    with shared_servers.Servers(_args(tmp_path, server=["http://gpu2:8188"])) as servers:
        assert servers.run(views, "views") == "result"
        servers.run(grounding, "grounding")
    assert len(recorded["launched"]) == 1                         # started once, for the first plan
    server = recorded["launched"][0][2]
    assert server.stopped                                          # and stopped when the command ends
    (_, first, display1), (_, second, display2) = recorded["runs"]
    assert first.urls == second.urls == (server.url, "http://gpu2:8188")
    assert first.launch is None                                    # run_plan never launches a second one
    assert (first.title, second.title) == ("views", "grounding")   # the display names each plan
    assert display1 is display2 and display1 is not None           # one display across the plans


def test_a_finished_plan_starts_no_server(tmp_path, recorded, monkeypatch):
    monkeypatch.setattr(shared_servers, "finished_jobs", lambda out: {"a": {}, "b": {}})
    with shared_servers.Servers(_args(tmp_path)) as servers:
        servers.run(_plan(tmp_path, "views"), "views")
    assert recorded["launched"] == []
    assert recorded["runs"][0][1].urls == ()


def test_no_server_is_an_error_before_anything_starts(tmp_path, recorded):
    from api_client.runner.errors import RunnerError

    with shared_servers.Servers(_args(tmp_path, launch=None)) as servers, pytest.raises(RunnerError, match="no server"):
        servers.run(_plan(tmp_path, "views"), "views")
    assert recorded["launched"] == [] and recorded["runs"] == []
