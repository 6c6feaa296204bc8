"""Graph edits on API prompts: node lookup, overrides, class swaps, model renames."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from api_client import OverrideError
from api_client.overrides import (
    Override,
    apply_overrides,
    find_nodes,
    get_input,
    parse_override,
    rename_model,
    resolve_node,
    set_input,
    swap_class,
)

PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux/flux1-dev.safetensors"},
          "_meta": {"title": "Load Checkpoint"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}, "_meta": {"title": "Positive prompt"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}, "_meta": {"title": "Negative"}},
    "8": {"class_type": "CLIPTextEncode", "inputs": {"text": "dup", "clip": ["4", 1]}, "_meta": {"title": "Negative"}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 3.5, "denoise": 1.0, "model": ["4", 0],
                                               "positive": ["6", 0], "negative": ["7", 0]}, "_meta": {"title": "KSampler"}},
    "12:3": {"class_type": "TextGenerate", "inputs": {"sampling_mode": "on", "sampling_mode.temperature": 0.7},
             "_meta": {"title": "Writer"}},
}


def test_find_and_resolve_nodes():
    assert find_nodes(PROMPT, class_type="CLIPTextEncode") == ["6", "7", "8"]
    assert find_nodes(PROMPT, title="Negative") == ["7", "8"]
    assert find_nodes(PROMPT, title="Negative", class_type="KSampler") == []
    assert resolve_node(PROMPT, 6) == "6"
    assert resolve_node(PROMPT, "Positive prompt") == "6"
    assert resolve_node(PROMPT, "KSampler") == "3"  # unique title (here also the class)
    assert resolve_node(PROMPT, "CheckpointLoaderSimple") == "4"  # unique class
    with pytest.raises(OverrideError, match=r"'Negative' matches 2 nodes by title \(7, 8\)"):
        resolve_node(PROMPT, "Negative")
    with pytest.raises(OverrideError, match="titles in this prompt: .*'Positive prompt'"):
        resolve_node(PROMPT, "Postive prompt")
    with pytest.raises(ValueError):
        find_nodes(PROMPT)


def test_set_input_copies_and_checks_names():
    edited = set_input(PROMPT, "Positive prompt", "text", "a fox")
    assert edited["6"]["inputs"]["text"] == "a fox"
    assert PROMPT["6"]["inputs"]["text"] == "a cat"  # original untouched
    with pytest.raises(OverrideError, match=r"no input 'txt'; its inputs: clip, text"):
        set_input(PROMPT, "6", "txt", "x")
    assert set_input(PROMPT, "6", "extra", 1, allow_new=True)["6"]["inputs"]["extra"] == 1
    unlinked = set_input(PROMPT, "3", "negative", "not a link")
    assert unlinked["3"]["inputs"]["negative"] == "not a link"
    assert get_input(PROMPT, "KSampler", "steps") == 20
    in_place = copy.deepcopy(PROMPT)
    assert set_input(in_place, "3", "steps", 4, in_place=True) is in_place and in_place["3"]["inputs"]["steps"] == 4


@pytest.mark.parametrize("text, expected", [
    ('"Positive prompt".text=a red fox', Override("Positive prompt", "text", "a red fox", "a red fox")),
    ("'Positive prompt'.text=x=y", Override("Positive prompt", "text", "x=y", "x=y")),
    ("3.seed=42", Override("3", "seed", 42, "42")),
    ("KSampler.cfg=3.5", Override("KSampler", "cfg", 3.5, "3.5")),
    ("12:3.sampling_mode.temperature=0.2", Override("12:3", "sampling_mode.temperature", 0.2, "0.2")),
    ('"A.B".flag=true', Override("A.B", "flag", True, "true")),
    ('6.text=["a", 1]', Override("6", "text", ["a", 1], '["a", 1]')),
])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "empty override"),
    ('"Positive prompt.text=a', "unterminated quote"),
    ('"Positive prompt"text=a', "expected '.'"),
    ("seed=4", "NODE.INPUT=VALUE"),
    ("3.seed", "no '=VALUE'"),
    ("3.=4", "empty input name"),
])
def test_parse_override_errors(text, message):
    with pytest.raises(OverrideError, match=message):
        parse_override(text)


def test_apply_overrides_keeps_input_types():
    edited = apply_overrides(PROMPT, ['"Positive prompt".text=42', "3.steps=8.0", "3.cfg=2", "3.seed=7",
                                      Override("7", "text", "clean")])
    assert edited["6"]["inputs"]["text"] == "42"  # a text stays text
    assert edited["3"]["inputs"]["steps"] == 8 and isinstance(edited["3"]["inputs"]["steps"], int)
    assert edited["3"]["inputs"]["cfg"] == 2
    assert edited["3"]["inputs"]["seed"] == 7
    assert edited["7"]["inputs"]["text"] == "clean"
    assert PROMPT["3"]["inputs"]["steps"] == 20
    with pytest.raises(OverrideError, match="no input 'stepz'"):
        apply_overrides(PROMPT, ["3.stepz=1"])


def test_swap_class_with_object_info_checks():
    object_info = json.loads((Path(__file__).parent / "data" / "object_info_min.json").read_text())
    swapped = swap_class(PROMPT, "Load Checkpoint", "LoadImage", rename_inputs={"ckpt_name": "image"},
                         object_info=object_info)
    assert swapped["4"] == {"class_type": "LoadImage", "inputs": {"image": "flux/flux1-dev.safetensors"},
                            "_meta": {"title": "Load Checkpoint"}}
    dropped = swap_class(PROMPT, "6", "ConditioningCombine", object_info=object_info,
                         set_inputs={"conditioning_1": ["7", 0], "conditioning_2": ["8", 0]})
    assert dropped["6"]["inputs"] == {"conditioning_1": ["7", 0], "conditioning_2": ["8", 0]}
    with pytest.raises(OverrideError, match="needs input"):
        swap_class(PROMPT, "6", "ConditioningCombine", object_info=object_info)
    with pytest.raises(OverrideError, match="does not know node class 'Nope'"):
        swap_class(PROMPT, "6", "Nope", object_info=object_info)
    with pytest.raises(OverrideError, match="no input 'ckpt'"):
        swap_class(PROMPT, "4", "X", rename_inputs={"ckpt": "a"})
    assert swap_class(PROMPT, "4", "UNETLoader")["4"]["class_type"] == "UNETLoader"


def test_rename_model_keeps_subfolders():
    renamed, count = rename_model(PROMPT, "flux1-dev.safetensors", "flux1-schnell.safetensors")
    assert count == 1 and renamed["4"]["inputs"]["ckpt_name"] == "flux/flux1-schnell.safetensors"
    renamed, count = rename_model(PROMPT, "flux/flux1-dev.safetensors", "other/x.safetensors")
    assert count == 1 and renamed["4"]["inputs"]["ckpt_name"] == "other/x.safetensors"
    assert rename_model(PROMPT, "absent.safetensors", "y")[1] == 0
    assert PROMPT["4"]["inputs"]["ckpt_name"] == "flux/flux1-dev.safetensors"
