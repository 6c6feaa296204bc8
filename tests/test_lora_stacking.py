"""LoRA stacking: a ``loras:`` list chains LoRA loader nodes in the API prompt."""

import json
from pathlib import Path

import pytest

from api_client.errors import OverrideError
from api_client.loras import LoraEntry, apply_lora_chain

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


def graph():
    return json.loads((WORKFLOWS / "02_lora_api.json").read_text())


def test_two_loras_are_chained_and_the_consumers_follow():
    original = graph()
    consumers = {nid for nid, node in original.items() for v in node["inputs"].values()
                 if isinstance(v, list) and v[0] == "20"}
    result = apply_lora_chain(original, "LoRA", [LoraEntry("id.safetensors", 1.0), LoraEntry("style.safetensors", 0.5)])
    assert original["20"]["inputs"]["lora_name"] == "identity_lora.safetensors"     # input untouched
    assert result["20"]["inputs"] == {**original["20"]["inputs"], "lora_name": "id.safetensors", "strength_model": 1.0}
    new = result["21"]
    assert new["class_type"] == "LoraLoaderModelOnly" and new["_meta"]["title"] == "LoRA 2"
    assert new["inputs"] == {"model": ["20", 0], "lora_name": "style.safetensors", "strength_model": 0.5}
    for nid in consumers:
        links = [v for v in result[nid]["inputs"].values() if isinstance(v, list)]
        assert ["21", 0] in links and ["20", 0] not in links
    assert len(result) == len(original) + 1


def test_a_single_entry_only_sets_the_node():
    result = apply_lora_chain(graph(), "LoRA", [LoraEntry("a.safetensors", 0.7)])
    assert result["20"]["inputs"]["lora_name"] == "a.safetensors" and result["20"]["inputs"]["strength_model"] == 0.7
    assert len(result) == len(graph())


def test_lora_loader_with_clip_chains_both_outputs():
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m.safetensors"}},
              "2": {"class_type": "LoraLoader", "_meta": {"title": "LoRA"},
                    "inputs": {"model": ["1", 0], "clip": ["1", 1], "lora_name": "x", "strength_model": 1.0,
                               "strength_clip": 1.0}},
              "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 1], "text": "a"}},
              "4": {"class_type": "KSampler", "inputs": {"model": ["2", 0]}}}
    result = apply_lora_chain(prompt, "LoRA", [LoraEntry("a", 1.0), LoraEntry("b", 0.25)])
    assert result["5"]["inputs"]["model"] == ["2", 0] and result["5"]["inputs"]["clip"] == ["2", 1]
    assert result["5"]["inputs"]["strength_clip"] == 0.25
    assert result["3"]["inputs"]["clip"] == ["5", 1] and result["4"]["inputs"]["model"] == ["5", 0]


def test_a_node_that_is_not_a_lora_loader_is_refused():
    with pytest.raises(OverrideError, match="not a LoRA loader"):
        apply_lora_chain(graph(), "Positive prompt", [LoraEntry("a")])


# ----------------------------------------------------------------------------- the spec's loras: key

def write_spec(tmp_path, loras_yaml: str, workflow: str = "02_lora_api.json"):
    text = f"""
version: 1
workflows_dir: {WORKFLOWS}
seeds: [1]
configs:
  - name: stacked
    workflow: {workflow}
    loras: {loras_yaml}
prompts:
  - {{tag: park, text: photo of ohwx man in a park}}
"""
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_a_spec_config_stacks_its_loras(tmp_path):
    from api_client.runner.sources.ablation.jobs import expand_jobs
    from api_client.runner.sources.ablation.spec import load_spec

    spec = load_spec(write_spec(tmp_path, "[{name: id.safetensors, strength: 1.0}, {name: style.safetensors, "
                                          "strength: 0.5}]"))
    assert spec.configs[0].loras == (LoraEntry("id.safetensors", 1.0), LoraEntry("style.safetensors", 0.5))
    (job,) = expand_jobs(spec)
    titles = {n.get("_meta", {}).get("title"): n["inputs"] for n in job.graph.values()}
    assert titles["LoRA"]["lora_name"] == "id.safetensors"
    assert titles["LoRA 2"] == {"model": ["20", 0], "lora_name": "style.safetensors", "strength_model": 0.5}
    # The stack is part of what the job id hashes: another strength is another job.
    other = load_spec(write_spec(tmp_path, "[{name: id.safetensors}, {name: style.safetensors, strength: 0.6}]"))
    assert expand_jobs(other)[0].job_id != job.job_id


@pytest.mark.parametrize("loras, workflow, message", [
    ("[{name: a, strength: x}]", "02_lora_api.json",
     r"configs\[0\] \(stacked\).loras\[0\] \(a\).strength: expected a number, got .x."),
    ("[]", "02_lora_api.json", r"configs\[0\] \(stacked\).loras: expected a non-empty list"),
    ("[{name: a}]", "01_base_api.json", "has no LoRA node 'LoRA'"),
])
def test_bad_loras_in_a_spec_name_the_key(tmp_path, loras, workflow, message):
    from api_client.runner.sources.ablation.spec import SpecError, load_spec

    with pytest.raises(SpecError, match=message):
        load_spec(write_spec(tmp_path, loras, workflow))


def test_the_sweeps_style_spec_loads_and_stacks(tmp_path):
    import yaml

    from api_client.runner.sources.ablation.jobs import expand_jobs
    from api_client.runner.sources.ablation.spec import load_spec
    from pulid_flux.sweep.report import ablation_spec_data, write_ablation_spec

    source_path = WORKFLOWS / "ablation.yaml"
    data = ablation_spec_data(yaml.safe_load(source_path.read_text()), source_path=source_path,
                              checkpoint="id_000000500.safetensors", lora_node="LoRA",
                              lora_configs=["02_lora", "03_lora_pulid", "04_full"], reference=[],
                              style={"lora": "water.safetensors", "strength": "0.5"})
    spec = load_spec(write_ablation_spec(tmp_path / "style.yaml", data, header=["test"]))
    assert spec.config("03_lora_pulid").loras == (LoraEntry("id_000000500.safetensors", 1.0),
                                                  LoraEntry("water.safetensors", 0.5))
    jobs = [j for j in expand_jobs(spec) if j.config == "04_full" and j.prompt.index == 1]
    titles = {n.get("_meta", {}).get("title"): n["inputs"] for n in jobs[0].graph.values()}
    assert titles["LoRA 2"]["lora_name"] == "water.safetensors" and titles["LoRA 2"]["strength_model"] == 0.5
