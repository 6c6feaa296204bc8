"""The ablation spec's document shape as pydantic models.

These models check what a YAML document alone can tell: keys, types, formats (tags, names,
aliases), non-empty lists, distinct values. What needs the workflows or the pose bank (does
``PuLID.weight`` exist in 03's graph? is a tag used twice?) is checked while the typed spec is built
(:mod:`.spec`). Errors come out as ``<key path>: <what was expected>`` (:mod:`..documents`).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool

from ....errors import OverrideError
from ....overrides import parse_override
from ..documents import (
    Entry,
    Text,
    distinct,
    either,
    fail,
    items,
    mapping_of,
    matching,
    non_empty_text,
    one_of,
)

SPEC_VERSION = 1
ROLES = ("prompt", "seed", "reference", "face_region", "pose", "save", "lora")
RULE_ACTIONS = ("skip", "bypass", "run")
SWEEP_MODES = ("cartesian", "zip")
# A tag token must not look like a parameter token (``s42``, ``w0.5``, ``42``) or the gallery
# scorer would end the tag there (see pulid_flux.scoring.naming).
_PARAM_TOKEN = re.compile(r"^(?:[A-Za-z]+[-=]?)?-?\d+(?:\.\d+)?$")
_TAG = re.compile(r"^[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ALIAS = re.compile(r"^[A-Za-z]+$")


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` cannot be a gallery file-name tag, or None."""
    if not _TAG.match(tag):
        return f"expected letters, digits, '-' and single '_' between words, got {tag!r}"
    for token in tag.split("_"):
        if _PARAM_TOKEN.match(token):
            return (f"tag token {token!r} looks like a parameter (letters followed by a number); the gallery "
                    f"scorer would cut the tag there. Join it with '-' (e.g. {tag.replace('_', '-')!r})")
    return None


# ----------------------------------------------------------------------------- value types


def _input_ref(value: Any) -> str:
    ref = non_empty_text(value)
    try:
        parse_override(ref + "=0")
    except OverrideError as exc:
        fail(f"expected '<node title or id>.<input>', got {ref!r} ({exc})", with_value=False)
    return ref


def _scalar(value: Any) -> Any:
    if not isinstance(value, (str, int, float, bool)):
        fail("expected a number, string or boolean", value)
    return value


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        fail("expected a non-negative integer", value)
    return value


def _slot(value: Any) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or isinstance(value, str) and value.isdigit()):
        fail("expected an integer output slot", value)
    return int(value)


def _tag(value: str) -> str:
    problem = tag_problem(value)
    if problem:
        fail(problem, with_value=False)
    return value


def _not_private(name: str) -> str:
    return fail("expected a folder-safe name not starting with '_'", name) if name.startswith("_") else name


