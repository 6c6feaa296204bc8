"""Editing API prompts: find nodes, set inputs, swap classes, rename model files.

Nodes are referred to by id (``"6"``, ``6``, ``"12:3"``) or by title (``_meta.title``, e.g.
``"Positive prompt"``). Command-line overrides use the form ``"Positive prompt".text=a red fox``
or ``3.seed=42``: the node (a quoted title, or an id / title without dots), a dot, the input name,
``=``, the value (JSON when it parses — numbers, booleans, lists — a plain string otherwise).
Every function that changes a prompt works on and returns a deep copy unless ``in_place=True``.
"""

from __future__ import annotations

import copy
import json
import logging
import posixpath
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .errors import OverrideError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Override:
    """``node``.``input`` = ``value``; ``raw`` keeps the text after ``=`` (for string inputs)."""

    node: str
    input: str
    value: Any
    raw: str | None = None


def node_title(node: Mapping[str, Any]) -> str | None:
    meta = node.get("_meta")
    if isinstance(meta, Mapping) and meta.get("title") is not None:
        return str(meta["title"])
    return None


def find_nodes(prompt: Mapping[str, Any], *, title: str | None = None, class_type: str | None = None) -> list[str]:
    """Ids of the nodes matching every given criterion (exact title and/or class), in prompt order."""
    if title is None and class_type is None:
        raise ValueError("find_nodes needs title= and/or class_type=")
    found = []
    for node_id, node in prompt.items():
        if title is not None and node_title(node) != title:
            continue
        if class_type is not None and node.get("class_type") != class_type:
            continue
        found.append(str(node_id))
    return found


def resolve_node(prompt: Mapping[str, Any], ref: str | int) -> str:
    """The id of the node ``ref`` names: an existing id first, else a unique title, else a unique class."""
    key = str(ref)
    if key in prompt:
        return key
    for criterion in ("title", "class_type"):
        matches = find_nodes(prompt, **{criterion: key})
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise OverrideError(
                f"{key!r} matches {len(matches)} nodes by {criterion.replace('_', ' ')} "
                f"({', '.join(matches)}); use a node id or give the nodes distinct titles"
            )
    titles = sorted({t for t in (node_title(n) for n in prompt.values()) if t})
    raise OverrideError(f"no node with id or title {key!r}; titles in this prompt: {', '.join(map(repr, titles)) or 'none'}")


def set_input(prompt: Mapping[str, Any], node: str | int, input_name: str, value: Any, *, allow_new: bool = False,
              in_place: bool = False) -> dict:
    """Set ``input_name`` of ``node`` (id or title) to ``value``.

    Refuses input names the node does not have (typos would otherwise be silently ignored by the
    server) unless ``allow_new``. Setting a literal over a link disconnects that link.
    """
    result = prompt if in_place else copy.deepcopy(dict(prompt))
    node_id = resolve_node(result, node)
    inputs = result[node_id].setdefault("inputs", {})
    if input_name not in inputs and not allow_new:
        raise OverrideError(
            f"node {node_id} ({_describe(result[node_id])}) has no input {input_name!r}; "
            f"its inputs: {', '.join(sorted(inputs)) or 'none'}"
        )
    if _is_link(inputs.get(input_name)) and not _is_link(value):
        log.info("node %s input %s was linked to %s; replaced by a literal", node_id, input_name, inputs[input_name])
    inputs[input_name] = value
    return result


def get_input(prompt: Mapping[str, Any], node: str | int, input_name: str) -> Any:
    node_id = resolve_node(prompt, node)
    inputs = prompt[node_id].get("inputs") or {}
    if input_name not in inputs:
        raise OverrideError(f"node {node_id} ({_describe(prompt[node_id])}) has no input {input_name!r}")
    return inputs[input_name]


def parse_override(text: str) -> Override:
    """Parse ``"Title".input=value`` / ``id.input=value`` / ``Title.input=value``."""
    text = text.strip()
    if not text:
        raise OverrideError("empty override; expected NODE.INPUT=VALUE")
    if text[0] in "\"'":
        quote = text[0]
        end = text.find(quote, 1)
        if end == -1:
            raise OverrideError(f"unterminated quote in override {text!r}")
        node = text[1:end]
        rest = text[end + 1:]
        if not rest.startswith("."):
            raise OverrideError(f"expected '.' after the quoted node name in {text!r}")
        rest = rest[1:]
    else:
        equals = text.find("=")
        head = text if equals == -1 else text[:equals]
        # Unquoted node names end at the first dot (input names may contain dots, ids never do).
        dot = head.find(".")
        if dot <= 0:
            raise OverrideError(f"override {text!r} should look like NODE.INPUT=VALUE (quote titles containing dots)")
        node, rest = text[:dot], text[dot + 1:]
    if "=" not in rest:
        raise OverrideError(f"override {text!r} has no '=VALUE'")
    input_name, raw = rest.split("=", 1)
    input_name = input_name.strip()
    if not input_name:
        raise OverrideError(f"override {text!r} has an empty input name")
    return Override(node=node, input=input_name, value=parse_value(raw), raw=raw)


