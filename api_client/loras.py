"""LoRA stacking: a configuration's ``loras:`` list of ``{name, strength}`` applied to an API prompt.

The workflow's LoRA node (title ``LoRA`` in the shipped workflows) carries the first entry; each
further entry becomes a copy of that node (same class, titled ``LoRA 2``, ``LoRA 3``, ...) chained
after the previous one, and everything that read the original node's outputs reads the last one's.
So ``[{name: identity.safetensors, strength: 1.0}, {name: style.safetensors, strength: 0.5}]``
stacks a style LoRA on the identity LoRA, in that order. ``LoraLoaderModelOnly`` (model only) and
``LoraLoader`` (model + CLIP; both strengths get the entry's strength) are supported.

A strength of 0 keeps the node (ComfyUI then returns the model unchanged without reading the file),
so a strength sweep keeps one graph shape and the file must still exist.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import OverrideError
from .overrides import node_title, resolve_node

LORA_CLASSES = {"LoraLoaderModelOnly": ("strength_model",), "LoraLoader": ("strength_model", "strength_clip")}
#: output slots of each class that the chain passes on (MODEL, and CLIP for LoraLoader)
_CHAINED = {"LoraLoaderModelOnly": {0: "model"}, "LoraLoader": {0: "model", 1: "clip"}}


@dataclass(frozen=True)
class LoraEntry:
    name: str
    strength: float = 1.0


def _next_id(graph: Mapping[str, Any]) -> int:
    numbers = [int(k) for k in graph if str(k).isdigit()]
    return max(numbers, default=0) + 1


def apply_lora_chain(graph: Mapping[str, Any], node: str, loras: Sequence[LoraEntry]) -> dict:
    """A copy of ``graph`` with ``loras`` on the LoRA node ``node`` (id or title) and its new copies."""
    result = copy.deepcopy(dict(graph))
    first = resolve_node(result, node)
    class_type = result[first].get("class_type")
    if class_type not in LORA_CLASSES:
        raise OverrideError(f"node {node!r} is a {class_type}, not a LoRA loader ({', '.join(LORA_CLASSES)})")
    if not loras:
        raise OverrideError("a LoRA chain needs at least one entry")
    consumers = [(nid, name, value[1]) for nid, other in result.items()
                 for name, value in (other.get("inputs") or {}).items()
                 if isinstance(value, list) and len(value) == 2 and str(value[0]) == first]
    title = node_title(result[first]) or node
    previous, next_id = first, _next_id(result)
    for position, entry in enumerate(loras):
        if position == 0:
            current = first
        else:
            current = str(next_id)
            next_id += 1
            result[current] = copy.deepcopy(result[first])
            result[current].setdefault("_meta", {})["title"] = f"{title} {position + 1}"
            for slot, input_name in _CHAINED[class_type].items():
                result[current]["inputs"][input_name] = [previous, slot]
        inputs = result[current]["inputs"]
        inputs["lora_name"] = entry.name
        for strength_input in LORA_CLASSES[class_type]:
            inputs[strength_input] = entry.strength
        previous = current
    for nid, name, slot in consumers:
        result[nid]["inputs"][name] = [previous, slot]
    return result