def _strength(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail("expected a number", value)
    return float(value)


def _version(value: Any) -> int:
    return value if value == SPEC_VERSION and not isinstance(value, bool) else fail(f"expected {SPEC_VERSION}", value)


def _node(value: Any) -> str:
    return non_empty_text(str(value) if isinstance(value, int) and not isinstance(value, bool) else value)


InputRefText = Annotated[str, BeforeValidator(_input_ref)]
NodeRef = Annotated[str, BeforeValidator(_node)]          # a title, or a node id written as a number
Scalar = Annotated[Any, BeforeValidator(_scalar)]
Seed = Annotated[int, BeforeValidator(_seed)]
Slot = Annotated[int, BeforeValidator(_slot)]
ConfigName = Annotated[Text, AfterValidator(matching(_NAME, "expected a folder-safe name (letters, digits, '.', '_', "
                                                             "'-')")), AfterValidator(_not_private)]
Alias = Annotated[Text, AfterValidator(matching(_ALIAS, "expected letters only (a file-name token prefix)"))]
PromptTag = Annotated[Text, AfterValidator(_tag)]
Values = items(Scalar, "a non-empty list of values", AfterValidator(distinct("values")))


class ParamEntry(Entry):
    expected: ClassVar[str] = "a mapping with values (and alias)"
    values: Values
    alias: Alias | None = None


class SweepEntry(Entry):
    expected: ClassVar[str] = "a mapping with name, mode and params"
    name: Text | None = None
    mode: Annotated[str, BeforeValidator(one_of(SWEEP_MODES))] = "cartesian"
    enabled: StrictBool = True
    params: mapping_of(InputRefText, either("a non-empty list of values or {values: [...], alias: x}",
                                        list=Values, mapping=ParamEntry),
                  "a mapping {'Node.input': [values]}",
                  AfterValidator(lambda v: v or fail("expected at least one parameter", with_value=False)))


class RuleEntry(Entry):
    expected: ClassVar[str] = "a mapping with only_for and otherwise"
    only_for: items(Text, "at least one pose-bank entry (e.g. [full_body])")
    otherwise: Annotated[str, BeforeValidator(one_of(RULE_ACTIONS)), Field(description=" or ".join(RULE_ACTIONS))]
    bypass: mapping_of(NodeRef, mapping_of(Slot, Text, "a mapping {output slot: input name}"),
                  "a mapping {node: {output slot: input passed through}}") | None = None


class LoraItem(Entry):
    expected: ClassVar[str] = "a mapping {name: <LoRA file>, strength: <number>}"
    name: Annotated[Text, Field(description="the LoRA file as the server lists it")]
    strength: Annotated[float, BeforeValidator(_strength)] = 1.0


class ConfigEntry(Entry):
    expected: ClassVar[str] = "a mapping with name and workflow"
    name: Annotated[ConfigName, Field(description="a folder-safe config name")]
    workflow: Annotated[Text, Field(description="an API-format workflow file (e.g. 01_base_api.json)")]
    description: str | None = None
    overrides: either("a mapping {'Node.input': value} or a list of 'Node.input=value'",
                       mapping=dict[InputRefText, Scalar], list=list[Text]) | None = None
    rule: RuleEntry | None = None
    sweeps: items(SweepEntry, "a list of sweeps {name, mode, params}", non_empty=False, none_as_empty=True) = []
    loras: items(LoraItem, "a non-empty list of {name, strength}") | None = None


class PromptEntry(Entry):
    expected: ClassVar[str] = "a mapping with tag and text"
    tag: Annotated[PromptTag, Field(description="a file-name tag (letters, digits, '-', '_')")]
    text: Annotated[Text, Field(description="the prompt text")]
    composition: Text | None = None


class InputsEntry(Entry):
    expected: ClassVar[str] = "a mapping like {prompt: 'Positive prompt.text'}"
    prompt: InputRefText = "Positive prompt.text"
    seed: InputRefText = "Seed.noise_seed"
    reference: InputRefText = "Reference image.image"
    face_region: InputRefText = "Encode identity.face_region"
    pose: InputRefText = "Pose.name"
    save: InputRefText = "Save.filename_prefix"
    lora: InputRefText = "LoRA.lora_name"


class SpecDocument(Entry):
    expected: ClassVar[str] = "a mapping with configs, prompts and seeds"
    version: Annotated[int, BeforeValidator(_version)] = SPEC_VERSION
    name: Text | None = None
    description: str | None = None
    workflows_dir: Text = "."
    reference: either("an image path or a list of paths", text=Text, list=list[Text]) | None = None
    # Checked by pulid_flux.face.region while the typed spec is built (one definition of the format).
    reference_region: either("a face region {box: [x, y, width, height], mask: <png>} or a .face.json file name",
                             text=Text, mapping=dict[str, Any]) | None = None
    inputs: Annotated[InputsEntry, BeforeValidator(lambda v: {} if v is None else v)] = InputsEntry()
    seeds: items(Seed, "a list of integer seeds, e.g. [42]", AfterValidator(distinct("seeds")))
    full_body: items(Text, "a list of strings", non_empty=False) = ["full_body", "full_body_arm_up"]
    configs: items(ConfigEntry, "a non-empty list of {name, workflow[, overrides, rule, sweeps]}")
    prompts: items(PromptEntry, "a non-empty list of {tag, text[, composition]}")