def parse_value(raw: str) -> Any:
    """JSON if ``raw`` parses as JSON, else the string itself."""
    stripped = raw.strip()
    if not stripped:
        return raw
    try:
        return json.loads(stripped)
    except ValueError:
        return raw


def _adapt(value: Any, raw: str | None, current: Any) -> Any:
    # Keep the type the input already has: a prompt text of "42" stays a string, 20.0 steps an int.
    if isinstance(current, str) and not isinstance(value, str) and raw is not None:
        return raw
    if isinstance(current, bool) or isinstance(value, bool):
        return value
    if isinstance(current, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def apply_overrides(prompt: Mapping[str, Any], overrides: Iterable[str | Override], *, allow_new: bool = False) -> dict:
    """A copy of ``prompt`` with every override applied, in order."""
    result = copy.deepcopy(dict(prompt))
    for item in overrides:
        override = parse_override(item) if isinstance(item, str) else item
        node_id = resolve_node(result, override.node)
        current = (result[node_id].get("inputs") or {}).get(override.input)
        value = _adapt(override.value, override.raw, current)
        set_input(result, node_id, override.input, value, allow_new=allow_new, in_place=True)
    return result


def swap_class(prompt: Mapping[str, Any], node: str | int, new_class: str, *,
               rename_inputs: Mapping[str, str] | None = None, object_info: Mapping[str, Any] | None = None,
               set_inputs: Mapping[str, Any] | None = None, in_place: bool = False) -> dict:
    """Replace a node's ``class_type`` (e.g. a loader by another), keeping its links.

    ``rename_inputs`` maps old input names to new ones; ``set_inputs`` adds/overrides values. With
    ``object_info`` the result is checked: inputs the new class does not take are dropped (logged)
    and missing required inputs raise :class:`OverrideError`.
    """
    result = prompt if in_place else copy.deepcopy(dict(prompt))
    node_id = resolve_node(result, node)
    entry = result[node_id]
    inputs = dict(entry.get("inputs") or {})
    for old, new in (rename_inputs or {}).items():
        if old not in inputs:
            raise OverrideError(f"node {node_id} ({_describe(entry)}) has no input {old!r} to rename")
        inputs[new] = inputs.pop(old)
    inputs.update(set_inputs or {})
    if object_info is not None:
        info = object_info.get(new_class)
        if info is None:
            raise OverrideError(f"the server does not know node class {new_class!r}")
        declared = info.get("input") or {}
        required = set((declared.get("required") or {}).keys())
        accepted = required | set((declared.get("optional") or {}).keys())
        for name in sorted(set(inputs) - accepted):
            log.info("node %s: %s takes no input %r; dropped", node_id, new_class, name)
            del inputs[name]
        missing = sorted(required - set(inputs))
        if missing:
            raise OverrideError(f"node {node_id}: {new_class} needs input(s) {', '.join(missing)}; pass them in set_inputs")
    entry["class_type"] = new_class
    entry["inputs"] = inputs
    return result


def rename_model(prompt: Mapping[str, Any], old: str, new: str, *, in_place: bool = False) -> tuple[dict, int]:
    """Replace every string input equal to ``old`` (or ending with ``/old``) by ``new``.

    Returns the new prompt and how many inputs changed; a subfolder in the old value is kept when
    ``new`` has none (``flux/a.safetensors`` -> ``flux/b.safetensors``).
    """
    result = prompt if in_place else copy.deepcopy(dict(prompt))
    changed = 0
    for node in result.values():
        inputs = node.get("inputs") or {}
        for name, value in inputs.items():
            if not isinstance(value, str):
                continue
            normalized = value.replace("\\", "/")
            if normalized == old:
                inputs[name] = new
            elif normalized.endswith("/" + old):
                folder = posixpath.dirname(normalized)
                inputs[name] = new if "/" in new else f"{folder}/{new}"
            else:
                continue
            changed += 1
    return result, changed


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _describe(node: Mapping[str, Any]) -> str:
    title = node_title(node)
    return f"{title!r}, {node.get('class_type')}" if title else str(node.get("class_type"))
