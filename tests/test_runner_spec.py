"""The ablation spec: the shipped file, and clear errors (file, key, expected) for bad ones."""

import json
from pathlib import Path

import pytest
import yaml

from api_client.runner.sources.ablation.spec import (
    SpecError,
    load_spec,
    parse_spec,
    tag_problem,
)

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
SHIPPED = WORKFLOWS / "ablation.yaml"


def minimal(**changes) -> dict:
    spec = {
        "version": 1,
        "workflows_dir": str(WORKFLOWS),
        "seeds": [1],
        "configs": [{"name": "01_base", "workflow": "01_base_api.json"},
                    {"name": "03_lora_pulid", "workflow": "03_lora_pulid_api.json"}],
        "prompts": [{"tag": "park", "text": "full body photo of a man in a park"}],
    }
    spec.update(changes)
    return spec


def write(tmp_path, data, name="spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def error_for(tmp_path, data) -> SpecError:
    path = write(tmp_path, data)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(path) in str(info.value), "the error must name the file"
    return info.value


def test_shipped_spec_reproduces_the_comparison():
    spec = load_spec(SHIPPED)
    assert [c.name for c in spec.configs] == ["01_base", "02_lora", "03_lora_pulid", "04_full"]
    assert len(spec.prompts) == 9
    assert len({p.tag for p in spec.prompts}) == 9
    assert [p.index for p in spec.prompts] == list(range(1, 10))
    from api_client.runner.sources.ablation.jobs import pose_for

    poses = [pose_for(p) for p in spec.prompts]
    assert {"headshot", "portrait", "medium"} <= set(poses)
    assert sum(p in spec.full_body for p in poses) >= 2
    # The first two prompts (--max-prompts 2) cover both branches of the 04_full rule.
    assert poses[0] in spec.full_body and poses[1] not in spec.full_body
    full = spec.config("04_full")
    assert full.rule.otherwise == "bypass" and set(full.rule.only_for) == {"full_body", "full_body_arm_up"}
    assert spec.seeds
    # Sweeps are defined but off by default: one image per config x prompt x seed.
    assert {"pulid_weight", "pulid_window", "controlnet_strength", "lora_strength"} <= set(spec.sweep_names)
    assert not any(s.enabled for c in spec.configs for s in c.sweeps)
    window = next(s for s in spec.config("03_lora_pulid").sweeps if s.name == "pulid_window")
    assert window.mode == "zip" and [p.alias for p in window.params] == ["st", "en"]


def test_minimal_spec_defaults(tmp_path):
    spec = load_spec(write(tmp_path, minimal()))
    assert spec.name == "spec" and spec.seeds == [1]
    assert str(spec.inputs["prompt"]) == "Positive prompt.text"
    assert spec.config("01_base").graph["4"]["class_type"] == "CLIPTextEncode"


@pytest.mark.parametrize("change, key, expected", [
    ({"seeds": None}, "seeds", "expected a list of integer seeds"),
    ({"seeds": [1, "x"]}, "seeds[1]", "expected a non-negative integer"),
    ({"seeds": [3, 3]}, "seeds", "listed twice"),
    ({"version": 2}, "version", "expected 1"),
    ({"promts": []}, "promts", "unknown key"),
    ({"prompts": []}, "prompts", "expected a non-empty list"),
    ({"prompts": [{"tag": "a b", "text": "x"}]}, "prompts[0].tag", "expected letters, digits"),
    ({"prompts": [{"tag": "shot2", "text": "x"}]}, "prompts[0].tag", "looks like a parameter"),
    ({"prompts": [{"tag": "a", "text": "x"}, {"tag": "a", "text": "y"}]}, "prompts[1].tag", "already used"),
    ({"prompts": [{"tag": "a", "text": ""}]}, "prompts[0].text", "expected a non-empty string"),
    ({"prompts": [{"tag": "a", "text": "x", "composition": "sideways"}]}, "prompts[0].composition",
     "unknown composition tag"),
    ({"inputs": {"prompt": "NoDot"}}, "inputs.prompt", "<node title or id>.<input>"),
    ({"inputs": {"seed": "Nope.noise_seed"}}, "inputs.seed", "no node with id or title 'Nope'"),
    ({"inputs": {"negative": "Negative.text"}}, "inputs.negative",
     "unknown key; expected one of face_region, lora, pose, prompt, reference, save, seed"),
    ({"prompts": ["a park"]}, "prompts[0]", "expected a mapping with tag and text, got 'a park'"),
    ({"prompts": None}, "prompts", "expected a non-empty list of {tag, text[, composition]}, got None"),
    ({"reference": 3}, "reference", "expected an image path or a list of paths"),
    ({"reference": ["me.jpg", ""]}, "reference[1]", "expected a non-empty string"),
])
def test_top_level_errors(tmp_path, change, key, expected):
    error = error_for(tmp_path, minimal(**change))
    assert error.key == key
    assert expected in str(error)


def config_error(tmp_path, config: dict) -> SpecError:
    return error_for(tmp_path, minimal(configs=[config]))


@pytest.mark.parametrize("config, key_part, expected", [
    ({"name": "x", "workflow": "missing.json"}, ".workflow", "cannot read workflow"),
    ({"name": "_x", "workflow": "01_base_api.json"}, ".name", "folder-safe name"),
    ({"name": "x", "workflow": "01_base.json"}, ".workflow", "UI-format workflow"),
    ({"name": "x", "workflow": "01_base_api.json", "overrides": {"Nope.steps": 3}}, ".overrides['Nope.steps']", "'Nope'"),
    ({"name": "x", "workflow": "01_base_api.json", "overrides": {"Scheduler.stepz": 3}}, ".overrides['Scheduler.stepz']",
     "has no input 'stepz'"),
    ({"name": "x", "workflow": "01_base_api.json", "overrides": {"Scheduler.steps": [1, 2]}}, ".overrides['Scheduler.steps']",
     "expected a number, string or boolean"),
    ({"name": "x", "workflow": "01_base_api.json", "overrides": ["Scheduler.steps"]}, ".overrides[0]",
     "Node.input=value"),
    ({"name": "x", "workflow": "04_full_api.json", "rule": {"only_for": ["full_body"], "otherwise": "drop"}},
     ".rule.otherwise", "expected one of skip, bypass, run"),
    ({"name": "x", "workflow": "04_full_api.json", "rule": {"only_for": ["full_body"], "otherwise": "bypass",
                                                             "bypass": {"Nope": {0: "positive"}}}},
     ".rule.bypass['Nope']", "no node 'Nope'"),
    ({"name": "x", "workflow": "04_full_api.json", "rule": {"only_for": ["full_body"], "otherwise": "bypass",
                                                             "bypass": {"Pose ControlNet": {0: "positiv"}}}},
     ".rule.bypass['Pose ControlNet'][0]", "has no input 'positiv'"),
    ({"name": "x", "workflow": "03_lora_pulid_api.json",
      "sweeps": [{"mode": "zip", "params": {"PuLID.weight": [0.1, 0.2], "PuLID.start_at": [0.0]}}]},
     ".sweeps[0].params", "zip needs lists of equal length"),
    ({"name": "x", "workflow": "03_lora_pulid_api.json", "sweeps": [{"mode": "random", "params": {}}]},
     ".sweeps[0].mode", "expected one of cartesian, zip, got 'random'"),
    ({"name": "x", "workflow": "03_lora_pulid_api.json", "sweeps": [{"enabled": "yes", "params": {"PuLID.weight": [1]}}]},
     ".sweeps[0].enabled", "expected true or false, got 'yes'"),
    ({"name": "x", "workflow": "01_base_api.json", "overides": {}}, ".overides",
     "unknown key; expected one of description, loras, name, overrides, rule, sweeps, workflow"),
    ({"name": "x", "workflow": "01_base_api.json", "overrides": 3}, ".overrides",
     "expected a mapping {'Node.input': value} or a list of 'Node.input=value'"),
    ({"name": "x", "workflow": "01_base_api.json", "overrides": {"NoDot": 3}}, ".overrides['NoDot']",
     "expected '<node title or id>.<input>'"),
    ({"name": "x", "workflow": "04_full_api.json", "rule": {"only_for": ["full_body"], "otherwise": "bypass",
                                                             "bypass": {"Pose ControlNet": {"first": "positive"}}}},
     ".rule.bypass['Pose ControlNet']['first']", "expected an integer output slot"),
    ({"workflow": "01_base_api.json"}, "configs[0].name", "missing; expected a folder-safe config name"),
    ({"name": "x", "workflow": "03_lora_pulid_api.json", "sweeps": [{"params": {"PuLID.weight": 0.4}}]},
     ".sweeps[0].params['PuLID.weight']", "expected a non-empty list of values"),
    ({"name": "x", "workflow": "03_lora_pulid_api.json", "sweeps": [{"params": {"PuLID.weight": [0.4, 0.4]}}]},
     ".sweeps[0].params['PuLID.weight']", "distinct values"),
    ({"name": "x", "workflow": "03_lora_pulid_api.json",
      "sweeps": [{"params": {"PuLID.weight": {"values": [0.4], "alias": "w"},
                             "LoRA.strength_model": {"values": [1.0], "alias": "w"}}}]},
     ".sweeps[0].params", "share the file-name alias 'w'"),
    ({"name": "x", "workflow": "03_lora_pulid_api.json",
      "sweeps": [{"params": {"PuLID.weight": {"values": [0.4], "alias": "w1"}}}]},
     ".sweeps[0].params['PuLID.weight'].alias", "letters only"),
])
def test_config_errors(tmp_path, config, key_part, expected):
    error = config_error(tmp_path, config)
    assert error.key.startswith("configs[0]") and error.key.endswith(key_part), error.key
    assert expected in str(error)


def test_missing_key_and_every_other_problem_are_named(tmp_path):
    data = minimal(seeds=[-1])
    del data["prompts"]
    data["configs"][1]["rule"] = {"only_for": [], "otherwise": "skip"}
    error = error_for(tmp_path, data)
    assert error.key == "seeds[0]" and "expected a non-negative integer, got -1" in str(error)
    also = str(error).split("\n")[1:]
    assert also == ["  also configs[1] (03_lora_pulid).rule.only_for: expected at least one pose-bank entry "
                    "(e.g. [full_body]), got []",
                    "  also prompts: missing; expected a non-empty list of {tag, text[, composition]}"]


def test_workflow_without_the_prompt_node_is_refused(tmp_path):
    graph = json.loads((WORKFLOWS / "01_base_api.json").read_text())
    graph["4"]["_meta"]["title"] = "Prompt"
    (tmp_path / "renamed.json").write_text(json.dumps(graph))
    data = minimal(workflows_dir=str(tmp_path), configs=[{"name": "x", "workflow": "renamed.json"}])
    error = error_for(tmp_path, data)
    assert error.key == "inputs.prompt" and "renamed.json" in str(error) and "'Positive prompt'" in str(error)


def test_duplicate_config_name(tmp_path):
    data = minimal(configs=[{"name": "a", "workflow": "01_base_api.json"}, {"name": "a", "workflow": "02_lora_api.json"}])
    error = error_for(tmp_path, data)
    assert error.key == "configs[1].name" and "already defined" in str(error)


def test_not_yaml_and_not_a_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("configs: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="expected a mapping"):
        parse_spec(["a list"], tmp_path / "x.yaml")


@pytest.mark.parametrize("tag", ["park", "park-wave", "red_dress", "close-up_beach", "b2b-meeting"])
def test_valid_tags_survive_the_scorers_file_name_parser(tag):
    from pulid_flux.scoring.naming import parse_gallery_name

    assert tag_problem(tag) is None
    meta = parse_gallery_name(f"07_{tag}_s42_w0.6.png")
    assert (meta.prompt, meta.seed, meta.index) == (tag, 42, 7)


@pytest.mark.parametrize("tag", ["shot2", "a_42", "x_w0", "a__b", "a b", "_a"])
def test_tags_the_scorer_would_misread_are_refused(tag):
    assert tag_problem(tag) is not None
