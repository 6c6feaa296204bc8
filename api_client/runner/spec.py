"""The ablation spec: a YAML file naming configurations (workflow + overrides), prompts, seeds, sweeps.

Schema (version 1; paths are relative to the spec file)::

    version: 1
    name: pulid_flux_ablation
    workflows_dir: .                 # where the configs' workflow files are
    reference: photos/me.jpg         # optional; --reference overrides it (PuLID input + scoring)
    reference_region: {box: [412, 160, 230, 290]}   # optional: where the face of that photo is
    inputs:                          # where per-job values go: "<node title or id>.<input>"
      prompt: Positive prompt.text   # required in every config
      seed: Seed.noise_seed          # required in every config
      reference: Reference image.image   # set in the configs that have this node
      face_region: Encode identity.face_region   # the reference's face region, where one is given
      pose: Pose.name                # the prompt's pose-bank entry, in configs that have this node
      save: Save.filename_prefix     # the node whose images are the job's output
    seeds: [42]
    full_body: [full_body, full_body_arm_up]   # pose-bank entries that count as full-body
    configs:
      - name: 04_full
        workflow: 04_full_api.json   # API format (the *_api.json twins)
        overrides: {"Scheduler.steps": 25}        # or a list of "Node.input=value" strings
        rule:                        # per-prompt rule (optional)
          only_for: [full_body, full_body_arm_up]  # compositions this config runs as shipped
          otherwise: bypass          # skip | bypass | run
          bypass: {"Pose ControlNet": {0: positive, 1: negative}}  # output slot -> input passed through
        sweeps:
          - name: pulid_strength
            enabled: false           # off unless --sweep pulid_strength
            mode: cartesian          # or zip
            params:
              PuLID.weight: [0.4, 0.8]
              PuLID.start_at: {values: [0.0, 0.15], alias: st}
    prompts:
      - tag: park-wave               # file-name tag (letters, digits, '-', '_')
        text: photo of ohwx man, full body, ...
        composition: full body       # optional shot word or pose-bank name; else read from the text

``reference_region`` says which face of the spec's (first) reference photo is the person, and rescues
one the detector misses: ``{box: [x, y, width, height], mask: <png beside the spec>}`` in the photo's
pixels after EXIF orientation, or the name of a ``.face.json`` file (docs/face_region.md). It goes to
Encode identity's ``face_region`` input and to the scoring reference. Without it (and always with
``--reference``), a ``<photo stem>.face.json`` sidecar beside the photo does the same.

Every problem is reported as ``<file>: <key path>: <what was expected>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ComfyClientError, OverrideError, WorkflowFormatError
from ..overrides import Override, get_input, parse_override, resolve_node

SPEC_VERSION = 1
DEFAULT_INPUTS = {
    "prompt": "Positive prompt.text",
    "seed": "Seed.noise_seed",
    "reference": "Reference image.image",
    "face_region": "Encode identity.face_region",
    "pose": "Pose.name",
    "save": "Save.filename_prefix",
}
REQUIRED_INPUTS = ("prompt", "seed")
DEFAULT_FULL_BODY = ("full_body", "full_body_arm_up")
RULE_ACTIONS = ("skip", "bypass", "run")
SWEEP_MODES = ("cartesian", "zip")
# A tag token must not look like a parameter token (``s42``, ``w0.5``, ``42``) or the gallery
# scorer would end the tag there (see pulid_flux.scoring.naming).
_PARAM_TOKEN = re.compile(r"^(?:[A-Za-z]+[-=]?)?-?\d+(?:\.\d+)?$")
_TAG = re.compile(r"^[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ALIAS = re.compile(r"^[A-Za-z]+$")


class SpecError(ComfyClientError):
    """The spec file is invalid; the message names the file, the key and what was expected."""

    def __init__(self, file: str | Path, key: str, problem: str):
        self.file = str(file)
        self.key = key
        self.problem = problem
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")


@dataclass(frozen=True)
class InputRef:
    """``<node>.<input>``: a node title (or id) and one of its inputs."""

    node: str
    input: str

    def __str__(self) -> str:
        return f"{self.node}.{self.input}"


@dataclass(frozen=True)
class Param:
    key: str          # "PuLID.weight" as written in the spec
    target: InputRef
    alias: str        # file-name token prefix: w0.4
    values: tuple


@dataclass(frozen=True)
class Sweep:
    name: str
    mode: str
    params: tuple[Param, ...]
    enabled: bool = True


@dataclass(frozen=True)
class Rule:
    only_for: tuple[str, ...]
    otherwise: str                                   # skip | bypass | run
    bypass: Mapping[str, Mapping[int, str]] = field(default_factory=dict)


@dataclass
class Config:
    name: str
    workflow: Path
    graph: dict                                      # the API prompt as loaded
    overrides: tuple[Override, ...] = ()
    rule: Rule | None = None
    sweeps: tuple[Sweep, ...] = ()
    index: int = 0


@dataclass(frozen=True)
class Prompt:
    index: int          # 1-based position in the spec: the NN of the file names
    tag: str
    text: str
    composition: str | None = None


@dataclass
class Spec:
    path: Path
    name: str
    configs: list[Config]
    prompts: list[Prompt]
    seeds: list[int]
    inputs: dict[str, InputRef]
    full_body: tuple[str, ...]
    reference: list[Path]
    description: str = ""
    reference_region: Any = None         # pulid_flux.face.region.FaceRegion of reference[0], or None

    def config(self, name: str) -> Config:
        for config in self.configs:
            if config.name == name:
                return config
        raise KeyError(name)

    @property
    def sweep_names(self) -> list[str]:
        return sorted({s.name for c in self.configs for s in c.sweeps})


# ----------------------------------------------------------------------------- loading


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file (YAML or JSON)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(path, "", f"cannot read the spec file ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(path, "", f"not valid YAML ({exc})") from exc
    return parse_spec(data, path)


def parse_spec(data: Any, path: str | Path) -> Spec:
    """Validate an already parsed spec document; ``path`` locates relative files and names errors."""
    path = Path(path)
    check = _Checker(path)
    root = check.mapping(data, "", "a mapping with configs, prompts and seeds")
    check.known_keys(root, "", {"version", "name", "description", "workflows_dir", "reference", "reference_region",
                                "inputs", "seeds", "full_body", "configs", "prompts"})
    version = root.get("version", SPEC_VERSION)
    if version != SPEC_VERSION:
        raise check.error("version", f"expected {SPEC_VERSION}, got {version!r}")
    name = check.string(root.get("name", path.stem), "name")
    base = path.parent
    workflows_dir = base / check.string(root.get("workflows_dir", "."), "workflows_dir")
    inputs = _parse_inputs(check, root.get("inputs"))
    full_body = tuple(check.string_list(root.get("full_body", list(DEFAULT_FULL_BODY)), "full_body"))
    seeds = _parse_seeds(check, root.get("seeds"), "seeds")
    reference = _parse_reference(check, root.get("reference"), base)
    reference_region = _parse_reference_region(check, root.get("reference_region"), base, reference)
    prompts = _parse_prompts(check, root.get("prompts"))
    configs = _parse_configs(check, root.get("configs"), workflows_dir, inputs)
    return Spec(path=path, name=name, configs=configs, prompts=prompts, seeds=seeds, inputs=inputs,
                full_body=full_body, reference=reference, description=str(root.get("description") or ""),
                reference_region=reference_region)


class _Checker:
    def __init__(self, path: Path):
        self.path = path

    def error(self, key: str, problem: str) -> SpecError:
        return SpecError(self.path, key, problem)

    def mapping(self, value: Any, key: str, expected: str) -> dict:
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected {expected}, got {_show(value)}")
        return dict(value)

    def known_keys(self, value: Mapping, key: str, allowed: set[str]) -> None:
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            where = f"{key}." if key else ""
            raise self.error(f"{where}{unknown[0]}", f"unknown key; expected one of {', '.join(sorted(allowed))}")

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {_show(value)}")
        return value.strip()

    def string_list(self, value: Any, key: str) -> list[str]:
        if isinstance(value, str) or not isinstance(value, list):
            raise self.error(key, f"expected a list of strings, got {_show(value)}")
        return [self.string(v, f"{key}[{i}]") for i, v in enumerate(value)]

    def input_ref(self, value: Any, key: str) -> InputRef:
        text = self.string(value, key)
        try:
            parsed = parse_override(text + "=0")
        except OverrideError as exc:
            raise self.error(key, f"expected '<node title or id>.<input>', got {text!r} ({exc})") from None
        return InputRef(parsed.node, parsed.input)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _parse_inputs(check: _Checker, value: Any) -> dict[str, InputRef]:
    given = {} if value is None else check.mapping(value, "inputs", "a mapping like {prompt: 'Positive prompt.text'}")
    check.known_keys(given, "inputs", set(DEFAULT_INPUTS))
    merged = {**DEFAULT_INPUTS, **given}
    return {k: check.input_ref(v, f"inputs.{k}") for k, v in merged.items()}


def _parse_seeds(check: _Checker, value: Any, key: str) -> list[int]:
    if value is None:
        raise check.error(key, "missing; expected a list of integer seeds, e.g. [42]")
    if isinstance(value, bool) or not isinstance(value, list) or not value:
        raise check.error(key, f"expected a non-empty list of integers, got {_show(value)}")
    seeds = []
    for i, seed in enumerate(value):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise check.error(f"{key}[{i}]", f"expected a non-negative integer, got {_show(seed)}")
        seeds.append(seed)
    duplicates = sorted({s for s in seeds if seeds.count(s) > 1})
    if duplicates:
        raise check.error(key, f"seed {duplicates[0]} is listed twice; expected distinct seeds")
    return seeds


def _parse_reference(check: _Checker, value: Any, base: Path) -> list[Path]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise check.error("reference", f"expected an image path or a list of paths, got {_show(value)}")
    return [base / check.string(v, f"reference[{i}]") for i, v in enumerate(items)]


def _parse_reference_region(check: _Checker, value: Any, base: Path, reference: list[Path]):
    if value is None:
        return None
    from pulid_flux.errors import FaceRegionError
    from pulid_flux.face.region import read_region_file, region_from_dict

    if not reference:
        raise check.error("reference_region", "needs 'reference': the region is drawn on the spec's reference photo")
    try:
        if isinstance(value, str):
            return read_region_file(base / check.string(value, "reference_region"))
        region = check.mapping(value, "reference_region", "{box: [x, y, width, height]} or a .face.json file name")
        return region_from_dict(region, "reference_region", mask_dir=base)
    except FaceRegionError as exc:
        raise check.error("reference_region", str(exc)) from None


def _parse_prompts(check: _Checker, value: Any) -> list[Prompt]:
    if not isinstance(value, list) or not value:
        raise check.error("prompts", f"expected a non-empty list of {{tag, text[, composition]}}, got {_show(value)}")
    prompts, seen = [], {}
    for i, item in enumerate(value, start=1):
        key = f"prompts[{i - 1}]"
        entry = check.mapping(item, key, "a mapping with tag and text")
        check.known_keys(entry, key, {"tag", "text", "composition"})
        tag = check.string(entry.get("tag"), f"{key}.tag")
        problem = tag_problem(tag)
        if problem:
            raise check.error(f"{key}.tag", problem)
        if tag in seen:
            raise check.error(f"{key}.tag", f"tag {tag!r} is already used by prompts[{seen[tag]}]; expected unique tags")
        seen[tag] = i - 1
        text = check.string(entry.get("text"), f"{key}.text")
        composition = entry.get("composition")
        if composition is not None:
            composition = check.string(composition, f"{key}.composition")
            _check_composition(check, text, composition, f"{key}.composition")
        prompts.append(Prompt(index=i, tag=tag, text=text, composition=composition))
    return prompts


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` cannot be a gallery file-name tag, or None."""
    if not _TAG.match(tag):
        return f"expected letters, digits, '-' and single '_' between words, got {tag!r}"
    for token in tag.split("_"):
        if _PARAM_TOKEN.match(token):
            return (f"tag token {token!r} looks like a parameter (letters followed by a number); the gallery "
                    f"scorer would cut the tag there. Join it with '-' (e.g. {tag.replace('_', '-')!r})")
    return None


