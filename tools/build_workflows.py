"""Write the shipped workflows (UI format + API-format twin) from one description.

The four comparison workflows share most of their graph, and the two model-family examples (FLUX.1
Kontext and Chroma with PuLID) reuse its PuLID part, so they are described once here and written out
with the server's /object_info (for widget order), which keeps the UI files loadable in the canvas.
The API twins are the UI files converted by the client's own converter (``api_client.ui_to_api``, the
frontend's rules), so they equal what the frontend would queue. Run after changing a node's inputs:

    python tools/build_workflows.py --server http://127.0.0.1:8188
    python tools/build_workflows.py --comfyui "$COMFYUI_PATH"     # starts a throw-away server
"""

import argparse
import json
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    # Run as a script: this checkout's api_client, not an installed copy. (Imported by the tests,
    # the path is left alone: the repository root ahead of ComfyUI's would shadow its `nodes`.)
    sys.path.insert(0, str(ROOT))
from api_client import ui_to_api  # noqa: E402

OUT = ROOT / "workflows"
LINK_TYPES_ARE_UPPER = True

WIDTH, HEIGHT = 896, 1216
PROMPT = "photo of ohwx man, full body, standing in a park, left arm raised high, natural light"


@dataclass
class Node:
    id: int
    cls: str
    title: str | None = None
    widgets: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)      # input name -> (node id, output slot)
    pos: tuple = (0, 0)          # (column key, order within the column); see layout()


