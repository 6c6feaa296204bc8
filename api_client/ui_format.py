"""Reading editor (UI) workflow files: format detection, links, subgraph definitions.

Links come as schema 0.4 arrays ``[id, origin_id, origin_slot, target_id, target_slot, type]`` or
schema 1.0 / subgraph objects with those keys. Subgraph definitions live in
``definitions.subgraphs`` (possibly nested inside each other).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .errors import WorkflowFormatError

log = logging.getLogger(__name__)


def is_ui_workflow(data: Any) -> bool:
    """True for an editor export (``nodes`` list + ``links``/``version``), False otherwise."""
    return (
        isinstance(data, Mapping)
        and isinstance(data.get("nodes"), list)
        and any(key in data for key in ("links", "version", "last_node_id", "state", "definitions"))
    )


def is_api_prompt(data: Any) -> bool:
    """True when every entry looks like ``{"class_type": ..., "inputs": {...}}``."""
    if not isinstance(data, Mapping) or not data:
        return False
    return all(isinstance(node, Mapping) and "class_type" in node for node in data.values())


@dataclass
class Link:
    id: Any
    origin_id: Any
    origin_slot: int
    target_id: Any
    target_slot: int
    type: Any


def node_key(value: Any) -> str:
    """Node ids are ints in files but strings in prompts (and ``outer:inner`` paths): compare as text."""
    return str(value)


def parse_links(raw_links: Any, where: str) -> dict[str, Link]:
    links: dict[str, Link] = {}
    if raw_links is None:
        return links
    if not isinstance(raw_links, list):
        raise WorkflowFormatError(f"{where}: 'links' should be a list, got {type(raw_links).__name__}")
    for index, raw in enumerate(raw_links):
        if raw is None:
            continue
        try:
            if isinstance(raw, (list, tuple)):  # schema 0.4
                link = Link(raw[0], raw[1], int(raw[2]), raw[3], int(raw[4]), raw[5] if len(raw) > 5 else None)
            elif isinstance(raw, Mapping):  # schema 1.0 / subgraph definitions
                link = Link(raw["id"], raw["origin_id"], int(raw["origin_slot"]), raw["target_id"],
                             int(raw["target_slot"]), raw.get("type"))
            else:
                raise TypeError(type(raw).__name__)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise WorkflowFormatError(
                f"{where}: links[{index}] should be [id, origin_id, origin_slot, target_id, target_slot, type] "
                f"or an object with those keys, got {raw!r} ({exc})"
            ) from exc
        links[node_key(link.id)] = link
    return links


def numeric_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    try:
        number = int(text)
    except ValueError:
        return None
    return number if str(number) == text else None


def deduplicate_subgraph_ids(workflow: Mapping[str, Any]) -> list[dict]:
    """Copies of the top-level subgraph definitions with node ids that clash with others renumbered.

    Subgraph nodes share the root graph's id space; on load the frontend gives a node whose id is
    already taken (by a root node or an earlier definition) the next free id above ``last_node_id``
    and patches the definition's links. The ``outer:inner`` ids of the prompt use the new ids.
    """
    definitions = (workflow.get("definitions") or {}).get("subgraphs")
    if not isinstance(definitions, list):
        return []
    definitions = copy.deepcopy(definitions)
    state = workflow.get("state") if isinstance(workflow.get("state"), Mapping) else {}
    last = int(workflow.get("last_node_id") or state.get("lastNodeId") or 0)
    used_numbers: set[int] = set()
    used: set[str] = set()
    for node in workflow.get("nodes") or ():
        if isinstance(node, Mapping) and isinstance(node.get("id"), int) and not isinstance(node.get("id"), bool):
            used_numbers.add(node["id"])
            used.add(str(node["id"]))
    for definition in definitions:
        if not isinstance(definition, dict):
            continue
        mapping: dict[str, int] = {}
        for node in definition.get("nodes") or ():
            if not isinstance(node, dict) or "id" not in node:
                continue
            old = str(node["id"])
            if old in used:
                while True:
                    last += 1
                    if last not in used_numbers:
                        break
                mapping[old] = last
                node["id"] = last
                used_numbers.add(last)
                used.add(str(last))
                log.debug("subgraph %s: node id %s renumbered to %s", definition.get("id"), old, last)
            else:
                used.add(old)
                number = numeric_id(node["id"])
                if number is not None:
                    used_numbers.add(number)
                    last = max(last, number)
        if not mapping:
            continue
        for link in definition.get("links") or ():
            if isinstance(link, dict):
                for end in ("origin_id", "target_id"):
                    if str(link.get(end)) in mapping:
                        link[end] = mapping[str(link[end])]
            elif isinstance(link, list) and len(link) > 3:
                for position in (1, 3):
                    if str(link[position]) in mapping:
                        link[position] = mapping[str(link[position])]
    return definitions


def collect_definitions(workflow: Mapping[str, Any], unique_ids: bool = True) -> dict[str, Mapping[str, Any]]:
    """Every subgraph definition by id: the top-level list (node ids de-duplicated unless
    ``unique_ids`` is False, as frontends before 1.36 did not) and nested ones."""
    found: dict[str, Mapping[str, Any]] = {}
    explored: set[str] = set()

    def collect(defs: Any) -> None:
        if not isinstance(defs, list):
            return
        for definition in defs:
            if not isinstance(definition, Mapping) or "id" not in definition:
                continue
            key = str(definition["id"])
            found.setdefault(key, definition)
            if key in explored:
                continue
            explored.add(key)
            collect((definition.get("definitions") or {}).get("subgraphs"))

    collect(deduplicate_subgraph_ids(workflow) if unique_ids else (workflow.get("definitions") or {}).get("subgraphs"))
    return found


def referenced_node_types(workflow: Mapping[str, Any]) -> set[str]:
    """Every node ``type`` used in a UI workflow and its subgraph definitions (subgraph ids excluded)."""
    definitions = collect_definitions(workflow)
    types: set[str] = set()

    def visit(nodes: Iterable[Any]) -> None:
        for node in nodes or ():
            if isinstance(node, Mapping) and "type" in node and str(node["type"]) not in definitions:
                types.add(str(node["type"]))

    visit(workflow.get("nodes") or ())
    for definition in definitions.values():
        visit(definition.get("nodes") or ())
    return types