def _check_composition(check: _Checker, text: str, composition: str, key: str) -> None:
    from pulid_flux.pose.bank import UnknownPoseError
    from pulid_flux.pose.composition import choose_composition

    try:
        choose_composition(text, composition)
    except UnknownPoseError as exc:
        raise check.error(key, str(exc)) from None


def _parse_configs(check: _Checker, value: Any, workflows_dir: Path, inputs: dict[str, InputRef]) -> list[Config]:
    if not isinstance(value, list) or not value:
        raise check.error("configs", f"expected a non-empty list of {{name, workflow[, overrides, rule, sweeps]}}, "
                                     f"got {_show(value)}")
    configs, seen = [], {}
    for i, item in enumerate(value):
        key = f"configs[{i}]"
        entry = check.mapping(item, key, "a mapping with name and workflow")
        check.known_keys(entry, key, {"name", "workflow", "overrides", "rule", "sweeps", "description"})
        name = check.string(entry.get("name"), f"{key}.name")
        if not _NAME.match(name) or name.startswith("_"):
            raise check.error(f"{key}.name", f"expected a folder-safe name (letters, digits, '.', '_', '-'), got {name!r}")
        if name in seen:
            raise check.error(f"{key}.name", f"config {name!r} is already defined by configs[{seen[name]}]")
        seen[name] = i
        key = f"configs[{i}] ({name})"
        workflow = workflows_dir / check.string(entry.get("workflow"), f"{key}.workflow")
        graph = _load_workflow(check, workflow, f"{key}.workflow")
        for role in REQUIRED_INPUTS:
            _check_ref(check, graph, inputs[role], f"inputs.{role}", f"{key}.workflow ({workflow.name})")
        overrides = _parse_overrides(check, entry.get("overrides"), graph, f"{key}.overrides")
        rule = _parse_rule(check, entry.get("rule"), graph, f"{key}.rule")
        sweeps = _parse_sweeps(check, entry.get("sweeps"), graph, f"{key}.sweeps")
        configs.append(Config(name=name, workflow=workflow, graph=graph, overrides=tuple(overrides), rule=rule,
                              sweeps=tuple(sweeps), index=i))
    return configs


