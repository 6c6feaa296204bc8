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
      lora: LoRA.lora_name           # the LoRA loader that a config's loras: stack starts at
    seeds: [42]
    full_body: [full_body, full_body_arm_up]   # pose-bank entries that count as full-body
    configs:
      - name: 04_full
        workflow: 04_full_api.json   # API format (the *_api.json twins)
        overrides: {"Scheduler.steps": 25}        # or a list of "Node.input=value" strings
        loras:                       # optional LoRA stack: the first on the inputs.lora node, the others
          - {name: id.safetensors, strength: 1.0}      # chained after it as copies titled "LoRA 2", ...
          - {name: style.safetensors, strength: 0.5}
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

Every problem is reported as ``<file>: <key path>: <what was expected>``. The document's shape is
checked by pydantic models (:mod:`.schema`); this module adds what needs the workflows and the
pose bank, and builds the typed :class:`Spec`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ....errors import ComfyClientError, OverrideError, WorkflowFormatError
from ....loras import LORA_CLASSES, LoraEntry
from ....overrides import Override, get_input, parse_override, resolve_node
from ...plan import Prompt
from ..documents import DocumentError, validate
from .schema import (
    ROLES,
    ConfigEntry,
    PromptEntry,
    RuleEntry,
    SpecDocument,
    SweepEntry,
    tag_problem,
)

__all__ = ["Config", "InputRef", "Param", "Prompt", "Rule", "Spec", "SpecError", "Sweep", "has_node", "load_spec",
           "parse_spec", "tag_problem"]

REQUIRED_INPUTS = ("prompt", "seed")       # the other roles are set only in configs that have the node


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
    loras: tuple[LoraEntry, ...] = ()                # a LoRA stack from the inputs.lora node on


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
    try:
        document = validate(SpecDocument, data)
    except DocumentError as exc:
        (key, problem), more = exc.problems[0], exc.problems[1:]
        if more:
            problem += "".join(f"\n  also {k or 'the document'}: {p}" for k, p in more[:4])
            problem += f"\n  ({len(more) - 4} more)" if len(more) > 4 else ""
        raise SpecError(path, key, problem) from None
    base = path.parent
    inputs = {role: _input_ref(getattr(document.inputs, role)) for role in ROLES}
    reference = document.reference
    references = [] if reference is None else [reference] if isinstance(reference, str) else list(reference)
    check = _Checker(path)
    return Spec(path=path, name=document.name or path.stem,
                configs=_configs(check, document.configs, base / document.workflows_dir, inputs),
                prompts=_prompts(check, document.prompts), seeds=list(document.seeds), inputs=inputs,
                full_body=tuple(document.full_body), reference=[base / r for r in references],
                description=document.description or "",
                reference_region=_reference_region(check, document.reference_region, base, references))


def _reference_region(check: _Checker, value: Any, base: Path, references: list):
    """The spec's ``reference_region`` as a FaceRegion (the format is the face pipeline's)."""
    if value is None:
        return None
    from pulid_flux.errors import FaceRegionError
    from pulid_flux.face.region import read_region_file, region_from_dict

    if not references:
        raise check.error("reference_region", "needs 'reference': the region is drawn on the spec's reference photo")
    try:
        if isinstance(value, str):
            return read_region_file(base / value)
        return region_from_dict(value, "reference_region", mask_dir=base)
    except FaceRegionError as exc:
        raise check.error("reference_region", str(exc)) from None


class _Checker:
    def __init__(self, path: Path):
        self.path = path

    def error(self, key: str, problem: str) -> SpecError:
        return SpecError(self.path, key, problem)

    def ref(self, graph: Mapping, ref: InputRef, key: str, where: str) -> None:
        try:
            get_input(graph, ref.node, ref.input)
        except OverrideError as exc:
            raise self.error(key, f"{ref} not found in {where}: {exc}") from None


def _input_ref(text: str) -> InputRef:
    parsed = parse_override(text + "=0")      # the document checked that this parses
    return InputRef(parsed.node, parsed.input)


def _prompts(check: _Checker, entries: list[PromptEntry]) -> list[Prompt]:
    prompts, seen = [], {}
    for i, entry in enumerate(entries):
        key = f"prompts[{i}]"
        if entry.tag in seen:
            raise check.error(f"{key}.tag", f"tag {entry.tag!r} is already used by prompts[{seen[entry.tag]}]; "
                                            "expected unique tags")
        seen[entry.tag] = i
        if entry.composition is not None:
            _check_composition(check, entry.text, entry.composition, f"{key}.composition")
        prompts.append(Prompt(index=i + 1, tag=entry.tag, text=entry.text, composition=entry.composition))
    return prompts


def _check_composition(check: _Checker, text: str, composition: str, key: str) -> None:
    from pulid_flux.pose.bank import UnknownPoseError
    from pulid_flux.pose.composition import choose_composition

    try:
        choose_composition(text, composition)
    except UnknownPoseError as exc:
        raise check.error(key, str(exc)) from None


