"""A plan source is one record plus one registration: a source that knows nothing of ablation specs
builds jobs from its own input, and the same execution engine runs them (resume, manifest, gallery),
the same ``report`` scores them. The servers are fakes (no ComfyUI)."""

import argparse
import json
from dataclasses import replace

import pytest
from runner_fakes import FakeComfyBackends

from api_client.runner import commands, main
from api_client.runner.execution import comfy_backend
from api_client.runner.plan import GALLERY, Job, Prompt, RunInfo, RunPlan, job_id_for
from api_client.runner.sources import PlanSource, RunRequest, resolve_reference

GRAPH = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "color": 0}},
         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("colours", help="comma-separated colour values, one image each")


def build(args: argparse.Namespace, request: RunRequest) -> RunPlan:
    jobs = []
    for index, colour in enumerate(args.colours.split(","), start=1):
        prompt = Prompt(index=index, tag=f"colour-{colour}", text=f"a {colour} square")
        graph = json.loads(json.dumps(GRAPH))
        graph["1"]["inputs"]["color"] = int(colour)
        job_id = job_id_for("squares", prompt, 0, (), graph, "2")
        jobs.append(Job(job_id=job_id, config="squares", prompt=prompt, seed=0, params=(), pose="-", full_body=False,
                        rule="as-is", graph=graph, save_node="2", file=f"{GALLERY}/squares/{index:02d}_{prompt.tag}_s0.png",
                        block=index, order=index))
    info = RunInfo(source="squares", spec=args.colours, spec_name="colour squares", configs=("squares",))
    return RunPlan(out=request.out, jobs=tuple(jobs), all_jobs=tuple(jobs), reference=resolve_reference(request),
                   info=info)


SQUARES = PlanSource(command="squares", help="one image per colour", description="Colour squares.",
                     add_arguments=add_arguments, build=build)


@pytest.fixture
def with_squares(monkeypatch):
    monkeypatch.setattr(commands, "SOURCES", commands.SOURCES + (SQUARES,))     # the one registration


def test_a_new_source_runs_on_the_same_engine_and_resumes(with_squares, tmp_path, monkeypatch):
    servers = FakeComfyBackends(ticks=1)
    monkeypatch.setattr(comfy_backend, "ComfyBackend", servers)
    out = tmp_path / "out"
    assert main(["squares", "0,128,255", "--out", str(out), "--server", "http://fake:1", "--quiet"]) == 0
    [server] = servers.created.values()
    assert len(server.submitted) == 3
    done = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["tag"] for r in done] == ["colour-0", "colour-128", "colour-255"] and {r["status"] for r in done} == {"done"}
    assert all((out / r["file"]).is_file() for r in done)
    assert json.loads((out / "run.json").read_text())["source"] == "squares"
    rows = json.loads((out / GALLERY / "manifest.json").read_text())
    assert [r["file"] for r in rows] == [f"squares/0{i}_colour-{c}_s0.png" for i, c in ((1, 0), (2, 128), (3, 255))]

    again = FakeComfyBackends(ticks=1)
    monkeypatch.setattr(comfy_backend, "ComfyBackend", again)
    assert main(["squares", "0,128,255,64", "--out", str(out), "--server", "http://fake:1", "--quiet"]) == 0
    assert len(again.created["http://fake:1"].submitted) == 1          # only the new colour


def test_the_source_keeps_the_shared_options_and_gets_its_own(with_squares, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        main(["squares", "--help"])
    text = capsys.readouterr().out
    assert "colours" in text and all(flag in text for flag in ("--out", "--server", "--launch", "--tiny", "--dry-run"))
    assert "--engine" not in text                                       # not a reporting source
    monkeypatch.setattr(commands, "SOURCES", commands.SOURCES + (replace(SQUARES, command="squares2", report=True),))
    with pytest.raises(SystemExit):
        main(["squares2", "--help"])
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--engine", "--models-dir", "--no-report")), text