def _load_workflow(check: _Checker, path: Path, key: str) -> dict:
    from ..client import check_api_prompt
    from ..convert import is_ui_workflow

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise check.error(key, f"cannot read workflow {path} ({exc})") from None
    except ValueError as exc:
        raise check.error(key, f"{path} is not valid JSON ({exc})") from None
    if is_ui_workflow(data):
        raise check.error(key, f"{path.name} is a UI-format workflow; expected the API-format twin "
                               f"({path.stem}_api.json) or one converted with `pulid-studio convert`")
    try:
        check_api_prompt(data)
    except WorkflowFormatError as exc:
        raise check.error(key, f"{path.name}: expected an API prompt ({exc})") from None
    return dict(data)


def _check_ref(check: _Checker, graph: Mapping, ref: InputRef, key: str, where: str) -> None:
    try:
        get_input(graph, ref.node, ref.input)
    except OverrideError as exc:
        raise check.error(key, f"{ref} not found in {where}: {exc}") from None


def has_node(graph: Mapping, node: str) -> bool:
    try:
        resolve_node(graph, node)
    except OverrideError:
        return False
    return True


def _parse_overrides(check: _Checker, value: Any, graph: Mapping, key: str) -> list[Override]:
    if value is None:
        return []
    result = []
    if isinstance(value, Mapping):
        for name, item in value.items():
            ref = check.input_ref(name, f"{key}[{name!r}]")
            _check_ref(check, graph, ref, f"{key}[{name!r}]", "the workflow")
            _check_scalar(check, item, f"{key}[{name!r}]")
            result.append(Override(ref.node, ref.input, item, None))
    elif isinstance(value, list):
        for i, text in enumerate(value):
            text = check.string(text, f"{key}[{i}]")
            try:
                override = parse_override(text)
            except OverrideError as exc:
                raise check.error(f"{key}[{i}]", f"expected 'Node.input=value' ({exc})") from None
            _check_ref(check, graph, InputRef(override.node, override.input), f"{key}[{i}]", "the workflow")
            result.append(override)
    else:
        raise check.error(key, f"expected a mapping {{'Node.input': value}} or a list of 'Node.input=value', "
                               f"got {_show(value)}")
    return result