def base_graph() -> dict[int, Node]:
    g = [
        Node(1, "UNETLoader", "Flux model", {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"},
             pos=(0, 0)),
        Node(2, "DualCLIPLoader", "Text encoders", {"clip_name1": "t5xxl_fp16.safetensors",
                                                    "clip_name2": "clip_l.safetensors", "type": "flux",
                                                    "device": "default"}, pos=(0, 160)),
        Node(3, "VAELoader", "VAE", {"vae_name": "ae.safetensors"}, pos=(0, 330)),
        Node(4, "CLIPTextEncode", "Positive prompt", {"text": PROMPT}, {"clip": (2, 0)}, pos=(420, 160)),
        Node(5, "FluxGuidance", "Guidance", {"guidance": 3.5}, {"conditioning": (4, 0)}, pos=(840, 160)),
        Node(6, "EmptySD3LatentImage", "Latent", {"width": WIDTH, "height": HEIGHT, "batch_size": 1},
             pos=(840, 420)),
        Node(7, "RandomNoise", "Seed", {"noise_seed": 42}, pos=(1260, 0)),
        Node(8, "KSamplerSelect", "Sampler", {"sampler_name": "euler"}, pos=(1260, 140)),
        Node(9, "BasicScheduler", "Scheduler", {"scheduler": "simple", "steps": 25, "denoise": 1.0},
             {"model": (1, 0)}, pos=(1260, 260)),
        Node(10, "BasicGuider", "Guider", {}, {"model": (1, 0), "conditioning": (5, 0)}, pos=(1260, 440)),
        Node(11, "SamplerCustomAdvanced", "Sample", {}, {"noise": (7, 0), "guider": (10, 0), "sampler": (8, 0),
                                                         "sigmas": (9, 0), "latent_image": (6, 0)},
             pos=(1680, 0)),
        Node(12, "VAEDecode", "Decode", {}, {"samples": (11, 0), "vae": (3, 0)}, pos=(2100, 0)),
        Node(13, "SaveImage", "Save", {"filename_prefix": "pulid_studio/01_base"}, {"images": (12, 0)},
             pos=(2400, 0)),
    ]
    return {n.id: n for n in g}


def with_lora(g: dict[int, Node], prefix: str) -> dict[int, Node]:
    g[20] = Node(20, "LoraLoaderModelOnly", "LoRA", {"lora_name": "identity_lora.safetensors", "strength_model": 1.0},
                 {"model": (1, 0)}, pos=(420, 0))
    g[9].links["model"] = (20, 0)
    g[10].links["model"] = (20, 0)
    g[13].widgets["filename_prefix"] = prefix
    return g


def pulid_nodes(model: tuple[int, int], weight: float = 0.4, start_at: float = 0.15, end_at: float = 0.9,
                uncond: str = "same") -> dict[int, Node]:
    """Reference photo -> identity -> Apply PuLID-Flux on ``model`` (node 36 is the patched model)."""
    nodes = [
        Node(30, "LoadImage", "Reference image", {"image": "reference.png", "upload": "image"}, pos=(0, 520)),
        Node(31, "PulidStudioLoadPulidFlux", "PuLID model", {"pulid_file": "pulid_flux_v0.9.1.safetensors",
                                                            "dtype": "auto"}, pos=(0, 860)),
        Node(32, "PulidStudioLoadEvaClip", "EVA-CLIP", {"eva_file": "EVA02_CLIP_L_336_psz14_s6B.pt",
                                                      "dtype": "auto"}, pos=(0, 1000)),
        Node(33, "PulidStudioLoadFaceEngine", "Face engine", {"engine": "insightface", "pack": "antelopev2",
                                                             "provider": "auto"}, pos=(0, 1140)),
        Node(34, "PulidStudioLoadFaceParser", "Face parser", {"parser_file": "parsing_bisenet.pth"}, pos=(0, 1300)),
        Node(35, "PulidStudioEncodeIdentity", "Encode identity", {"face_choice": "largest", "face_index": 0,
                                                                  "fusion": "mean"},
             {"images": (30, 0), "face_engine": (33, 0), "eva_clip": (32, 0), "face_parser": (34, 0),
              "pulid_flux": (31, 0)}, pos=(420, 860)),
        Node(36, "PulidStudioApplyPulidFlux", "PuLID", {"weight": weight, "start_at": start_at, "end_at": end_at,
                                                       "uncond": uncond},
             {"model": model, "pulid_flux": (31, 0), "identity": (35, 0)}, pos=(840, 860)),
    ]
    return {n.id: n for n in nodes}


def with_pulid(g: dict[int, Node], prefix: str) -> dict[int, Node]:
    g.update(pulid_nodes((20, 0)))
    g[9].links["model"] = (36, 0)
    g[10].links["model"] = (36, 0)
    g[13].widgets["filename_prefix"] = prefix
    return g


def with_pose(g: dict[int, Node], prefix: str) -> dict[int, Node]:
    g[40] = Node(40, "ControlNetLoader", "Union ControlNet", {"control_net_name": "flux_union_pro.safetensors"},
                 pos=(840, 1100))
    g[41] = Node(41, "PulidStudioPoseFromBank", "Pose", {"name": "full_body_arm_up", "width": WIDTH,
                                                       "height": HEIGHT}, pos=(840, 1240))
    g[42] = Node(42, "ConditioningZeroOut", "Negative", {}, {"conditioning": (4, 0)}, pos=(840, 300))
    g[43] = Node(43, "PulidStudioApplyPoseControlNet", "Pose ControlNet",
                 {"strength": 0.85, "start_percent": 0.0, "end_percent": 0.8, "family": "auto"},
                 {"positive": (5, 0), "negative": (42, 0), "control_net": (40, 0), "vae": (3, 0),
                  "keypoints": (41, 0), "latent": (6, 0)}, pos=(1260, 1100))
    # BasicGuider takes only the positive conditioning; the ControlNet rides on it.
    g[10].links["conditioning"] = (43, 0)
    g[13].widgets["filename_prefix"] = prefix
    return g


KONTEXT_PROMPT = "the same man wearing a red winter jacket, standing in a snowy street, photo"


def kontext_graph() -> dict[int, Node]:
    """FLUX.1 Kontext edits an input image (its tokens ride along as reference tokens) while PuLID
    keeps the face of the reference photo on the generated tokens only."""
    g = base_graph()
    g[1].title = "Kontext model"
    g[1].widgets["unet_name"] = "flux1-kontext-dev.safetensors"
    g[4].widgets["text"] = KONTEXT_PROMPT
    g[5].widgets["guidance"] = 2.5
    g[50] = Node(50, "LoadImage", "Image to edit", {"image": "kontext_input.png", "upload": "image"}, pos=(0, 420))
    g[51] = Node(51, "FluxKontextImageScale", "Kontext scale", {}, {"image": (50, 0)}, pos=(420, 420))
    g[52] = Node(52, "VAEEncode", "Encode image to edit", {}, {"pixels": (51, 0), "vae": (3, 0)}, pos=(420, 600))
    g[53] = Node(53, "ReferenceLatent", "Reference latent", {}, {"conditioning": (4, 0), "latent": (52, 0)},
                 pos=(840, 0))
    g[5].links["conditioning"] = (53, 0)
    g[6].widgets.update({"width": 1024, "height": 1024})
    g.update(pulid_nodes((1, 0), weight=0.8, start_at=0.1, end_at=1.0, uncond="same"))
    g[9].links["model"] = (36, 0)
    g[10].links["model"] = (36, 0)
    g[13].widgets["filename_prefix"] = "pulid_studio/05_kontext_pulid"
    return g


CHROMA_NEGATIVE = "low quality, blurry, deformed face, extra fingers, watermark, text"


def chroma_graph() -> dict[int, Node]:
    """Chroma (no guidance embedding: real CFG with a negative prompt) with PuLID; the negative pass
    gets the official "no identity" tokens (true CFG)."""
    g = base_graph()
    g[1].title = "Chroma model"
    g[1].widgets["unet_name"] = "Chroma1-HD.safetensors"
    g[2] = Node(2, "CLIPLoader", "Text encoder", {"clip_name": "t5xxl_fp16.safetensors", "type": "chroma",
                                                 "device": "default"}, pos=(0, 160))
    g[4].widgets["text"] = "portrait photo of a man standing in a park, natural light, detailed skin"
    del g[5]                                    # no FluxGuidance: Chroma has no guidance embedding
    g[14] = Node(14, "CLIPTextEncode", "Negative prompt", {"text": CHROMA_NEGATIVE}, {"clip": (2, 0)},
                 pos=(420, 300))
    g[6].widgets.update({"width": 1024, "height": 1024})
    g[9].widgets["steps"] = 26
    g[10] = Node(10, "CFGGuider", "Guider", {"cfg": 4.0}, {"model": (36, 0), "positive": (4, 0),
                                                           "negative": (14, 0)}, pos=(1260, 440))
    g.update(pulid_nodes((1, 0), weight=0.9, start_at=0.1, end_at=1.0, uncond="uncond_tokens"))
    g[9].links["model"] = (36, 0)
    g[13].widgets["filename_prefix"] = "pulid_studio/06_chroma_pulid"
    return g


SYNTHESIS_PROMPT = ("photo of a man, portrait, facing the camera, neutral expression, soft diffused daylight, "
                    "plain light grey background, sharp focus")


def synthesis_graph(prefix: str) -> dict[int, Node]:
    """PuLID for the identity and the pose ControlNet for the view, no LoRA (the set trains one): the
    workflow ``pulid-studio dataset synthesize`` / ``canonicalize`` drive through a view plan."""
    g = with_pose(with_pulid(base_graph(), ""), prefix)
    g[36].links["model"] = (1, 0)
    # Without a LoRA, PuLID carries the identity alone: full weight over the whole schedule.
    g[36].widgets.update({"weight": 1.0, "start_at": 0.0, "end_at": 1.0})
    g[41] = Node(41, "PulidStudioHeadPoseView", "Head pose", {"framing": "portrait", "yaw": 0.0, "pitch": 0.0,
                                                            "roll": 0.0, "width": WIDTH, "height": HEIGHT,
                                                            "body_turn": 0.5}, pos=(840, 1240))
    # -1: the ControlNet family's own pose defaults (Union-Pro 2.0: 0.9 / 0.65, v1: 0.85 / 0.8).
    g[43].widgets.update({"strength": -1.0, "end_percent": -1.0})
    g[4].widgets["text"] = SYNTHESIS_PROMPT
    return g


WORKFLOWS = {
    "01_base": lambda: base_graph(),
    "02_lora": lambda: with_lora(base_graph(), "pulid_studio/02_lora"),
    "03_lora_pulid": lambda: with_pulid(with_lora(base_graph(), ""), "pulid_studio/03_lora_pulid"),
    "04_full": lambda: with_pose(with_pulid(with_lora(base_graph(), ""), ""), "pulid_studio/04_full"),
    "05_kontext_pulid": kontext_graph,
    "06_chroma_pulid": chroma_graph,
    "07_synthesis": lambda: synthesis_graph("pulid_studio/07_synthesis"),
}


# -- writing -----------------------------------------------------------------------------------

def _is_widget(spec) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def _inputs(info: dict):
    """(name, spec) in the order the frontend creates widgets and sockets."""
    order = info.get("input_order", {})
    for section in ("required", "optional"):
        specs = info["input"].get(section, {})
        for name in order.get(section, list(specs)):
            yield name, specs[name]


def check_widgets(g: dict[int, Node], object_info: dict) -> None:
    for n in g.values():
        unknown = set(n.widgets) - {name for name, _ in _inputs(object_info[n.cls])} - {"upload"}
        if unknown:
            raise KeyError(f"node {n.id} ({n.cls}) has no inputs {sorted(unknown)}")


def to_api(ui: dict, object_info: dict) -> dict:
    """The UI workflow as the frontend would queue it, nodes by id and inputs in the node's own order
    (so a regenerated file differs only where the graph does)."""
    prompt = ui_to_api(ui, object_info)
    ordered = {}
    for node_id in sorted(prompt, key=int):
        node = prompt[node_id]
        order = [name for name, _ in _inputs(object_info[node["class_type"]])]
        inputs = dict(sorted(node["inputs"].items(), key=lambda item: order.index(item[0])))
        ordered[node_id] = {"class_type": node["class_type"], "inputs": inputs, "_meta": node["_meta"]}
    return ordered


COLUMN_WIDTH, NODE_WIDTH, GAP = 460, 400, 50
# Nodes that show an image under their widgets once they have run (or a file is picked); Encode
# identity adds its face-region toolbar and crop previews.
PREVIEW_HEIGHT = {"LoadImage": 330, "PulidStudioEncodeIdentity": 440, "PulidStudioPoseFromBank": 300,
                  "PulidStudioHeadPoseView": 300, "PulidStudioApplyPoseControlNet": 300}


def _node_height(n: Node, info: dict) -> int:
    """Canvas height of a node: title bar, socket rows, one row per widget, any preview."""
    widgets = sockets_in = 0
    for name, spec in _inputs(info):
        if _is_widget(spec) and name not in n.links:
            widgets += 1 + bool((spec[1] if len(spec) > 1 else {}).get("control_after_generate"))
        else:
            sockets_in += 1
    rows = max(sockets_in, len(info["output"]))
    return 30 + 22 * rows + 26 * widgets + 16 + PREVIEW_HEIGHT.get(n.cls, 0)


def layout(g: dict[int, Node], object_info: dict) -> dict[int, tuple[list[int], list[int]]]:
    """Column x from each node's ``pos[0]`` rank, rows stacked without overlap in ``pos[1]`` order."""
    xs = sorted({n.pos[0] for n in g.values()})
    placed, bottom = {}, {}
    for n in sorted(g.values(), key=lambda n: (n.pos[0], n.pos[1], n.id)):
        col = xs.index(n.pos[0])
        height = _node_height(n, object_info[n.cls])
        y = bottom.get(col, 0)
        placed[n.id] = ([col * COLUMN_WIDTH, y], [NODE_WIDTH, height - 30])   # litegraph size excludes the title
        bottom[col] = y + height + GAP
    return placed


def to_ui(g: dict[int, Node], object_info: dict) -> dict:
    positions = layout(g, object_info)
    links, nodes = [], []
    link_id = 0
    out_links: dict[tuple[int, int], list[int]] = {}
    in_link: dict[tuple[int, str], int] = {}
    for n in g.values():
        for name, (src, slot) in n.links.items():
            link_id += 1
            src_type = object_info[g[src].cls]["output"][slot]
            links.append([link_id, src, slot, n.id, None, src_type])
            out_links.setdefault((src, slot), []).append(link_id)
            in_link[(n.id, name)] = link_id
    by_id = {lk[0]: lk for lk in links}
    for order, n in enumerate(g.values()):
        info = object_info[n.cls]
        inputs, widgets = [], []
        for name, spec in _inputs(info):
            widget = _is_widget(spec)
            options = spec[1] if len(spec) > 1 else {}
            if widget:
                value = n.widgets.get(name, options.get("default"))
                widgets.append(value)
                if options.get("control_after_generate"):
                    widgets.append("fixed")
                if options.get("image_upload") or (isinstance(spec[0], str) and options.get("upload")):
                    widgets.append(n.widgets.get("upload", "image"))
            if (n.id, name) in in_link or not widget:
                slot_type = spec[0] if isinstance(spec[0], str) else "COMBO"
                entry = {"name": name, "type": slot_type, "link": in_link.get((n.id, name))}
                if widget:
                    entry["widget"] = {"name": name}
                if entry["link"] is not None:
                    by_id[entry["link"]][4] = len(inputs)
                inputs.append(entry)
        outputs = [{"name": (info.get("output_name") or info["output"])[i], "type": t,
                    "links": out_links.get((n.id, i), []), "slot_index": i}
                   for i, t in enumerate(info["output"])]
        pos, size = positions[n.id]
        node = {"id": n.id, "type": n.cls, "pos": pos, "size": size, "flags": {}, "order": order,
                "mode": 0, "inputs": inputs, "outputs": outputs,
                "properties": {"Node name for S&R": n.cls}, "widgets_values": widgets}
        if n.title:
            node["title"] = n.title
        nodes.append(node)
    return {"last_node_id": max(g), "last_link_id": link_id, "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {"ds": {"scale": 0.6, "offset": [0, 0]}}, "version": 0.4}


def write_all(object_info: dict, out_dir: Path = OUT, only=None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    unknown = set(only or ()) - set(WORKFLOWS)
    if unknown:
        raise KeyError(f"no workflow named {sorted(unknown)}; known: {', '.join(WORKFLOWS)}")
    for name, build in WORKFLOWS.items():
        if only and name not in only:
            continue
        g = build()
        check_widgets(g, object_info)
        ui = to_ui(g, object_info)
        for suffix, data in (("", ui), ("_api", to_api(ui, object_info))):
            path = out_dir / f"{name}{suffix}.json"
            path.write_text(json.dumps(data, indent=1) + "\n")
            written.append(path)
    return written


def fetch_object_info(server: str) -> dict:
    with urllib.request.urlopen(server.rstrip("/") + "/object_info", timeout=60) as r:
        return json.loads(r.read())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--server", help="a running ComfyUI with this pack")
    group.add_argument("--comfyui", help="a ComfyUI checkout to start on a free port")
    parser.add_argument("--only", action="append", metavar="NAME", help="write only this workflow (repeatable)")
    a = parser.parse_args(argv)
    if a.server:
        info = fetch_object_info(a.server)
    else:
        sys.path.insert(0, str(ROOT / "tests" / "integration"))
        from comfy_server import ComfyServer
        server = ComfyServer(Path(a.comfyui), Path(tempfile.mkdtemp())).start()
        try:
            info = server.get_json("/object_info")
        finally:
            server.stop()
    for path in write_all(info, only=a.only):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