def _configs(check: _Checker, entries: list[ConfigEntry], workflows_dir: Path,
             inputs: dict[str, InputRef]) -> list[Config]:
    configs, seen = [], {}
    for i, entry in enumerate(entries):
        if entry.name in seen:
            raise check.error(f"configs[{i}].name", f"config {entry.name!r} is already defined by "
                                                    f"configs[{seen[entry.name]}]")
        seen[entry.name] = i
        key = f"configs[{i}] ({entry.name})"
        workflow = workflows_dir / entry.workflow
        graph = _load_workflow(check, workflow, f"{key}.workflow")
        for role in REQUIRED_INPUTS:
            check.ref(graph, inputs[role], f"inputs.{role}", f"{key}.workflow ({workflow.name})")
        configs.append(Config(name=entry.name, workflow=workflow, graph=graph,
                              overrides=tuple(_overrides(check, entry.overrides, graph, f"{key}.overrides")),
                              rule=_rule(check, entry.rule, graph, f"{key}.rule"),
                              sweeps=tuple(_sweeps(check, entry.sweeps, graph, f"{key}.sweeps")), index=i,
                              loras=_loras(check, entry.loras, graph, inputs["lora"], f"{key}.loras")))
    return configs


def _loras(check: _Checker, entries, graph: Mapping, ref: InputRef, key: str) -> tuple[LoraEntry, ...]:
    if not entries:
        return ()
    if not has_node(graph, ref.node):
        raise check.error(key, f"the workflow has no LoRA node {ref.node!r} (inputs.lora) for the stack to start at")
    class_type = graph[resolve_node(graph, ref.node)].get("class_type")
    if class_type not in LORA_CLASSES:
        raise check.error(key, f"inputs.lora names {ref.node!r}, a {class_type}; expected a LoRA loader "
                               f"({', '.join(LORA_CLASSES)})")
    return tuple(LoraEntry(e.name, e.strength) for e in entries)


def _load_workflow(check: _Checker, path: Path, key: str) -> dict:
    from ....client import check_api_prompt
    from ....convert import is_ui_workflow

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


def has_node(graph: Mapping, node: str) -> bool:
    try:
        resolve_node(graph, node)
    except OverrideError:
        return False
    return True


def _overrides(check: _Checker, value: dict | list | None, graph: Mapping, key: str) -> list[Override]:
    result = []
    if isinstance(value, dict):
        for name, item in value.items():
            ref = _input_ref(name)
            check.ref(graph, ref, f"{key}[{name!r}]", "the workflow")
            result.append(Override(ref.node, ref.input, item, None))
    for i, text in enumerate(value if isinstance(value, list) else []):
        try:
            override = parse_override(text)
        except OverrideError as exc:
            raise check.error(f"{key}[{i}]", f"expected 'Node.input=value' ({exc})") from None
        check.ref(graph, InputRef(override.node, override.input), f"{key}[{i}]", "the workflow")
        result.append(override)
    return result


def _rule(check: _Checker, entry: RuleEntry | None, graph: Mapping, key: str) -> Rule | None:
    if entry is None:
        return None
    if entry.otherwise != "bypass":
        if entry.bypass is not None:
            raise check.error(f"{key}.bypass", f"only used with otherwise: bypass (here otherwise is {entry.otherwise!r})")
        return Rule(only_for=tuple(entry.only_for), otherwise=entry.otherwise)
    if not entry.bypass:
        raise check.error(f"{key}.bypass", "expected at least one node to bypass, as {node: {output slot: input "
                                           "passed through}}")
    for node, slots in entry.bypass.items():
        node_key = f"{key}.bypass[{node!r}]"
        if not has_node(graph, node):
            raise check.error(node_key, f"no node {node!r} in the workflow")
        node_inputs = graph[resolve_node(graph, node)].get("inputs") or {}
        for slot, input_name in slots.items():
            if input_name not in node_inputs:
                raise check.error(f"{node_key}[{slot}]", f"node {node!r} has no input {input_name!r}")
    return Rule(only_for=tuple(entry.only_for), otherwise=entry.otherwise,
                bypass={node: dict(slots) for node, slots in entry.bypass.items()})


def _sweeps(check: _Checker, entries: list[SweepEntry], graph: Mapping, key: str) -> list[Sweep]:
    sweeps, names = [], set()
    for i, entry in enumerate(entries):
        skey = f"{key}[{i}]"
        name = entry.name or f"sweep{i + 1}"
        if name in names:
            raise check.error(f"{skey}.name", f"sweep {name!r} is defined twice in this config")
        names.add(name)
        params = []
        for pname, pvalue in entry.params.items():
            ref = _input_ref(pname)
            check.ref(graph, ref, f"{skey}.params[{pname!r}]", "the workflow")
            values, alias = (pvalue, None) if isinstance(pvalue, list) else (pvalue.values, pvalue.alias)
            alias = alias or (re.sub(r"[^A-Za-z]", "", ref.input) or "p")
            params.append(Param(key=pname, target=ref, alias=alias, values=tuple(values)))
        lengths = {p.key: len(p.values) for p in params}
        if entry.mode == "zip" and len(set(lengths.values())) > 1:
            raise check.error(f"{skey}.params", "zip needs lists of equal length, got "
                              + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
        aliases = [p.alias for p in params]
        clash = sorted({a for a in aliases if aliases.count(a) > 1})
        if clash:
            raise check.error(f"{skey}.params", f"two parameters share the file-name alias {clash[0]!r}; "
                                                f"give one an explicit alias: {{values: [...], alias: x}}")
        sweeps.append(Sweep(name=name, mode=entry.mode, params=tuple(params), enabled=entry.enabled))
    return sweeps
