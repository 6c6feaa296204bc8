"""The ablation spec's document shape as pydantic models, and its errors in the spec's own words.

These models check what a YAML document alone can tell: keys, types, formats (tags, names,
aliases), non-empty lists, distinct values. What needs the workflows or the pose bank (does
``PuLID.weight`` exist in 03's graph? is a tag used twice?) is checked while the typed spec is built
(:mod:`.spec`). Every error becomes ``<key path>: <what was expected>`` with the key path written
as in the file (``configs[3] (04_full).rule.otherwise``), not pydantic's own location tuples.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any, ClassVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from ..errors import OverrideError
from ..overrides import parse_override

SPEC_VERSION = 1
ROLES = ("prompt", "seed", "reference", "pose", "save")
RULE_ACTIONS = ("skip", "bypass", "run")
SWEEP_MODES = ("cartesian", "zip")
# A tag token must not look like a parameter token (``s42``, ``w0.5``, ``42``) or the gallery
# scorer would end the tag there (see pulid_flux.scoring.naming).
_PARAM_TOKEN = re.compile(r"^(?:[A-Za-z]+[-=]?)?-?\d+(?:\.\d+)?$")
_TAG = re.compile(r"^[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ALIAS = re.compile(r"^[A-Za-z]+$")


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _fail(problem: str, value: Any = None, *, with_value: bool = True):
    text = f"{problem}, got {show(value)}" if with_value else problem
    raise PydanticCustomError("spec", "{problem}", {"problem": text})


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


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail("expected a non-empty string", value)
    return value.strip()


def _input_ref(value: Any) -> str:
    text = _text(value)
    try:
        parse_override(text + "=0")
    except OverrideError as exc:
        _fail(f"expected '<node title or id>.<input>', got {text!r} ({exc})", with_value=False)
    return text


def _scalar(value: Any) -> Any:
    if not isinstance(value, (str, int, float, bool)):
        _fail("expected a number, string or boolean", value)
    return value


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail("expected a non-negative integer", value)
    return value


def _slot(value: Any) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or isinstance(value, str) and value.isdigit()):
        _fail("expected an integer output slot", value)
    return int(value)


def _matching(pattern: re.Pattern, expected: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            _fail(expected, value)
        return value
    return check


def _tag(value: str) -> str:
    problem = tag_problem(value)
    if problem:
        _fail(problem, with_value=False)
    return value


def _list_of(expected: str, *, non_empty: bool = True, none_as_empty: bool = False):
    def check(value: Any) -> list:
        if value is None and none_as_empty:
            return []
        if not isinstance(value, list) or (non_empty and not value):
            _fail(f"expected {expected}", value)
        return value
    return check


def _mapping(expected: str):
    def check(value: Any) -> dict:
        if not isinstance(value, dict):
            _fail(f"expected {expected}", value)
        return value
    return check


def _distinct(what: str):
    def check(values: list) -> list:
        seen = [repr(v) for v in values]
        repeated = next((v for v, r in zip(values, seen) if seen.count(r) > 1), None)
        if repeated is not None:
            _fail(f"{repeated!r} is listed twice; expected distinct {what}", with_value=False)
        return values
    return check


def _one_of(choices: tuple[str, ...]):
    def check(value: Any) -> str:
        if value not in choices:
            _fail(f"expected one of {', '.join(choices)}", value)
        return value
    return check


def _either(expected: str, **members):
    """A union told apart by the value's Python type (``mapping`` / ``list`` / ``text``), so an error
    speaks of the one form the user wrote instead of listing why every form failed."""
    kinds = {"mapping": dict, "list": list, "text": str}

    def kind(value: Any) -> str | None:
        return next((k for k in members if isinstance(value, kinds[k])), None)
    return Annotated[Union[tuple(Annotated[t, Tag(k)] for k, t in members.items())],
                     Discriminator(kind, custom_error_type="spec", custom_error_message=f"expected {expected}")]


def _items(item, expected: str, *validators, non_empty: bool = True, none_as_empty: bool = False):
    """``list[item]`` whose wrong shape is reported as "expected <expected>" (also what a missing key says)."""
    check = BeforeValidator(_list_of(expected, non_empty=non_empty, none_as_empty=none_as_empty))
    return Annotated[(list[item], check, *validators, Field(description=expected))]


def _dict(key, value, expected: str, *validators):
    return Annotated[(dict[key, value], BeforeValidator(_mapping(expected)), *validators, Field(description=expected))]


def _not_private(name: str) -> str:
    return _fail("expected a folder-safe name not starting with '_'", name) if name.startswith("_") else name


def _version(value: Any) -> int:
    return value if value == SPEC_VERSION and not isinstance(value, bool) else _fail(f"expected {SPEC_VERSION}", value)


def _node(value: Any) -> str:
    return _text(str(value) if isinstance(value, int) and not isinstance(value, bool) else value)


Text = Annotated[str, BeforeValidator(_text)]
InputRefText = Annotated[str, BeforeValidator(_input_ref)]
NodeRef = Annotated[str, BeforeValidator(_node)]          # a title, or a node id written as a number
Scalar = Annotated[Any, BeforeValidator(_scalar)]
Seed = Annotated[int, BeforeValidator(_seed)]
Slot = Annotated[int, BeforeValidator(_slot)]
ConfigName = Annotated[Text, AfterValidator(_matching(_NAME, "expected a folder-safe name (letters, digits, '.', '_', "
                                                             "'-')")), AfterValidator(_not_private)]
Alias = Annotated[Text, AfterValidator(_matching(_ALIAS, "expected letters only (a file-name token prefix)"))]
PromptTag = Annotated[Text, AfterValidator(_tag)]
Values = _items(Scalar, "a non-empty list of values", AfterValidator(_distinct("values")))


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    expected: ClassVar[str] = "a mapping"


class ParamEntry(_Entry):
    expected: ClassVar[str] = "a mapping with values (and alias)"
    values: Values
    alias: Alias | None = None


class SweepEntry(_Entry):
    expected: ClassVar[str] = "a mapping with name, mode and params"
    name: Text | None = None
    mode: Annotated[str, BeforeValidator(_one_of(SWEEP_MODES))] = "cartesian"
    enabled: StrictBool = True
    params: _dict(InputRefText, _either("a non-empty list of values or {values: [...], alias: x}",
                                        list=Values, mapping=ParamEntry),
                  "a mapping {'Node.input': [values]}",
                  AfterValidator(lambda v: v or _fail("expected at least one parameter", with_value=False)))


class RuleEntry(_Entry):
    expected: ClassVar[str] = "a mapping with only_for and otherwise"
    only_for: _items(Text, "at least one pose-bank entry (e.g. [full_body])")
    otherwise: Annotated[str, BeforeValidator(_one_of(RULE_ACTIONS)), Field(description=" or ".join(RULE_ACTIONS))]
    bypass: _dict(NodeRef, _dict(Slot, Text, "a mapping {output slot: input name}"),
                  "a mapping {node: {output slot: input passed through}}") | None = None


class ConfigEntry(_Entry):
    expected: ClassVar[str] = "a mapping with name and workflow"
    name: Annotated[ConfigName, Field(description="a folder-safe config name")]
    workflow: Annotated[Text, Field(description="an API-format workflow file (e.g. 01_base_api.json)")]
    description: str | None = None
    overrides: _either("a mapping {'Node.input': value} or a list of 'Node.input=value'",
                       mapping=dict[InputRefText, Scalar], list=list[Text]) | None = None
    rule: RuleEntry | None = None
    sweeps: _items(SweepEntry, "a list of sweeps {name, mode, params}", non_empty=False, none_as_empty=True) = []


class PromptEntry(_Entry):
    expected: ClassVar[str] = "a mapping with tag and text"
    tag: Annotated[PromptTag, Field(description="a file-name tag (letters, digits, '-', '_')")]
    text: Annotated[Text, Field(description="the prompt text")]
    composition: Text | None = None


class InputsEntry(_Entry):
    expected: ClassVar[str] = "a mapping like {prompt: 'Positive prompt.text'}"
    prompt: InputRefText = "Positive prompt.text"
    seed: InputRefText = "Seed.noise_seed"
    reference: InputRefText = "Reference image.image"
    pose: InputRefText = "Pose.name"
    save: InputRefText = "Save.filename_prefix"


class SpecDocument(_Entry):
    expected: ClassVar[str] = "a mapping with configs, prompts and seeds"
    version: Annotated[int, BeforeValidator(_version)] = SPEC_VERSION
    name: Text | None = None
    description: str | None = None
    workflows_dir: Text = "."
    reference: _either("an image path or a list of paths", text=Text, list=list[Text]) | None = None
    inputs: Annotated[InputsEntry, BeforeValidator(lambda v: {} if v is None else v)] = InputsEntry()
    seeds: _items(Seed, "a list of integer seeds, e.g. [42]", AfterValidator(_distinct("seeds")))
    full_body: _items(Text, "a list of strings", non_empty=False) = ["full_body", "full_body_arm_up"]
    configs: _items(ConfigEntry, "a non-empty list of {name, workflow[, overrides, rule, sweeps]}")
    prompts: _items(PromptEntry, "a non-empty list of {tag, text[, composition]}")


# ----------------------------------------------------------------------------- errors in the spec's words


def validate_document(data: Any) -> SpecDocument:
    """The document as :class:`SpecDocument`; raises ``DocumentError`` with the key path and expectation."""
    try:
        return SpecDocument.model_validate(data)
    except ValidationError as exc:
        # A misspelt key also makes its correct spelling "missing": the unknown key explains both.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        problems = [_describe(e, data) for e in errors]
        raise DocumentError(problems) from None


class DocumentError(ValueError):
    """The first of ``problems`` ((key, problem) pairs) is the one to report; the rest follow it."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__(problems[0][1])


