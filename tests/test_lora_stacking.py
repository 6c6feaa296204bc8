"""LoRA stacking: a ``loras:`` list chains LoRA loader nodes in the API prompt."""

import json
from pathlib import Path

import pytest

from api_client.errors import OverrideError
from api_client.loras import LoraEntry, apply_lora_chain, parse_lora_list

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


@pytest.mark.parametrize("value, message", [
    ([], "non-empty list"),
    ("a.safetensors", "non-empty list"),
    ([{"name": ""}], r"loras\[0\].name: expected the LoRA file name"),
    ([{"name": "a", "strength": "high"}], r"loras\[0\].strength: expected a number"),
    ([{"name": "a", "weight": 1}], r"loras\[0\].weight: unknown key"),
])
def test_bad_lists_name_the_entry(value, message):
    with pytest.raises(ValueError, match=message):
        parse_lora_list(value, "loras")


def test_good_list_defaults_the_strength():
    assert parse_lora_list([{"name": "a"}, {"name": "b", "strength": 0}], "loras") == (
        LoraEntry("a", 1.0), LoraEntry("b", 0.0))
