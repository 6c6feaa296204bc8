"""YAML documents of plan sources, validated by pydantic models, with errors in the document's words.

A source describes its file as pydantic models built from the pieces here (:data:`Text`,
:func:`items`, :func:`mapping_of`, :func:`either`, ...), whose wrong values fail with
"expected <what>, got <value>". :func:`validate` turns pydantic's errors into ``(key path,
problem)`` pairs with the key path written as in the file (``configs[3] (04_full).rule.otherwise``):
list positions, mapping keys in quotes, the ``name`` of a named entry, no pydantic internals.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any, ClassVar, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)
from pydantic_core import PydanticCustomError

ERROR_TYPE = "document"


class Entry(BaseModel):
    """A mapping of the document: unknown keys are errors; ``expected`` says what it should look like."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    expected: ClassVar[str] = "a mapping"


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def fail(problem: str, value: Any = None, *, with_value: bool = True):
    """Raise the validation error "<problem>, got <value>" (or just ``problem``)."""
    text = f"{problem}, got {show(value)}" if with_value else problem
    raise PydanticCustomError(ERROR_TYPE, "{problem}", {"problem": text})


def non_empty_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        fail("expected a non-empty string", value)
    return value.strip()


def matching(pattern: re.Pattern, expected: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            fail(expected, value)
        return value
    return check


def list_of(expected: str, *, non_empty: bool = True, none_as_empty: bool = False):
    def check(value: Any) -> list:
        if value is None and none_as_empty:
            return []
        if not isinstance(value, list) or (non_empty and not value):
            fail(f"expected {expected}", value)
        return value
    return check


def mapping(expected: str):
    def check(value: Any) -> dict:
        if not isinstance(value, dict):
            fail(f"expected {expected}", value)
        return value
    return check


def distinct(what: str):
    def check(values: list) -> list:
        seen = [repr(v) for v in values]
        repeated = next((v for v, r in zip(values, seen) if seen.count(r) > 1), None)
        if repeated is not None:
            fail(f"{repeated!r} is listed twice; expected distinct {what}", with_value=False)
        return values
    return check


def one_of(choices: tuple[str, ...]):
    def check(value: Any) -> str:
        if value not in choices:
            fail(f"expected one of {', '.join(choices)}", value)
        return value
    return check


def either(expected: str, **members):
    """A union told apart by the value's Python type (``mapping`` / ``list`` / ``text``), so an error
    speaks of the one form the user wrote instead of listing why every form failed."""
    kinds = {"mapping": dict, "list": list, "text": str}

    def kind(value: Any) -> str | None:
        return next((k for k in members if isinstance(value, kinds[k])), None)
    return Annotated[Union[tuple(Annotated[t, Tag(k)] for k, t in members.items())],
                     Discriminator(kind, custom_error_type=ERROR_TYPE, custom_error_message=f"expected {expected}")]


def items(item, expected: str, *validators, non_empty: bool = True, none_as_empty: bool = False):
    """``list[item]`` whose wrong shape is reported as "expected <expected>" (also what a missing key says)."""
    check = BeforeValidator(list_of(expected, non_empty=non_empty, none_as_empty=none_as_empty))
    return Annotated[(list[item], check, *validators, Field(description=expected))]


def mapping_of(key, value, expected: str, *validators):
    """``dict[key, value]`` whose wrong shape is reported as "expected <expected>"."""
    return Annotated[(dict[key, value], BeforeValidator(mapping(expected)), *validators, Field(description=expected))]


Text = Annotated[str, BeforeValidator(non_empty_text)]


# ----------------------------------------------------------------------------- errors in the document's words


def validate(model: type[BaseModel], data: Any):
    """``data`` as ``model``; raises :class:`DocumentError` with the key paths and expectations."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # A misspelt key also makes its correct spelling "missing": the unknown key explains both.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        problems = [_describe(e, model, data) for e in errors]
        raise DocumentError(problems) from None


class DocumentError(ValueError):
    """The first of ``problems`` ((key, problem) pairs) is the one to report; the rest follow it."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__(problems[0][1])


def _describe(error: dict, model: type[BaseModel], data: Any) -> tuple[str, str]:
    key, field, parent, target = _key_path(error["loc"], model, data)
    kind, value = error["type"], error.get("input")
    if kind == ERROR_TYPE or kind.startswith("union_tag"):
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
    """The member of an :func:`either` union that ``tag`` names, or None."""
    for member in typing.get_args(annotation):
        if typing.get_origin(member) is Annotated and any(
                isinstance(m, Tag) and m.tag == tag for m in typing.get_args(member)[1:]):
            return typing.get_args(member)[0]
    return None


def _key_path(loc: tuple, model: type[BaseModel], data: Any):
    """(``configs[3] (04_full).rule.otherwise``, the last model field met, the model holding it, the
    type expected at ``loc``)."""
    text, current, field, parent, raw = "", model, None, None, data
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
            if isinstance(name, str) and later[:1] != ("name",):       # a named entry: say which
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
