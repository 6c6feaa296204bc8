"""Before queueing anything: does the server know every node and have every model file the jobs use?

Each input of each job's graph that the server declares as a combo (a list of choices) is checked
against the server's ``/object_info`` choices. Values that look like model files and are missing
are listed with the ComfyUI models sub-folder they belong in, so a user sees at once what to
download and where to put it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ComfyServerError

MODEL_EXTENSIONS = (".safetensors", ".sft", ".pt", ".pth", ".ckpt", ".bin", ".gguf", ".onnx", ".pkl")

#: (node class, input) -> folder under ComfyUI's ``models`` directory
MODEL_FOLDERS = {
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("UnetLoaderGGUF", "unet_name"): "diffusion_models",
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("VAELoader", "vae_name"): "vae",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("PulidStudioLoadPulidFlux", "pulid_file"): "pulid",
    ("PulidStudioLoadEvaClip", "eva_file"): "text_encoders",
    ("PulidStudioLoadFaceParser", "parser_file"): "facexlib",
    ("PulidStudioLoadFaceEngine", "pack"): "insightface/models/<pack>/",
}
_GUESSES = (("lora", "loras"), ("control", "controlnet"), ("vae", "vae"), ("clip", "text_encoders"),
            ("unet", "diffusion_models"), ("ckpt", "checkpoints"))


@dataclass(frozen=True)
class Problem:
    kind: str            # "missing_node", "missing_file", "bad_value"
    class_type: str
    input: str = ""
    value: Any = None
    folder: str = ""
    title: str = ""
    configs: tuple[str, ...] = ()
    choices: tuple = ()


class PreflightError(ComfyServerError):
    """The server lacks nodes or model files the jobs need; ``problems`` lists them."""

    def __init__(self, server: str, problems: list[Problem]):
        self.server = server
        self.problems = problems
        super().__init__(format_problems(server, problems))


def combo_options(spec: Any) -> list | None:
    """The choices of an ``/object_info`` input spec if it is a combo (V1 or V3 shape), else None."""
    if not isinstance(spec, (list, tuple)) or not spec:
        return None
    kind = spec[0]
    if isinstance(kind, (list, tuple)):
        return list(kind)
    if kind == "COMBO":
        config = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
        options = config.get("options")
        return list(options) if isinstance(options, (list, tuple)) else None
    return None


def _input_spec(info: Mapping[str, Any], name: str) -> Any:
    declared = info.get("input") or {}
    for section in ("required", "optional"):
        specs = declared.get(section) or {}
        if name in specs:
            return specs[name]
    return None


def folder_for(class_type: str, input_name: str) -> str:
    known = MODEL_FOLDERS.get((class_type, input_name))
    if known:
        return known
    lowered = input_name.lower()
    for needle, folder in _GUESSES:
        if needle in lowered:
            return folder
    return f"the folder {class_type} lists for {input_name!r}"


def looks_like_model(class_type: str, input_name: str, value: Any) -> bool:
    return (class_type, input_name) in MODEL_FOLDERS or (isinstance(value, str)
                                                         and value.lower().endswith(MODEL_EXTENSIONS))


def check_graphs(graphs: Iterable[tuple[str, Mapping[str, Any]]], object_info: Mapping[str, Any]) -> list[Problem]:
    """Problems of ``graphs`` ((config name, API prompt) pairs) against a server's ``/object_info``."""
    found: dict[tuple, dict] = {}

    def note(problem: Problem, config: str) -> None:
        key = (problem.kind, problem.class_type, problem.input, repr(problem.value))
        entry = found.setdefault(key, {"problem": problem, "configs": []})
        if config not in entry["configs"]:
            entry["configs"].append(config)

    for config, graph in graphs:
        for node in graph.values():
            class_type = node.get("class_type")
            title = ((node.get("_meta") or {}).get("title")) or ""
            info = object_info.get(class_type)
            if info is None:
                note(Problem("missing_node", class_type, title=title), config)
                continue
            for name, value in (node.get("inputs") or {}).items():
                if isinstance(value, list):
                    continue  # a link
                options = combo_options(_input_spec(info, name))
                if options is None or value in options:
                    continue
                if looks_like_model(class_type, name, value):
                    note(Problem("missing_file", class_type, name, value, folder_for(class_type, name), title), config)
                else:
                    note(Problem("bad_value", class_type, name, value, title=title,
                                 choices=tuple(options[:12])), config)
    return [Problem(**{**entry["problem"].__dict__, "configs": tuple(entry["configs"])}) for entry in found.values()]


def check_face_packs(graphs: Iterable[tuple[str, Mapping[str, Any]]], insightface_files: Iterable[str]) -> list[Problem]:
    """insightface packs the face-engine nodes need but the server's ``insightface`` folder lacks.

    The node's pack choices fall back to "antelopev2" when no pack exists, so the combo check
    cannot see a missing pack; the folder listing (``GET /models/insightface``) can.
    """
    files = [str(f).replace("\\", "/") for f in insightface_files]
    found: dict[str, list[str]] = {}
    for config, graph in graphs:
        for node in graph.values():
            inputs = node.get("inputs") or {}
            if node.get("class_type") != "PulidStudioLoadFaceEngine" or inputs.get("engine", "insightface") != "insightface":
                continue
            pack = str(inputs.get("pack", "antelopev2"))
            if any(f.startswith(f"models/{pack}/") for f in files):
                continue
            configs = found.setdefault(pack, [])
            if config not in configs:
                configs.append(config)
    return [Problem("missing_file", "PulidStudioLoadFaceEngine", "pack", f"{pack}/ (the pack's .onnx files)",
                    "insightface/models", "Face engine", tuple(configs)) for pack, configs in found.items()]


def format_problems(server: str, problems: list[Problem]) -> str:
    lines = [f"{server} cannot run these jobs:"]
    missing = [p for p in problems if p.kind == "missing_file"]
    if missing:
        lines.append("  missing model files (put each in that sub-folder of ComfyUI's models directory, "
                     "or a folder listed in extra_model_paths.yaml):")
        for p in sorted(missing, key=lambda p: (p.folder, str(p.value))):
            lines.append(f"    {p.folder}/{p.value}   <- {p.class_type} {p.title!r}.{p.input} "
                         f"(configs: {', '.join(p.configs)})")
    nodes = [p for p in problems if p.kind == "missing_node"]
    if nodes:
        lines.append("  unknown node classes (is the custom-node pack installed and loading without errors?):")
        for p in nodes:
            lines.append(f"    {p.class_type} ({p.title!r}; configs: {', '.join(p.configs)})")
    bad = [p for p in problems if p.kind == "bad_value"]
    if bad:
        lines.append("  values the server does not offer:")
        for p in bad:
            choices = ", ".join(map(str, p.choices)) or "none"
            lines.append(f"    {p.class_type} {p.title!r}.{p.input} = {p.value!r} (choices: {choices}; "
                         f"configs: {', '.join(p.configs)})")
    return "\n".join(lines)