def _check_scalar(check: _Checker, value: Any, key: str) -> None:
    if not isinstance(value, (str, int, float, bool)):
        raise check.error(key, f"expected a number, string or boolean, got {_show(value)}")


def _parse_rule(check: _Checker, value: Any, graph: Mapping, key: str) -> Rule | None:
    if value is None:
        return None
    entry = check.mapping(value, key, "a mapping with only_for and otherwise")
    check.known_keys(entry, key, {"only_for", "otherwise", "bypass"})
    only_for = tuple(check.string_list(entry.get("only_for"), f"{key}.only_for"))
    if not only_for:
        raise check.error(f"{key}.only_for", "expected at least one pose-bank entry (e.g. full_body)")
    otherwise = entry.get("otherwise")
    if otherwise not in RULE_ACTIONS:
        raise check.error(f"{key}.otherwise", f"expected one of {', '.join(RULE_ACTIONS)}, got {_show(otherwise)}")
    bypass: dict[str, dict[int, str]] = {}
    if otherwise == "bypass":
        spec = check.mapping(entry.get("bypass"), f"{key}.bypass",
                             "a mapping {node: {output slot: input passed through}}")
        if not spec:
            raise check.error(f"{key}.bypass", "expected at least one node to bypass")
        for node, slots in spec.items():
            node_key = f"{key}.bypass[{node!r}]"
            if not has_node(graph, str(node)):
                raise check.error(node_key, f"no node {node!r} in the workflow")
            node_id = resolve_node(graph, str(node))
            slots = check.mapping(slots, node_key, "a mapping {output slot: input name}")
            mapped = {}
            for slot, input_name in slots.items():
                if isinstance(slot, bool) or not isinstance(slot, int) and not (isinstance(slot, str) and slot.isdigit()):
                    raise check.error(node_key, f"expected integer output slots, got {_show(slot)}")
                input_name = check.string(input_name, f"{node_key}[{slot}]")
                if input_name not in (graph[node_id].get("inputs") or {}):
                    raise check.error(f"{node_key}[{slot}]", f"node {node!r} has no input {input_name!r}")
                mapped[int(slot)] = input_name
            bypass[str(node)] = mapped
    elif entry.get("bypass") is not None:
        raise check.error(f"{key}.bypass", f"only used with otherwise: bypass (here otherwise is {otherwise!r})")
    return Rule(only_for=only_for, otherwise=otherwise, bypass=bypass)