def _describe(error: dict, data: Any) -> tuple[str, str]:
    key, field, parent, target = _key_path(error["loc"], data)
    kind, value = error["type"], error.get("input")
    if kind == "spec" or kind.startswith("union_tag"):
        return key, error["msg"]
    if kind == "missing":
        expected = field.description if field is not None and field.description else "a value"
        return key, f"missing; expected {expected}"
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(n for n in parent.model_fields)) if parent is not None else "a known key"
        return key, f"unknown key; expected one of {allowed}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return key, f"expected {getattr(_plain(target), 'expected', 'a mapping')}, got {show(value)}"
    if kind == "bool_type":
        return key, f"expected true or false, got {show(value)}"
    if kind == "string_type":
        return key, f"expected a string, got {show(value)}"
    return key, f"{error['msg']}, got {show(value)}"


def _plain(annotation):
    """``annotation`` without ``Annotated`` wrappers and without ``| None``."""
    while True:
        if typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
            annotation = next(a for a in args if a is not type(None))
            continue
        return annotation


def _tagged(annotation, tag: str):
    """The member of a :func:`_either` union that ``tag`` names, or None."""
    for member in typing.get_args(annotation):
        if typing.get_origin(member) is Annotated and any(
                isinstance(m, Tag) and m.tag == tag for m in typing.get_args(member)[1:]):
            return typing.get_args(member)[0]
    return None


