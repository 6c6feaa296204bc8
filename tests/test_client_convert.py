"""UI -> API conversion rules, without a server.

``tests/data/object_info_min.json`` is a subset of a real ComfyUI 0.33 ``/object_info``, and
``object_info_min_0.8.0.json`` the same classes in ComfyUI 0.8.0 (null where 0.8.0 lacks one); the
integration test checks each is still what a server of its version says. Every test runs on both
unless it needs a 0.33-only class. Every expected prompt below was also
checked against the real frontend's ``app.graphToPrompt()`` (see
tests/integration/test_convert_templates.py for the harness), so these expectations are the
frontend's behaviour, not just ours. Deliberate differences, each tested below: a
``widgets_values`` object is applied by name (the core frontend loses those values), and
unknown node types / malformed links / non-list ``widgets_values`` raise clear errors where the
frontend silently drops or garbles them.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest

from api_client import ConversionError, WorkflowFormatError, is_api_prompt, is_ui_workflow, ui_to_api
from api_client.convert import is_valid_connection, process_dynamic_prompt
from api_client.node_info import UNDEFINED, parse_object_info

DATA = Path(__file__).parent / "data"


#: ComfyUI version -> its /object_info snapshot (the newest is the one the other unit tests use).
SNAPSHOTS = {"0.33.0": "object_info_min.json", "0.8.0": "object_info_min_0.8.0.json"}


def load_snapshot(version: str) -> dict:
    return {name: info for name, info in json.loads((DATA / SNAPSHOTS[version]).read_text()).items()
            if info is not None}     # null: a class this ComfyUI version does not have


@pytest.fixture(scope="module", params=list(SNAPSHOTS), ids=lambda v: f"comfyui-{v}")
def snapshot_version(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def object_info(snapshot_version) -> dict:
    return load_snapshot(snapshot_version)


@pytest.fixture(scope="module")
def object_info_033() -> dict:
    """For the classes ComfyUI 0.8.0 does not have (SeedVR2TemporalMerge, ImageCompare)."""
    return load_snapshot("0.33.0")


class UI:
    """A tiny builder for editor-format workflows (schema 0.4 arrays, or 1.0 objects)."""

    def __init__(self, version: float = 0.4):
        self.version = version
        self.nodes: list[dict] = []
        self.links: list = []
        self._next_link = 1

    def node(self, node_id, node_type, widgets_values=None, *, title=None, mode=0, outputs=()):
        node = {"id": node_id, "type": node_type, "mode": mode, "inputs": [],
                "outputs": [{"name": name, "type": t, "links": []} for name, t in outputs]}
        if widgets_values is not None:
            node["widgets_values"] = widgets_values
        if title is not None:
            node["title"] = title
        self.nodes.append(node)
        return node

    def _find(self, node_id):
        return next(n for n in self.nodes if n["id"] == node_id)

    def link(self, origin, origin_slot, target, input_name, link_type, *, widget=False):
        link_id = self._next_link
        self._next_link += 1
        target_node = self._find(target)
        entry = {"name": input_name, "type": link_type, "link": link_id}
        if widget:
            entry["widget"] = {"name": input_name}
        target_node["inputs"].append(entry)
        origin_node = self._find(origin)
        while len(origin_node["outputs"]) <= origin_slot:
            origin_node["outputs"].append({"name": link_type, "type": link_type, "links": []})
        origin_node["outputs"][origin_slot]["links"].append(link_id)
        slot = len(target_node["inputs"]) - 1
        if self.version == 0.4:
            self.links.append([link_id, origin, origin_slot, target, slot, link_type])
        else:
            self.links.append({"id": link_id, "origin_id": origin, "origin_slot": origin_slot, "target_id": target,
                               "target_slot": slot, "type": link_type})
        return link_id

    def build(self, **extra) -> dict:
        data = {"nodes": self.nodes, "links": self.links, "groups": [], "config": {}, "extra": {}}
        if self.version == 0.4:
            data.update(version=0.4, last_node_id=max((n["id"] for n in self.nodes), default=0),
                        last_link_id=self._next_link - 1)
        else:
            data.update(version=1, state={"lastNodeId": max((n["id"] for n in self.nodes), default=0),
                                          "lastLinkId": self._next_link - 1, "lastGroupId": 0, "lastRerouteId": 0})
        data.update(extra)
        return data


def txt2img(version: float = 0.4) -> UI:
    ui = UI(version)
    ui.node(4, "CheckpointLoaderSimple", ["flux1-dev.safetensors"], outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")])
    ui.node(6, "CLIPTextEncode", ["a photo of a cat"], title="Positive prompt", outputs=[("CONDITIONING", "CONDITIONING")])
    ui.node(7, "CLIPTextEncode", ["blurry"], outputs=[("CONDITIONING", "CONDITIONING")])
    ui.node(5, "EmptyLatentImage", [1024, 768, 1], outputs=[("LATENT", "LATENT")])
    ui.node(3, "KSampler", [42, "randomize", 20, 3.5, "euler", "simple", 1.0], outputs=[("LATENT", "LATENT")])
    ui.node(8, "VAEDecode", [], outputs=[("IMAGE", "IMAGE")])
    ui.node(9, "SaveImage", ["cat"])
    ui.link(4, 1, 6, "clip", "CLIP")
    ui.link(4, 1, 7, "clip", "CLIP")
    ui.link(4, 0, 3, "model", "MODEL")
    ui.link(6, 0, 3, "positive", "CONDITIONING")
    ui.link(7, 0, 3, "negative", "CONDITIONING")
    ui.link(5, 0, 3, "latent_image", "LATENT")
    ui.link(3, 0, 8, "samples", "LATENT")
    ui.link(4, 2, 8, "vae", "VAE")
    ui.link(8, 0, 9, "images", "IMAGE")
    return ui


TXT2IMG_EXPECTED = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux1-dev.safetensors"},
          "_meta": {"title": "Load Checkpoint"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo of a cat", "clip": ["4", 1]},
          "_meta": {"title": "Positive prompt"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]},
          "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1},
          "_meta": {"title": "Empty Latent Image"}},
    "3": {"class_type": "KSampler",
          "inputs": {"seed": 42, "steps": 20, "cfg": 3.5, "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0,
                     "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]},
          "_meta": {"title": "KSampler"}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "_meta": {"title": "VAE Decode"}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "cat", "images": ["8", 0]}, "_meta": {"title": "Save Image"}},
}


def test_basic_graph_maps_widgets_by_position_and_skips_control_after_generate(object_info):
    prompt = ui_to_api(txt2img().build(), object_info)
    assert prompt == TXT2IMG_EXPECTED
    # dependencies come before the nodes that use them
    order = list(prompt)
    assert order.index("4") < order.index("6") < order.index("3") < order.index("8") < order.index("9")


def test_schema_1_object_links_give_the_same_prompt(object_info):
    assert ui_to_api(txt2img(version=1).build(), object_info) == TXT2IMG_EXPECTED


def test_widget_converted_to_input_uses_the_link(object_info):
    ui = txt2img()
    ui.node(20, "PrimitiveInt", [1234, "fixed"], outputs=[("INT", "INT")])
    ui.link(20, 0, 3, "seed", "INT", widget=True)
    prompt = ui_to_api(ui.build(), object_info)
    assert prompt["3"]["inputs"]["seed"] == ["20", 0]
    assert prompt["20"] == {"class_type": "PrimitiveInt", "inputs": {"value": 1234}, "_meta": {"title": "Int"}}


def test_primitive_node_writes_its_value_into_the_widget_it_feeds(object_info):
    ui = txt2img()
    ui.node(30, "PrimitiveNode", [777, "increment"], outputs=[("INT", "INT")])
    ui.link(30, 0, 3, "seed", "INT", widget=True)
    ui.link(30, 0, 5, "batch_size", "INT", widget=True)
    prompt = ui_to_api(ui.build(), object_info)
    assert "30" not in prompt
    assert prompt["3"]["inputs"]["seed"] == 777
    assert prompt["5"]["inputs"]["batch_size"] == 777


def test_reroute_and_notes_are_transparent(object_info):
    ui = txt2img()
    ui.node(40, "Reroute", outputs=[("", "VAE")])
    ui.node(41, "Reroute", outputs=[("", "VAE")])
    ui.node(42, "Note", ["remember the VAE"])
    ui.node(43, "MarkdownNote", ["# hi"])
    decode = ui._find(8)
    decode["inputs"] = [i for i in decode["inputs"] if i["name"] != "vae"]
    ui.links = [link for link in ui.links if not (link[3] == 8 and link[5] == "VAE")]
    ui.link(4, 2, 40, "", "*")
    ui.link(40, 0, 41, "", "*")
    ui.link(41, 0, 8, "vae", "VAE")
    prompt = ui_to_api(ui.build(), object_info)
    assert prompt == TXT2IMG_EXPECTED


def test_muted_node_is_dropped_with_the_links_to_it(object_info):
    ui = txt2img()
    ui._find(7)["mode"] = 2
    prompt = ui_to_api(ui.build(), object_info)
    assert "7" not in prompt
    assert "negative" not in prompt["3"]["inputs"]
    assert prompt["3"]["inputs"]["positive"] == ["6", 0]


def test_bypassed_node_passes_an_input_of_the_matching_type_through(object_info):
    ui = txt2img()
    sampler = ui._find(3)
    sampler["inputs"] = [i for i in sampler["inputs"] if i["name"] != "latent_image"]
    ui.links = [link for link in ui.links if not (link[3] == 3 and link[5] == "LATENT")]
    ui.node(50, "LatentUpscale", ["bislerp", 2048, 2048, "center"], mode=4, outputs=[("LATENT", "LATENT")])
    ui.link(5, 0, 50, "samples", "LATENT")
    ui.link(50, 0, 3, "latent_image", "LATENT")
    # a bypassed node with no input of the wanted type leaves the consumer unconnected
    ui.node(51, "ConditioningCombine", [], mode=4, outputs=[("CONDITIONING", "CONDITIONING")])
    ui.node(52, "ImageScaleBy", ["lanczos", 2.0], mode=4, outputs=[("IMAGE", "IMAGE")])
    ui.link(8, 0, 52, "image", "IMAGE")
    ui.node(53, "PreviewImage", [])
    ui.link(52, 0, 53, "images", "IMAGE")
    prompt = ui_to_api(ui.build(), object_info)
    assert "50" not in prompt and "51" not in prompt and "52" not in prompt
    assert prompt["3"]["inputs"]["latent_image"] == ["5", 0]
    assert prompt["53"]["inputs"] == {"images": ["8", 0]}


def test_bypass_chooses_by_type_not_position(object_info):
    ui = UI()
    ui.node(1, "EmptyLatentImage", [512, 512, 1], outputs=[("LATENT", "LATENT")])
    ui.node(2, "CheckpointLoaderSimple", ["m.safetensors"], outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")])
    ui.node(3, "VAEDecode", [], mode=4, outputs=[("IMAGE", "IMAGE")])
    ui.link(1, 0, 3, "samples", "LATENT")
    ui.link(2, 2, 3, "vae", "VAE")
    ui.node(4, "VAEDecode", [], outputs=[("IMAGE", "IMAGE")])
    ui.link(3, 0, 4, "samples", "LATENT")  # wants LATENT from a bypassed IMAGE output
    ui.link(2, 2, 4, "vae", "VAE")
    ui.node(5, "SaveImage", ["x"])
    ui.link(4, 0, 5, "images", "IMAGE")
    prompt = ui_to_api(ui.build(), object_info)
    assert prompt["4"]["inputs"]["samples"] == ["1", 0]


def test_load_image_upload_widget_takes_a_slot_but_is_not_sent(object_info):
    ui = UI()
    ui.node(1, "LoadImage", ["face.png", "image"], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")])
    ui.node(2, "ImageScaleBy", ["bicubic", 0.5], outputs=[("IMAGE", "IMAGE")])
    ui.link(1, 0, 2, "image", "IMAGE")
    ui.node(3, "PreviewImage", [])
    ui.link(2, 0, 3, "images", "IMAGE")
    prompt = ui_to_api(ui.build(), object_info)
    assert prompt["1"]["inputs"] == {"image": "face.png"}
    assert prompt["2"]["inputs"] == {"upscale_method": "bicubic", "scale_by": 0.5, "image": ["1", 0]}


def test_short_widgets_values_fall_back_to_defaults_and_null_combos_to_the_first_option(object_info):
    ui = UI()
    ui.node(1, "LatentUpscale", [None, 640], outputs=[("LATENT", "LATENT")])
    ui.node(2, "EmptyLatentImage", [], outputs=[("LATENT", "LATENT")])
    ui.link(2, 0, 1, "samples", "LATENT")
    ui.node(3, "KSampler", [1, "fixed", 4, 1.0, "sample_dpmpp_2m", "karras", 0.5], outputs=[("LATENT", "LATENT")])
    prompt = ui_to_api(ui.build(), object_info)
    assert prompt["1"]["inputs"] == {"upscale_method": "nearest-exact", "width": 640, "height": 512, "crop": "disabled",
                                     "samples": ["2", 0]}
    assert prompt["2"]["inputs"] == {"width": 512, "height": 512, "batch_size": 1}
    # old workflows stored sampler names with a "sample_" prefix; the frontend strips it on load
    assert prompt["3"]["inputs"]["sampler_name"] == "dpmpp_2m"


def test_combo_without_options_or_value_is_left_out(object_info):
    ui = UI()
    ui.node(1, "CheckpointLoaderSimple", [], outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")])
    prompt = ui_to_api(ui.build(), object_info)
    assert prompt["1"]["inputs"] == {}  # the server's checkpoint list is empty: nothing to pick


def test_widgets_values_object_is_applied_by_name(object_info):
    ui = UI()
    ui.node(1, "EmptyLatentImage", {"height": 320, "width": 256, "not_an_input": 5}, outputs=[("LATENT", "LATENT")])
    prompt = ui_to_api(ui.build(), object_info)
    assert prompt["1"]["inputs"] == {"width": 256, "height": 320, "batch_size": 1}


def test_force_input_has_no_widget_and_legacy_slots_are_dropped(object_info_033):
    ui = UI()
    ui.node(1, "EmptyLatentImage", [64, 64, 1], outputs=[("LATENT", "LATENT")])
    ui.node(2, "PrimitiveInt", [8, "fixed"], outputs=[("INT", "INT")])
    ui.node(3, "SeedVR2TemporalMerge", [5], outputs=[("LATENT", "LATENT")])  # a legacy slot for the forceInput
    ui.link(1, 0, 3, "latents", "LATENT")
    ui.link(2, 0, 3, "temporal_overlap", "INT")
    prompt = ui_to_api(ui.build(), object_info_033)
    assert prompt["3"]["inputs"] == {"latents": ["1", 0], "temporal_overlap": ["2", 0]}


def test_dynamic_combo_sub_widgets_follow_the_chosen_option(object_info):
    ui = UI()
    ui.node(1, "LoadImage", ["a.png", "image"], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")])
    ui.node(2, "ResizeImageMaskNode", ["scale by multiplier", 1.5, "lanczos"], outputs=[("resized", "IMAGE")])
    ui.link(1, 0, 2, "input", "IMAGE,MASK")
    ui.node(3, "ResizeImageMaskNode", ["scale dimensions", 640, 480, "center", "bicubic"], outputs=[("resized", "IMAGE")])
    ui.link(1, 0, 3, "input", "IMAGE,MASK")
    prompt = ui_to_api(ui.build(), object_info)
    assert prompt["2"]["inputs"] == {"resize_type": "scale by multiplier", "resize_type.multiplier": 1.5,
                                     "scale_method": "lanczos", "input": ["1", 0]}
    assert prompt["3"]["inputs"] == {"resize_type": "scale dimensions", "resize_type.width": 640, "resize_type.height": 480,
                                     "resize_type.crop": "center", "scale_method": "bicubic", "input": ["1", 0]}


def test_autogrow_inputs_keep_their_saved_names(object_info):
    ui = UI()
    ui.node(1, "LoadImage", ["a.png", "image"], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")])
    ui.node(2, "LoadImage", ["b.png", "image"], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")])
    ui.node(3, "BatchImagesNode", [], outputs=[("IMAGE", "IMAGE")])
    ui.link(1, 0, 3, "images.image0", "IMAGE")
    ui.link(2, 0, 3, "images.image1", "IMAGE")
    ui._find(3)["inputs"].append({"name": "images.image2", "type": "IMAGE", "link": None})
    prompt = ui_to_api(ui.build(), object_info)
    assert prompt["3"]["inputs"] == {"images.image0": ["1", 0], "images.image1": ["2", 0]}


def test_custom_combo_grows_option_widgets(object_info):
    ui = UI()
    ui.node(1, "CustomCombo", ["9:16", 1, "16:9", "9:16", ""], outputs=[("STRING", "STRING")])
    prompt = ui_to_api(ui.build(), object_info)
    assert prompt["1"]["inputs"] == {"choice": "9:16", "index": 1, "option1": "16:9", "option2": "9:16", "option3": ""}


def test_image_compare_sends_its_unsaved_widget(object_info_033):
    ui = UI()
    ui.node(1, "LoadImage", ["a.png", "image"], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")])
    ui.node(2, "ImageCompare", [])
    ui.link(1, 0, 2, "image_a", "IMAGE")
    prompt = ui_to_api(ui.build(), object_info_033)
    assert prompt["2"]["inputs"] == {"compare_view": {"__value__": ["", ""]}, "image_a": ["1", 0]}


def test_dynamic_prompts_strip_comments_and_pick_choices(object_info):
    assert process_dynamic_prompt("a cat // a comment\n/* block */on a mat") == "a cat \non a mat"
    # like the frontend, '//' also cuts URLs
    assert process_dynamic_prompt("see https://example.com") == "see https:"
    assert process_dynamic_prompt(r"literal \{braces\}") == "literal {braces}"
    picks = {process_dynamic_prompt("{red|green|blue} fox", random.Random(seed)) for seed in range(40)}
    assert picks == {"red fox", "green fox", "blue fox"}
    assert process_dynamic_prompt("{a|{b|c}}", random.Random(1)) in {"a", "b", "c"}
    ui = txt2img()
    ui._find(6)["widgets_values"] = ["a {cat|dog} // draft"]
    first = ui_to_api(ui.build(), object_info, seed=3)["6"]["inputs"]["text"]
    assert first in {"a cat ", "a dog "}
    assert ui_to_api(ui.build(), object_info, seed=3)["6"]["inputs"]["text"] == first
    # plain STRING widgets without dynamicPrompts are sent verbatim
    ui.node(60, "StringConcatenate", ["{x|y} // keep", "b", "-"], outputs=[("STRING", "STRING")])
    assert ui_to_api(ui.build(), object_info)["60"]["inputs"]["string_a"] == "{x|y} // keep"


def subgraph_workflow(promoted_text="inner default", instance_values=None) -> dict:
    """Root: checkpoint -> [subgraph: CLIPTextEncode x2 + KSampler] -> VAEDecode -> SaveImage."""
    sub_id = "0c7a3d8e-0000-4000-8000-000000000001"
    ui = UI()
    ui.node(4, "CheckpointLoaderSimple", ["m.safetensors"], outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")])
    ui.node(5, "EmptyLatentImage", [512, 512, 1], outputs=[("LATENT", "LATENT")])
    instance = ui.node(10, sub_id, instance_values, outputs=[("LATENT", "LATENT")])
    instance["inputs"] = []
    ui.link(4, 0, 10, "model", "MODEL")
    ui.link(4, 1, 10, "clip", "CLIP")
    ui.link(5, 0, 10, "latent", "LATENT")
    # the editor saves unlinked promoted widget inputs only when labelled; "text" is left out here
    ui.node(8, "VAEDecode", [], outputs=[("IMAGE", "IMAGE")])
    ui.link(10, 0, 8, "samples", "LATENT")
    ui.link(4, 2, 8, "vae", "VAE")
    ui.node(9, "SaveImage", ["sg"])
    ui.link(8, 0, 9, "images", "IMAGE")
    inner_links = [
        {"id": 101, "origin_id": -10, "origin_slot": 0, "target_id": 3, "target_slot": 0, "type": "MODEL"},
        {"id": 102, "origin_id": -10, "origin_slot": 1, "target_id": 6, "target_slot": 0, "type": "CLIP"},
        {"id": 103, "origin_id": -10, "origin_slot": 1, "target_id": 9, "target_slot": 0, "type": "CLIP"},
        {"id": 104, "origin_id": -10, "origin_slot": 2, "target_id": 3, "target_slot": 3, "type": "LATENT"},
        {"id": 105, "origin_id": -10, "origin_slot": 3, "target_id": 6, "target_slot": 1, "type": "STRING"},
        {"id": 106, "origin_id": 6, "origin_slot": 0, "target_id": 3, "target_slot": 1, "type": "CONDITIONING"},
        {"id": 107, "origin_id": 9, "origin_slot": 0, "target_id": 3, "target_slot": 2, "type": "CONDITIONING"},
        {"id": 108, "origin_id": 3, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "LATENT"},
    ]
    definition = {
        "id": sub_id, "name": "Sample", "version": 1, "revision": 0, "config": {}, "extra": {}, "groups": [],
        "state": {"lastGroupId": 0, "lastNodeId": 11, "lastLinkId": 108, "lastRerouteId": 0},
        "inputNode": {"id": -10, "bounding": [0, 0, 120, 140]}, "outputNode": {"id": -20, "bounding": [900, 0, 120, 60]},
        "inputs": [
            {"id": "i0", "name": "model", "type": "MODEL", "linkIds": [101]},
            {"id": "i1", "name": "clip", "type": "CLIP", "linkIds": [102, 103]},
            {"id": "i2", "name": "latent", "type": "LATENT", "linkIds": [104]},
            {"id": "i3", "name": "text", "type": "STRING", "linkIds": [105]},
        ],
        "outputs": [{"id": "o0", "name": "LATENT", "type": "LATENT", "linkIds": [108]}],
        "nodes": [
            {"id": 6, "type": "CLIPTextEncode", "mode": 0, "title": "Inner positive", "widgets_values": [promoted_text],
             "inputs": [{"name": "clip", "type": "CLIP", "link": 102},
                        {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 105}],
             "outputs": [{"name": "CONDITIONING", "type": "CONDITIONING", "links": [106]}]},
            # node 9 clashes with the root's SaveImage 9: the frontend renumbers it on load
            {"id": 9, "type": "CLIPTextEncode", "mode": 0, "widgets_values": ["ugly"],
             "inputs": [{"name": "clip", "type": "CLIP", "link": 103}],
             "outputs": [{"name": "CONDITIONING", "type": "CONDITIONING", "links": [107]}]},
            {"id": 3, "type": "KSampler", "mode": 0, "widgets_values": [7, "fixed", 8, 2.0, "euler", "normal", 1.0],
             "inputs": [{"name": "model", "type": "MODEL", "link": 101},
                        {"name": "positive", "type": "CONDITIONING", "link": 106},
                        {"name": "negative", "type": "CONDITIONING", "link": 107},
                        {"name": "latent_image", "type": "LATENT", "link": 104}],
             "outputs": [{"name": "LATENT", "type": "LATENT", "links": [108]}]},
        ],
        "links": inner_links,
    }
    return ui.build(definitions={"subgraphs": [definition]})


def test_subgraph_is_flattened_with_outer_inner_ids(object_info):
    prompt = ui_to_api(subgraph_workflow(), object_info)
    assert "10" not in prompt  # the instance itself is virtual
    assert prompt["10:3"]["inputs"]["model"] == ["4", 0]
    assert prompt["10:3"]["inputs"]["latent_image"] == ["5", 0]
    assert prompt["10:3"]["inputs"]["positive"] == ["10:6", 0]
    assert prompt["10:6"]["inputs"] == {"text": "inner default", "clip": ["4", 1]}
    assert prompt["10:6"]["_meta"] == {"title": "Inner positive"}
    # the clashing inner id 9 became last_node_id + 1 = 11
    assert prompt["10:3"]["inputs"]["negative"] == ["10:11", 0]
    assert prompt["10:11"]["inputs"] == {"text": "ugly", "clip": ["4", 1]}
    assert prompt["8"]["inputs"]["samples"] == ["10:3", 0]
    assert prompt["9"]["class_type"] == "SaveImage"


def test_subgraph_instance_widgets_values_override_the_promoted_widget(object_info):
    prompt = ui_to_api(subgraph_workflow(instance_values=["from the instance"]), object_info)
    assert prompt["10:6"]["inputs"]["text"] == "from the instance"


def test_frontend_1_35_keeps_subgraph_ids_and_ignores_instance_values(object_info):
    """The 1.35 frontend of ComfyUI 0.8.0 (checked over its template library): no renumbering of a
    subgraph node id another graph uses, and an instance's widgets_values do not reach the inner
    widgets."""
    prompt = ui_to_api(subgraph_workflow(instance_values=["from the instance"]), object_info, frontend="1.35.9")
    assert prompt["10:3"]["inputs"]["negative"] == ["10:9", 0] and "10:11" not in prompt
    assert prompt["10:9"]["inputs"] == {"text": "ugly", "clip": ["4", 1]}
    assert prompt["10:6"]["inputs"]["text"] == "inner default"
    assert prompt["9"]["class_type"] == "SaveImage"          # the root's node 9 keeps its id too


def test_frontend_1_35_sends_the_audio_player_and_numbers_custom_combo_options_from_0(object_info):
    ui = UI()
    ui.node(1, "LoadAudio", ["a.flac", None, None], outputs=[("AUDIO", "AUDIO")])
    ui.node(2, "CustomCombo", ["b", "a", "b", ""], outputs=[("STRING", "STRING")])
    legacy = ui_to_api(ui.build(), object_info, frontend="1.35.9")
    assert legacy["1"]["inputs"] == {"audio": "a.flac", "audioUI": ""}
    assert legacy["2"]["inputs"] == {"choice": "b", "option0": "a", "option1": "b", "option2": ""}
    current = ui_to_api(ui.build(), object_info, frontend="1.49.6")
    assert current["1"]["inputs"] == {"audio": "a.flac"}


@pytest.mark.parametrize("version,rules", [("1.35.9", "1.35"), ("1.35", "1.35"), ("1.36.0", "1.49"),
                                           ("1.49.6", "1.49"), (None, "1.49"), ("nightly", "1.49")])
def test_frontend_rules_by_version(version, rules):
    from api_client.node_info import frontend_rules
    assert frontend_rules(version).name == rules


def test_subgraph_input_linked_from_outside_wins(object_info):
    workflow = subgraph_workflow(instance_values=["unused"])
    workflow["nodes"].append({"id": 12, "type": "StringConcatenate", "mode": 0, "widgets_values": ["a", "b", " "],
                              "inputs": [], "outputs": [{"name": "STRING", "type": "STRING", "links": [90]}]})
    instance = next(n for n in workflow["nodes"] if n["id"] == 10)
    instance["inputs"].append({"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 90})
    workflow["links"].append([90, 12, 0, 10, 3, "STRING"])
    prompt = ui_to_api(workflow, object_info)
    assert prompt["10:6"]["inputs"]["text"] == ["12", 0]


def test_nested_subgraphs_and_muted_instances(object_info):
    outer_id = "0c7a3d8e-0000-4000-8000-0000000000aa"
    workflow = subgraph_workflow()
    inner_id = workflow["definitions"]["subgraphs"][0]["id"]
    outer = {
        "id": outer_id, "name": "Wrapper", "version": 1, "revision": 0, "config": {}, "extra": {}, "groups": [],
        "state": {"lastGroupId": 0, "lastNodeId": 30, "lastLinkId": 204, "lastRerouteId": 0},
        "inputNode": {"id": -10, "bounding": [0, 0, 120, 140]}, "outputNode": {"id": -20, "bounding": [900, 0, 120, 60]},
        "inputs": [{"id": "a", "name": "model", "type": "MODEL", "linkIds": [201]},
                   {"id": "b", "name": "clip", "type": "CLIP", "linkIds": [202]},
                   {"id": "c", "name": "latent", "type": "LATENT", "linkIds": [203]}],
        "outputs": [{"id": "d", "name": "LATENT", "type": "LATENT", "linkIds": [204]}],
        "nodes": [{"id": 30, "type": inner_id, "mode": 0, "inputs": [
            {"name": "model", "type": "MODEL", "link": 201}, {"name": "clip", "type": "CLIP", "link": 202},
            {"name": "latent", "type": "LATENT", "link": 203}], "outputs": [{"name": "LATENT", "type": "LATENT", "links": [204]}]}],
        "links": [{"id": 201, "origin_id": -10, "origin_slot": 0, "target_id": 30, "target_slot": 0, "type": "MODEL"},
                  {"id": 202, "origin_id": -10, "origin_slot": 1, "target_id": 30, "target_slot": 1, "type": "CLIP"},
                  {"id": 203, "origin_id": -10, "origin_slot": 2, "target_id": 30, "target_slot": 2, "type": "LATENT"},
                  {"id": 204, "origin_id": 30, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "LATENT"}],
    }
    workflow["definitions"]["subgraphs"].append(outer)
    instance = next(n for n in workflow["nodes"] if n["id"] == 10)
    instance["type"] = outer_id
    prompt = ui_to_api(workflow, object_info)
    assert prompt["10:30:3"]["inputs"]["model"] == ["4", 0]
    assert prompt["10:30:3"]["inputs"]["positive"] == ["10:30:6", 0]
    assert prompt["8"]["inputs"]["samples"] == ["10:30:3", 0]
    muted = copy.deepcopy(workflow)
    next(n for n in muted["nodes"] if n["id"] == 10)["mode"] = 2
    prompt = ui_to_api(muted, object_info)
    assert not [k for k in prompt if k.startswith("10:")]
    assert "samples" not in prompt["8"]["inputs"]


def test_unknown_node_types_are_reported_unless_muted(object_info):
    ui = txt2img()
    ui.node(70, "SomeCustomNode", [1, 2], outputs=[("IMAGE", "IMAGE")])
    ui.node(71, "OtherMissingNode", [])
    with pytest.raises(ConversionError) as info:
        ui_to_api(ui.build(), object_info)
    message = str(info.value)
    assert "SomeCustomNode" in message and "OtherMissingNode" in message and "70" in message
    ui._find(70)["mode"] = 2
    ui._find(71)["mode"] = 4
    assert ui_to_api(ui.build(), object_info) == TXT2IMG_EXPECTED


def test_bad_files_get_specific_errors(object_info):
    with pytest.raises(WorkflowFormatError, match="already an API-format prompt"):
        ui_to_api(TXT2IMG_EXPECTED, object_info)
    with pytest.raises(WorkflowFormatError, match="not a UI workflow"):
        ui_to_api({"hello": 1}, object_info)
    broken = txt2img().build()
    broken["links"][0] = [1, 4]
    with pytest.raises(WorkflowFormatError, match=r"links\[0\]"):
        ui_to_api(broken, object_info)
    bad_values = txt2img().build()
    bad_values["nodes"][0]["widgets_values"] = "flux.safetensors"
    with pytest.raises(WorkflowFormatError, match="widgets_values"):
        ui_to_api(bad_values, object_info)


def test_format_detection():
    ui = txt2img().build()
    assert is_ui_workflow(ui) and not is_api_prompt(ui)
    assert is_api_prompt(TXT2IMG_EXPECTED) and not is_ui_workflow(TXT2IMG_EXPECTED)
    assert not is_api_prompt({}) and not is_ui_workflow([])


def test_type_matching_follows_litegraph():
    assert is_valid_connection("IMAGE", "image")
    assert is_valid_connection("*", "LATENT") and is_valid_connection("", "LATENT")
    assert is_valid_connection("IMAGE,MASK", "MASK")
    assert not is_valid_connection("IMAGE", "LATENT")


# Where the two versions' /object_info differ for the same class (each checked against that version's
# own frontend in the integration test): 0.33 names PrimitiveInt's control widget after its option
# and lists "scale dimensions" first in ResizeImageMaskNode.
VERSIONED_LAYOUT = {"0.33.0": ("fixed", "scale dimensions"), "0.8.0": ("control_after_generate", "scale by multiplier")}


def test_widget_layouts_from_object_info(object_info, snapshot_version):
    control_widget, resize_default = VERSIONED_LAYOUT[snapshot_version]
    specs = parse_object_info(object_info)
    layout = [(w.name, w.in_values, w.in_prompt) for w in specs["KSampler"].widget_layout()]
    assert layout[:2] == [("seed", True, True), ("control_after_generate", True, False)]
    assert [w.name for w in specs["LoadAudio"].widget_layout()] == ["audio", "audioUI", "upload"]
    assert [w.name for w in specs["PrimitiveInt"].widget_layout()] == ["value", control_widget]
    assert specs["CheckpointLoaderSimple"].widget_layout()[0].default is UNDEFINED
    assert specs["ResizeImageMaskNode"].widget_layout()[0].default == resize_default
    assert specs["ResizeImageMaskNode"].widget_layout()[-1].default == "area"  # V3 combo default
    # hidden inputs (SaveImage's prompt / extra_pnginfo) never become widgets
    assert [w.name for w in specs["SaveImage"].widget_layout()] == ["filename_prefix"]


def test_subgraph_defined_only_inside_another_definition(object_info):
    workflow = subgraph_workflow()
    inner = workflow["definitions"]["subgraphs"][0]
    outer_id = "0c7a3d8e-0000-4000-8000-0000000000bb"
    outer = {
        "id": outer_id, "name": "Wrapper", "version": 1, "revision": 0, "config": {}, "extra": {}, "groups": [],
        "state": {"lastGroupId": 0, "lastNodeId": 30, "lastLinkId": 204, "lastRerouteId": 0},
        "inputNode": {"id": -10, "bounding": [0, 0, 120, 140]}, "outputNode": {"id": -20, "bounding": [900, 0, 120, 60]},
        "inputs": [{"id": "a", "name": "model", "type": "MODEL", "linkIds": [201]},
                   {"id": "b", "name": "clip", "type": "CLIP", "linkIds": [202]},
                   {"id": "c", "name": "latent", "type": "LATENT", "linkIds": [203]}],
        "outputs": [{"id": "d", "name": "LATENT", "type": "LATENT", "linkIds": [204]}],
        "nodes": [{"id": 30, "type": inner["id"], "mode": 0,
                   "inputs": [{"name": "model", "type": "MODEL", "link": 201}, {"name": "clip", "type": "CLIP", "link": 202},
                              {"name": "latent", "type": "LATENT", "link": 203}],
                   "outputs": [{"name": "LATENT", "type": "LATENT", "links": [204]}]}],
        "links": [{"id": 201, "origin_id": -10, "origin_slot": 0, "target_id": 30, "target_slot": 0, "type": "MODEL"},
                  {"id": 202, "origin_id": -10, "origin_slot": 1, "target_id": 30, "target_slot": 1, "type": "CLIP"},
                  {"id": 203, "origin_id": -10, "origin_slot": 2, "target_id": 30, "target_slot": 2, "type": "LATENT"},
                  {"id": 204, "origin_id": 30, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "LATENT"}],
        "definitions": {"subgraphs": [inner]},
    }
    workflow["definitions"]["subgraphs"] = [outer]
    next(n for n in workflow["nodes"] if n["id"] == 10)["type"] = outer_id
    prompt = ui_to_api(workflow, object_info)
    # only top-level definitions are renumbered on load, so the nested one keeps its clashing id 9
    assert prompt["10:30:3"]["inputs"]["negative"] == ["10:30:9", 0]
    assert prompt["10:30:3"]["inputs"]["model"] == ["4", 0]
    assert prompt["8"]["inputs"]["samples"] == ["10:30:3", 0]


def test_api_client_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, api_client, api_client.cli, api_client.local_server; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.strip() == "False", done.stderr
