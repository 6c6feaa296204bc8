"""Job expansion (sweeps, per-prompt rules), job ids, file names and run order."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from api_client.overrides import parse_override
from api_client.runner.plan import canonical_graph
from api_client.runner.sources.ablation.jobs import (
    Selection,
    bypass_nodes,
    config_chain,
    expand_jobs,
)
from api_client.runner.sources.ablation.spec import SpecError, load_spec

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
SHIPPED = WORKFLOWS / "ablation.yaml"
REF = Selection(reference_image="pulid_studio/ref.png")


@pytest.fixture(scope="module")
def shipped():
    return load_spec(SHIPPED)


def spec_file(tmp_path, configs, prompts=None, seeds=(1,), name="spec.yaml"):
    data = {"version": 1, "workflows_dir": str(WORKFLOWS), "seeds": list(seeds), "configs": configs,
            "prompts": prompts or [{"tag": "park", "text": "full body photo of a man in a park"},
                                   {"tag": "studio", "text": "close-up headshot of a man"}]}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_spec(path)


def test_shipped_spec_one_job_per_config_prompt_seed(shipped):
    jobs = expand_jobs(shipped, REF)
    assert len(jobs) == 4 * 9 * len(shipped.seeds)
    assert len({j.job_id for j in jobs}) == len(jobs) == len({j.file for j in jobs})
    two = expand_jobs(shipped, replace(REF, max_prompts=2))
    assert [j.job_id for j in two] == [j.job_id for j in jobs[:8]]      # ids do not depend on the selection


def test_prompt_seed_pose_and_reference_are_set(shipped):
    jobs = {j.label: j for j in expand_jobs(shipped, replace(REF, max_prompts=2, seeds=(7,)))}
    full = jobs["04_full/01_park-wave_s7.png"]
    assert full.graph["4"]["inputs"]["text"].startswith("photo of ohwx man, full body")
    assert full.graph["7"]["inputs"]["noise_seed"] == 7
    assert full.graph["41"]["inputs"]["name"] == "full_body_arm_up" == full.pose
    assert full.graph["30"]["inputs"]["image"] == "pulid_studio/ref.png"
    assert full.graph["13"]["inputs"]["filename_prefix"] == f"pulid_studio_runner/04_full/{full.job_id}"
    assert "30" not in jobs["01_base/01_park-wave_s7.png"].graph


def test_04_full_without_controlnet_for_non_full_body_prompts(shipped):
    jobs = {j.label: j for j in expand_jobs(shipped, replace(REF, max_prompts=2))}
    headshot = jobs["04_full/02_studio-headshot_s42.png"]
    assert headshot.rule == "bypass" and headshot.pose == "headshot" and not headshot.full_body
    # ControlNet, its loader, the pose and the zeroed negative are gone; the guider takes the prompt again.
    assert not {"40", "41", "42", "43"} & set(headshot.graph)
    assert headshot.graph["10"]["inputs"]["conditioning"] == ["5", 0]
    # ...which is exactly the 03 graph, so ComfyUI serves that image from its cache.
    pulid = jobs["03_lora_pulid/02_studio-headshot_s42.png"]
    assert canonical_graph(headshot.graph, "13") == canonical_graph(pulid.graph, "13")
    assert headshot.job_id != pulid.job_id
    assert jobs["04_full/01_park-wave_s42.png"].rule == "as-is"


def test_rule_skip_and_run(tmp_path):
    rule = {"only_for": ["full_body"], "otherwise": "skip"}
    spec = spec_file(tmp_path, [{"name": "full", "workflow": "04_full_api.json", "rule": rule}])
    jobs = expand_jobs(spec, REF)
    assert [j.prompt.tag for j in jobs] == ["park"]
    spec = spec_file(tmp_path, [{"name": "full", "workflow": "04_full_api.json",
                                 "rule": {**rule, "otherwise": "run"}}], name="run.yaml")
    jobs = expand_jobs(spec, REF)
    assert [(j.prompt.tag, j.rule, j.graph["41"]["inputs"]["name"]) for j in jobs] == [
        ("park", "as-is", "full_body"), ("studio", "run", "headshot")]


def test_cartesian_and_zip_sweeps(tmp_path):
    sweeps = [
        {"name": "grid", "mode": "cartesian",
         "params": {"PuLID.weight": {"values": [0.4, 0.8], "alias": "w"}, "PuLID.start_at": {"values": [0.0, 0.2],
                                                                                               "alias": "st"}}},
        {"name": "pairs", "mode": "zip", "enabled": False,
         "params": {"PuLID.start_at": {"values": [0.1, 0.3], "alias": "st"},
                    "PuLID.end_at": {"values": [0.9, 0.7], "alias": "en"}}},
    ]
    spec = spec_file(tmp_path, [{"name": "pulid", "workflow": "03_lora_pulid_api.json", "sweeps": sweeps}],
                     prompts=[{"tag": "p", "text": "portrait"}])
    jobs = expand_jobs(spec, REF)
    assert [j.name for j in jobs] == ["01_p_s1_w0.4_st0.png", "01_p_s1_w0.4_st0.2.png", "01_p_s1_w0.8_st0.png",
                                      "01_p_s1_w0.8_st0.2.png"]
    assert [(j.graph["36"]["inputs"]["weight"], j.graph["36"]["inputs"]["start_at"]) for j in jobs] == [
        (0.4, 0.0), (0.4, 0.2), (0.8, 0.0), (0.8, 0.2)]
    jobs = expand_jobs(spec, replace(REF, sweeps=("pairs",)))
    assert len(jobs) == 4 + 2
    zipped = [j for j in jobs if "PuLID.end_at" in dict(j.params)]
    assert [dict(j.params) for j in zipped] == [{"PuLID.start_at": 0.1, "PuLID.end_at": 0.9},
                                               {"PuLID.start_at": 0.3, "PuLID.end_at": 0.7}]
    assert [j.graph["36"]["inputs"]["end_at"] for j in zipped] == [0.9, 0.7]
    assert len(expand_jobs(spec, replace(REF, no_sweeps=True))) == 1
    with pytest.raises(SpecError, match="no sweep named 'nope'"):
        expand_jobs(spec, replace(REF, sweeps=("nope",)))


def test_sweep_of_a_bypassed_node_collapses(shipped):
    jobs = expand_jobs(shipped, replace(REF, max_prompts=2, sweeps=("controlnet_strength",)))
    full = [j for j in jobs if j.config == "04_full"]
    assert [j.name for j in full] == ["01_park-wave_s42_cn0.6.png", "01_park-wave_s42_cn0.85.png",
                                      "01_park-wave_s42_cn1.png", "02_studio-headshot_s42.png"]
    assert [j.graph.get("43", {}).get("inputs", {}).get("strength") for j in full] == [0.6, 0.85, 1.0, None]


def test_file_names_are_read_back_by_the_scorer(shipped):
    from pulid_flux.scoring.naming import parse_gallery_name

    for job in expand_jobs(shipped, replace(REF, seeds=(3, 1234), sweeps=("pulid_weight",))):
        meta = parse_gallery_name(job.name)
        assert (meta.prompt, meta.seed, meta.index) == (job.prompt.tag, job.seed, job.prompt.index)
        assert job.file == f"gallery/{job.config}/{job.name}"


def test_job_ids_follow_content(shipped, tmp_path):
    base = {j.label: j.job_id for j in expand_jobs(shipped, REF)}
    assert base == {j.label: j.job_id for j in expand_jobs(load_spec(SHIPPED), REF)}          # stable
    other_ref = {j.label: j.job_id for j in expand_jobs(shipped, replace(REF, reference_image="pulid_studio/b.png"))}
    changed = {k for k in base if base[k] != other_ref[k]}
    assert changed == {k for k in base if k.startswith(("03_", "04_"))}                        # only PuLID configs
    steps = {j.label: j.job_id for j in expand_jobs(shipped, replace(REF, overrides=(parse_override("Scheduler.steps=9"),)))}
    assert not set(base.values()) & set(steps.values())
    tiny = {j.label: j.job_id for j in expand_jobs(shipped, replace(REF, tiny=True))}
    assert not set(base.values()) & set(tiny.values())
    # A changed workflow file changes its config's jobs only.
    graph = json.loads((WORKFLOWS / "02_lora_api.json").read_text())
    graph["20"]["inputs"]["strength_model"] = 0.5
    (tmp_path / "02_lora_api.json").write_text(json.dumps(graph))
    data = yaml.safe_load(SHIPPED.read_text())
    data["workflows_dir"] = str(WORKFLOWS)
    data["configs"][1]["workflow"] = str(tmp_path / "02_lora_api.json")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    edited = {j.label: j.job_id for j in expand_jobs(load_spec(tmp_path / "s.yaml"), REF)}
    assert {k for k in base if base[k] != edited[k]} == {k for k in base if k.startswith("02_")}


def test_tiny_and_global_overrides(shipped):
    jobs = expand_jobs(shipped, replace(REF, max_prompts=1, tiny=True,
                                        overrides=(parse_override("Latent.width=256"),)))
    for job in jobs:
        assert job.graph["2"]["class_type"] == "CLIPLoader"          # adapt_for_tiny
        assert job.graph["9"]["inputs"]["steps"] == 2
        assert job.graph["6"]["inputs"]["width"] == 256
    with pytest.raises(Exception, match="no node with id or title 'Pose'"):
        expand_jobs(shipped, replace(REF, overrides=(parse_override("Pose.width=256"),)))


def test_order_is_prompt_major_with_config_chain(shipped):
    jobs = expand_jobs(shipped, replace(REF, seeds=(1, 2)))
    assert [j.order for j in jobs] == list(range(len(jobs)))
    prompts = [j.prompt.index for j in jobs]
    assert prompts == sorted(prompts)                                    # a prompt's jobs are contiguous
    first = [j for j in jobs if j.prompt.index == 1]
    assert [(j.config, j.seed) for j in first] == [(c, s) for c in ("01_base", "02_lora", "03_lora_pulid", "04_full")
                                                   for s in (1, 2)]
    assert {j.block for j in first} == {1}


def test_config_chain_follows_shared_graph(shipped):
    configs = {c.name: c for c in shipped.configs}
    shuffled = [configs[n] for n in ("01_base", "04_full", "02_lora", "03_lora_pulid")]
    assert config_chain(shuffled) == ["01_base", "02_lora", "03_lora_pulid", "04_full"]
    assert config_chain([configs["04_full"], configs["01_base"], configs["03_lora_pulid"]]) == [
        "04_full", "03_lora_pulid", "01_base"]


def test_bypass_nodes_rewires_and_prunes():
    graph = {
        "1": {"class_type": "Src", "inputs": {}},
        "2": {"class_type": "Side", "inputs": {}},
        "3": {"class_type": "Apply", "inputs": {"positive": ["1", 0], "side": ["2", 0]}},
        "4": {"class_type": "Use", "inputs": {"cond": ["3", 0]}},
        "5": {"class_type": "Save", "inputs": {"x": ["4", 0]}},
    }
    out = bypass_nodes(graph, {"3": {0: "positive"}})
    assert out == {"1": graph["1"], "4": {"class_type": "Use", "inputs": {"cond": ["1", 0]}}, "5": graph["5"]}
    assert "3" in graph  # the input is not modified
    graph["4"]["inputs"]["other"] = ["3", 1]
    with pytest.raises(SpecError, match="uses output 1"):
        bypass_nodes(graph, {"3": {0: "positive"}})


def test_unknown_config_selection(shipped):
    with pytest.raises(SpecError, match="no config named 'zz'"):
        expand_jobs(shipped, replace(REF, configs=("zz",)))
    only = expand_jobs(shipped, replace(REF, configs=("02_lora",)))
    assert {j.config for j in only} == {"02_lora"} and len(only) == 9
