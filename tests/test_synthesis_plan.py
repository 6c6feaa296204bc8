"""The synthesis plan source (views x seeds -> run-engine jobs), the shipped 07_synthesis workflow, the
sweep spec it writes and the command line, without ComfyUI."""

import json
import subprocess
import sys

import pytest

from api_client.overrides import get_input, parse_override
from api_client.runner import load_spec
from api_client.runner.dataset_commands import write_sweep_spec
from api_client.runner.sources.synthesis import (BASE_WORKFLOW, SYNTHESIS_WORKFLOW, JobSettings, PlanError,
                                              candidate_jobs, grounding_jobs, load_workflow)
from pulid_flux.synthesis import (SAMPLE_VIEWS, GroundingImage, candidate_file, default_view_plan, grounding_file,
                                  tiny_view_plan)

ROOT = SYNTHESIS_WORKFLOW.parents[1]


def jobs_for(views=None, seeds=(1, 2), **settings):
    return candidate_jobs(load_workflow(SYNTHESIS_WORKFLOW), views or tiny_view_plan(), list(seeds), "a man",
                          JobSettings(**settings), file_for=candidate_file)


def test_shipped_workflow_has_what_the_plan_drives():
    api = load_workflow(SYNTHESIS_WORKFLOW)
    titles = {node["_meta"]["title"]: node["class_type"] for node in api.values()}
    assert titles["Head pose"] == "PulidStudioHeadPoseView" and titles["PuLID"] == "PulidStudioApplyPulidFlux"
    assert titles["Pose ControlNet"] == "PulidStudioApplyPoseControlNet" and "LoRA" not in titles
    pose_input = get_input(api, "Pose ControlNet", "keypoints")
    assert pose_input[0] == next(k for k, n in api.items() if n["_meta"]["title"] == "Head pose")
    ui = json.loads((ROOT / "workflows" / "07_synthesis.json").read_text())
    assert sorted(str(n["id"]) for n in ui["nodes"]) == sorted(api)              # the UI twin has the same graph
    assert {n.get("title") for n in ui["nodes"]} >= {"Head pose", "PuLID", "Pose ControlNet", "Reference image"}


def test_candidate_jobs_carry_each_view():
    views = tiny_view_plan()
    jobs = jobs_for(views, reference_image="ref_abc.png")
    assert len(jobs) == 6 and len({j.job_id for j in jobs}) == 6
    assert [j.file for j in jobs[:2]] == [candidate_file(views[0], 1), candidate_file(views[0], 2)]
    profile = next(j for j in jobs if j.prompt.tag == "y-90_p+0_portrait" and j.seed == 2)
    graph = profile.graph
    assert get_input(graph, "Head pose", "yaw") == -90.0 and get_input(graph, "Head pose", "framing") == "portrait"
    assert get_input(graph, "Seed", "noise_seed") == 2 and get_input(graph, "Reference image", "image") == "ref_abc.png"
    assert get_input(graph, "Positive prompt", "text").startswith("photo of a man, portrait, profile view facing left")
    assert get_input(graph, "Save", "filename_prefix") == f"pulid_studio_synthesis/{profile.job_id}"
    assert {j.block for j in jobs} == {1, 2, 3}                    # one block (cache affinity) per view
    assert [j.job_id for j in jobs_for(views, reference_image="ref_abc.png")] == [j.job_id for j in jobs]
    assert jobs_for(views, reference_image="other.png")[0].job_id != jobs[0].job_id


def test_tiny_and_overrides_keep_the_head_pose_at_the_latent_size():
    tiny = jobs_for(tiny=True)[0].graph
    assert (get_input(tiny, "Latent", "width"), get_input(tiny, "Latent", "height")) == (448, 608)
    assert (get_input(tiny, "Head pose", "width"), get_input(tiny, "Head pose", "height")) == (448, 608)
    small = jobs_for(tiny=True, overrides=(parse_override("Latent.width=256"), parse_override("Latent.height=320"),
                                           parse_override("PuLID.weight=0.8")))[0].graph
    assert (get_input(small, "Head pose", "width"), get_input(small, "Head pose", "height")) == (256, 320)
    assert get_input(small, "PuLID", "weight") == 0.8
    with pytest.raises(PlanError, match="--set names node\\(s\\) Nope"):
        jobs_for(overrides=(parse_override("Nope.x=1"),))


def test_grounding_jobs_use_the_base_model():
    items = [GroundingImage(name=f"reg_{i:04d}", prompt=f"photo of a man, view {i}", caption="a man", seed=100 + i)
             for i in (1, 2)]
    for item in items:
        item.path = grounding_file(item.name)
    jobs = grounding_jobs(load_workflow(BASE_WORKFLOW), items,
                          JobSettings(tiny=True, overrides=(parse_override("PuLID.weight=0.8"),
                                                            parse_override("Latent.width=256"))))
    assert [j.file for j in jobs] == ["grounding/reg_0001.png", "grounding/reg_0002.png"]
    graph = jobs[1].graph
    assert get_input(graph, "Positive prompt", "text") == "photo of a man, view 2"
    assert get_input(graph, "Seed", "noise_seed") == 102 and get_input(graph, "Latent", "width") == 256
    assert not any(n["class_type"].startswith("PulidStudio") for n in graph.values())
    with pytest.raises(PlanError, match="base model; this workflow has PuLID"):
        grounding_jobs(load_workflow(SYNTHESIS_WORKFLOW), items, JobSettings())


def test_sweep_spec_is_a_valid_spec_with_the_sample_prompts(tmp_path, faces_dir):
    portrait = faces_dir / "photos" / "obama_01.jpg"
    path = write_sweep_spec(tmp_path / "sweep.yaml", trigger="sks woman", portrait=portrait, views=SAMPLE_VIEWS)
    spec = load_spec(path)
    assert [p.text for p in spec.prompts] == [v.prompt("sks woman") for v in SAMPLE_VIEWS]
    assert all("sks woman" in p.text for p in spec.prompts) and spec.reference == [portrait]
    assert {c.name for c in spec.configs} == {"01_base", "02_lora", "03_lora_pulid", "04_full"}


def test_default_plan_jobs_and_the_dry_run(tmp_path, faces_dir):
    assert len(jobs_for(default_view_plan(), seeds=(1, 2, 3, 4))) == 96
    done = subprocess.run([sys.executable, "-m", "api_client.cli", "dataset", "synthesize",
                           str(faces_dir / "photos" / "obama_01.jpg"), "--out", str(tmp_path / "out"), "--tiny",
                           "--dry-run"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "6 jobs, 0 done" and all(line.startswith("todo ") for line in lines[:-1])
    missing = subprocess.run([sys.executable, "-m", "api_client.cli", "dataset", "canonicalize",
                              str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "c")], capture_output=True,
                             text=True, timeout=300, cwd=ROOT)
    assert missing.returncode == 2 and "nope.jpg not found" in missing.stderr
    no_server = subprocess.run([sys.executable, "-m", "api_client.cli", "dataset", "canonicalize",
                                str(faces_dir / "photos" / "obama_01.jpg"), "--out", str(tmp_path / "c")],
                               capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert no_server.returncode == 2 and "no server: pass --server URL" in no_server.stderr