def _parse_sweeps(check: _Checker, value: Any, graph: Mapping, key: str) -> list[Sweep]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise check.error(key, f"expected a list of sweeps {{name, mode, params}}, got {_show(value)}")
    sweeps, names = [], set()
    for i, item in enumerate(value):
        skey = f"{key}[{i}]"
        entry = check.mapping(item, skey, "a mapping with name, mode and params")
        check.known_keys(entry, skey, {"name", "mode", "params", "enabled"})
        name = check.string(entry.get("name", f"sweep{i + 1}"), f"{skey}.name")
        if name in names:
            raise check.error(f"{skey}.name", f"sweep {name!r} is defined twice in this config")
        names.add(name)
        mode = entry.get("mode", "cartesian")
        if mode not in SWEEP_MODES:
            raise check.error(f"{skey}.mode", f"expected cartesian or zip, got {_show(mode)}")
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            raise check.error(f"{skey}.enabled", f"expected true or false, got {_show(enabled)}")
        params_spec = check.mapping(entry.get("params"), f"{skey}.params",
                                    "a mapping {'Node.input': [values]}")
        if not params_spec:
            raise check.error(f"{skey}.params", "expected at least one parameter")
        params = []
        for pname, pvalue in params_spec.items():
            pkey = f"{skey}.params[{pname!r}]"
            ref = check.input_ref(pname, pkey)
            _check_ref(check, graph, ref, pkey, "the workflow")
            alias = None
            if isinstance(pvalue, Mapping):
                check.known_keys(pvalue, pkey, {"values", "alias"})
                alias = pvalue.get("alias")
                if alias is not None and (not isinstance(alias, str) or not _ALIAS.match(alias)):
                    raise check.error(f"{pkey}.alias", f"expected letters only (a file-name token prefix), got {_show(alias)}")
                pvalue = pvalue.get("values")
            if isinstance(pvalue, (str, bytes)) or not isinstance(pvalue, list) or not pvalue:
                raise check.error(pkey, f"expected a non-empty list of values, got {_show(pvalue)}")
            for j, v in enumerate(pvalue):
                _check_scalar(check, v, f"{pkey}[{j}]")
            if len(set(map(repr, pvalue))) != len(pvalue):
                raise check.error(pkey, "expected distinct values")
            alias = alias or (re.sub(r"[^A-Za-z]", "", ref.input) or "p")
            params.append(Param(key=str(pname), target=ref, alias=alias, values=tuple(pvalue)))
        if mode == "zip":
            lengths = {p.key: len(p.values) for p in params}
            if len(set(lengths.values())) > 1:
                raise check.error(f"{skey}.params", "zip needs lists of equal length, got "
                                  + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
        aliases = [p.alias for p in params]
        clash = sorted({a for a in aliases if aliases.count(a) > 1})
        if clash:
            raise check.error(f"{skey}.params", f"two parameters share the file-name alias {clash[0]!r}; "
                                                f"give one an explicit alias: {{values: [...], alias: x}}")
        sweeps.append(Sweep(name=name, mode=mode, params=tuple(params), enabled=enabled))
    return sweeps