def _key_path(loc: tuple, data: Any):
    """(``configs[3] (04_full).rule.otherwise``, the last model field met, the model holding it, the
    type expected at ``loc``)."""
    text, current, field, parent, raw = "", SpecDocument, None, None, data
    for position, item in enumerate(loc):
        if item == "[key]":           # the error is about the mapping key just named
            continue
        current = _plain(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            parent, field = current, current.model_fields.get(item)
            text += f".{item}" if text else str(item)
            current = field.annotation if field is not None else None
        elif typing.get_origin(current) is list:
            text += f"[{item}]"
            current = typing.get_args(current)[0]
            raw = raw[item] if isinstance(raw, list) and isinstance(item, int) and item < len(raw) else None
            name = raw.get("name") if isinstance(raw, dict) else None
            later = loc[position + 1:]
            if text.startswith("configs[") and text.count("[") == 1 and isinstance(name, str) and later[:1] != ("name",):
                text += f" ({name})"
            continue
        elif typing.get_origin(current) is dict:
            text += f"[{item!r}]"
            current = typing.get_args(current)[1]
        elif current is not None and _tagged(current, item) is not None:
            current = _tagged(current, item)
            continue
        else:
            text += f"[{item!r}]"
            current = None
        raw = raw.get(item) if isinstance(raw, dict) else None
    return text, field, parent, current
