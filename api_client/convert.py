"""UI workflow (what the editor saves) -> API prompt (what ``POST /prompt`` runs).

The reference is ComfyUI frontend 1.49's ``app.graphToPrompt()``: its ``ExecutableNodeDTO`` link
resolution, the widget construction of ``addInputs`` and the positional ``widgets_values``
assignment of ``LGraphNode.configure``. Rules implemented here:

* widgets are rebuilt from ``/object_info`` (see :mod:`api_client.node_info`) and filled from
  ``widgets_values`` by position, skipping nothing but widgets the frontend does not serialise;
  helper widgets (``control_after_generate``, upload buttons...) consume a slot but are not sent;
  a ``widgets_values`` *object* (some custom packs) is applied by widget name;
* a linked input replaces the widget of the same name (widget -> input conversion);
* muted nodes (mode 2) are dropped and links from them removed; bypassed nodes (mode 4) pass an
  input of a matching type through (``_getBypassSlotIndex``);
* virtual nodes never reach the prompt: ``Reroute`` is followed, ``PrimitiveNode`` writes its
  value into the widgets it feeds (``applyToGraph``), ``Note``/``MarkdownNote`` vanish;
* subgraphs (``definitions.subgraphs``, nested too) are flattened into ``outer:inner`` ids, their
  inputs/outputs followed across the boundary, and promoted widget values taken from the
  instance's ``widgets_values``;
* links are 0.4 arrays or 1.0 objects; ``_meta.title`` is the node title (or display name);
* string widgets with ``dynamicPrompts`` get comments stripped and ``{a|b}`` choices resolved.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Mapping

from .dynamic_prompts import process_dynamic_prompt
from .errors import ConversionError, WorkflowFormatError
from .node_info import (
    UNDEFINED,
    FrontendRules,
    NodeSpec,
    WidgetSpec,
    expand_dynamic,
    frontend_rules,
    migrate_widgets_values,
    parse_object_info,
    widgets_for_input,
)
from .ui_format import (  # noqa: F401  (re-exported: is_*/referenced_node_types are public here too)
    Link,
    collect_definitions,
    is_api_prompt,
    is_ui_workflow,
    node_key,
    parse_links,
    referenced_node_types,
)

log = logging.getLogger(__name__)

MODE_NEVER = 2  # "muted"
MODE_BYPASS = 4
SUBGRAPH_INPUT_ID = -10
SUBGRAPH_OUTPUT_ID = -20
VIRTUAL_TYPES = frozenset({"Reroute", "PrimitiveNode", "Note", "MarkdownNote"})
_RERUN_FIX_CLASSES = ("KSampler", "KSamplerAdvanced")


# ----------------------------------------------------------------------------- graph model


@dataclass
class _Slot:
    name: str
    type: Any
    link: Any = None
    widget: str | None = None


@dataclass
class _Widget:
    name: str
    value: Any
    spec: WidgetSpec

    @property
    def in_prompt(self) -> bool:
        return self.spec.in_prompt

    @property
    def in_values(self) -> bool:
        return self.spec.in_values


@dataclass
class _Node:
    id: Any
    type: str
    mode: int
    title: str
    where: str
    raw: Mapping[str, Any]
    inputs: list[_Slot] = field(default_factory=list)
    outputs: list[_Slot] = field(default_factory=list)
    widgets: list[_Widget] = field(default_factory=list)
    spec: NodeSpec | None = None
    subgraph: "_Graph | None" = None
    virtual: bool = False
    # subgraph instances: input index -> promoted widget value
    promoted: dict[int, Any] = field(default_factory=dict)

    def widget(self, name: str) -> _Widget | None:
        for widget in self.widgets:
            if widget.name == name:
                return widget
        return None


@dataclass
class _Graph:
    id: str
    name: str
    nodes: dict[str, _Node]
    links: dict[str, Link]
    io_inputs: list[dict]
    io_outputs: list[dict]
    order: list[str]


# ----------------------------------------------------------------------------- converter


class _Converter:
    def __init__(self, workflow: Mapping[str, Any], specs: Mapping[str, NodeSpec], rng: Any,
                 allow_unknown: bool, frontend: FrontendRules):
        self.workflow = workflow
        self.specs = specs
        self.rng = rng
        self.allow_unknown = allow_unknown
        self.frontend = frontend
        self.definitions = collect_definitions(workflow, unique_ids=frontend.unique_subgraph_ids)
        self.graphs: dict[str, _Graph] = {}
        self._building: set[str] = set()

    # -- configuration (what LGraph.configure + the Comfy node classes do on load)

    def graph(self, graph_id: str) -> _Graph:
        if graph_id in self.graphs:
            return self.graphs[graph_id]
        if graph_id in self._building:
            raise ConversionError(f"subgraph {graph_id!r} contains itself (directly or through nested subgraphs)")
        self._building.add(graph_id)
        try:
            definition = self.definitions[graph_id]
            built = self._build_graph(definition, graph_id, f"subgraph {definition.get('name') or graph_id!r}")
        finally:
            self._building.discard(graph_id)
        self.graphs[graph_id] = built
        return built

    def _build_graph(self, data: Mapping[str, Any], graph_id: str, where: str) -> _Graph:
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, list):
            raise WorkflowFormatError(f"{where}: 'nodes' should be a list")
        links = parse_links(data.get("links"), where)
        graph = _Graph(graph_id, str(data.get("name") or graph_id), {}, links,
                       list(data.get("inputs") or []), list(data.get("outputs") or []), [])
        for index, raw in enumerate(raw_nodes):
            if not isinstance(raw, Mapping) or "id" not in raw or "type" not in raw:
                raise WorkflowFormatError(f"{where}: nodes[{index}] should be an object with 'id' and 'type'")
            node = self._configure_node(raw, graph, f"{where} node {raw['id']}")
            graph.nodes[node_key(node.id)] = node
            graph.order.append(node_key(node.id))
        self._apply_primitives(graph)
        return graph

    def _configure_node(self, raw: Mapping[str, Any], graph: _Graph, where: str) -> _Node:
        node_type = str(raw["type"])
        mode = int(raw.get("mode") or 0)
        node = _Node(id=raw["id"], type=node_type, mode=mode, title="", where=where, raw=raw)
        saved_inputs = [_saved_slot(slot) for slot in raw.get("inputs") or [] if isinstance(slot, Mapping)]
        saved_outputs = [_saved_slot(slot) for slot in raw.get("outputs") or [] if isinstance(slot, Mapping)]
        if node_type in self.definitions:
            node.subgraph = self.graph(node_type)
            node.virtual = True
            node.title = str(raw.get("title") or self.definitions[node_type].get("name") or node_type)
            self._configure_subgraph_instance(node, saved_inputs)
        elif node_type in self.specs:
            spec = self.specs[node_type]
            node.spec = spec
            node.title = str(raw.get("title") or spec.title)
            self._configure_widgets(node, raw.get("widgets_values"))
            dynamic_values = {w.name: w.value for w in node.widgets if w.spec.dynamic_options is not None}
            node.inputs = _merge_inputs(spec.socket_inputs(dynamic_values), saved_inputs, dynamic_values,
                                        spec.dynamic_autogrow_names(dynamic_values))
            node.outputs = [_Slot(name, out_type) for name, out_type in spec.outputs]
        else:
            node.virtual = node_type in VIRTUAL_TYPES
            node.title = str(raw.get("title") or node_type)
            node.inputs = saved_inputs
            node.outputs = saved_outputs
        return node

    def _configure_widgets(self, node: _Node, values: Any) -> None:
        spec = node.spec
        assert spec is not None
        layout = spec.base_widgets()
        node.widgets = []
        for widget_spec in layout:
            for expanded in expand_dynamic(widget_spec, widget_spec.default):
                node.widgets.append(_Widget(expanded.name, expanded.default, expanded))
        if spec.class_type == "CustomCombo":
            self._configure_custom_combo(node, values)
            return
        if isinstance(values, Mapping):
            # Not a core-frontend shape: some custom packs save widget values by name.
            for widget in node.widgets:
                if widget.in_values and widget.name in values:
                    self._set_widget(node, widget, values[widget.name])
        elif isinstance(values, list):
            values = migrate_widgets_values(spec, {w.name for w in node.widgets}, values)
            position = 0
            index = 0
            while index < len(node.widgets):
                widget = node.widgets[index]
                if widget.in_values:
                    if position >= len(values):
                        break
                    self._set_widget(node, widget, values[position])
                    position += 1
                index += 1
        elif values is not None:
            raise WorkflowFormatError(f"{node.where} ({node.type}): 'widgets_values' should be a list, got {values!r}")
        self._post_load_fixes(node)

    def _set_widget(self, node: _Node, widget: _Widget, value: Any) -> None:
        widget.value = value
        if widget.spec.dynamic_options is None:
            return
        # A DynamicCombo replaces the widgets of its previous option by those of the new one,
        # right after itself; the positional assignment then continues into them.
        prefix = widget.name + "."
        position = node.widgets.index(widget)
        node.widgets = [w for w in node.widgets if not w.name.startswith(prefix)]
        subs: list[_Widget] = []
        for sub in widget.spec.dynamic_options.get(str(value), ()):
            for sub_widget in widgets_for_input(sub):
                for expanded in expand_dynamic(sub_widget, sub_widget.default):
                    subs.append(_Widget(expanded.name, expanded.default, expanded))
        node.widgets[position + 1:position + 1] = subs

    def _configure_custom_combo(self, node: _Node, values: Any) -> None:
        # CustomCombo (frontend extension): [choice, index (computed), option1, option2, ...]
        # (frontend 1.35: [choice, option0, option1, ...]); every non-empty option adds a new empty
        # option widget after it.
        values = list(values) if isinstance(values, list) else []
        choice_spec = node.widgets[0].spec if node.widgets else WidgetSpec("choice", "combo")
        choice = _Widget("choice", values[0] if values else "", choice_spec)
        with_index = self.frontend.custom_combo_index
        first = 1 if with_index else 0
        options: list[_Widget] = []
        position = 2 if with_index else 1
        while True:
            value = values[position] if position < len(values) else ""
            name = f"option{len(options) + first}"
            options.append(_Widget(name, value, WidgetSpec(name, "text", "")))
            position += 1
            if not value or position > len(values):
                break
        if not with_index:
            node.widgets = [choice] + options
            return
        option_values = [w.value for w in options]
        index = option_values.index(choice.value) if choice.value in option_values else -1
        node.widgets = [choice, _Widget("index", index, WidgetSpec("index", "hidden", 0))] + options

    @staticmethod
    def _post_load_fixes(node: _Node) -> None:
        # The same clean-ups app.loadGraphData() runs after configuring a graph.
        for widget in node.widgets:
            if node.type in _RERUN_FIX_CLASSES:
                if widget.name == "sampler_name" and isinstance(widget.value, str) and widget.value.startswith("sample_"):
                    widget.value = widget.value[7:]
                if widget.spec.kind == "control" and isinstance(widget.value, bool):
                    widget.value = "randomize" if widget.value else "fixed"
            if widget.spec.kind in ("combo", "control", "dynamic_combo") and (widget.value is None or widget.value is UNDEFINED):
                options = widget.spec.options if widget.spec.kind != "control" else ("fixed",)
                if options:
                    widget.value = options[0]

    def _configure_subgraph_instance(self, node: _Node, saved_inputs: list[_Slot]) -> None:
        sub = node.subgraph
        assert sub is not None
        # The instance has exactly the definition's inputs, in its order; saved inputs (the editor
        # drops unlinked widget inputs when saving) contribute their links by name.
        by_name = {saved.name: saved for saved in saved_inputs}
        slots = sub.io_inputs
        node.inputs = []
        for slot in slots:
            saved = by_name.get(str(slot.get("name", "")))
            node.inputs.append(_Slot(str(slot.get("name", "")), slot.get("type"), saved.link if saved else None,
                                     saved.widget if saved else None))
        node.outputs = [_Slot(str(out.get("name", "")), out.get("type")) for out in sub.io_outputs]
        for position, slot in enumerate(slots):
            value = self._promoted_source_value(sub, slot)
            if value is not _NO_WIDGET:
                node.promoted[position] = value
        values = node.raw.get("widgets_values") if self.frontend.instance_widget_values else None
        if isinstance(values, list):
            cursor = 0
            for position in sorted(node.promoted):
                if cursor < len(values):
                    node.promoted[position] = values[cursor]
                cursor += 1

    def _promoted_source_value(self, sub: _Graph, slot: Mapping[str, Any]) -> Any:
        for link_id in slot.get("linkIds") or ():
            link = sub.links.get(node_key(link_id))
            if link is None:
                continue
            target = sub.nodes.get(node_key(link.target_id))
            if target is None:
                continue
            target_input = next((i for i in target.inputs if node_key(i.link) == node_key(link_id)), None)
            if target_input is None:
                continue
            if target.subgraph is not None:
                position = target.inputs.index(target_input)
                if position in target.promoted:
                    return target.promoted[position]
                continue
            if target_input.widget:
                widget = target.widget(target_input.widget)
                if widget is not None:
                    return widget.value
        return _NO_WIDGET

    def _apply_primitives(self, graph: _Graph) -> None:
        # PrimitiveNode.applyToGraph: its value is written into every widget it feeds.
        for node_id in graph.order:
            node = graph.nodes[node_id]
            if node.type != "PrimitiveNode":
                continue
            out_links = [link for link in graph.links.values() if node_key(link.origin_id) == node_id and link.origin_slot == 0]
            if not out_links:
                continue
            values = node.raw.get("widgets_values")
            if not isinstance(values, list) or not values:
                continue  # the primitive copies its target's value: nothing changes
            value = values[0]
            if (node.raw.get("properties") or {}).get("Run widget replace on values") and value:
                log.warning("%s: 'Run widget replace on values' is not supported; using the raw value", node.where)
            for link in out_links:
                target = graph.nodes.get(node_key(link.target_id))
                if target is None:
                    continue
                target_input = next((i for i in target.inputs if node_key(i.link) == node_key(link.id)), None)
                if target_input is None or not target_input.widget:
                    continue
                widget = target.widget(target_input.widget)
                if widget is None:
                    log.warning("%s: primitive feeds %r on node %s, which has no such widget", node.where, target_input.widget, target.id)
                    continue
                widget.value = value

    # -- flattening (ExecutableNodeDTO)

    def run(self) -> dict[str, dict]:
        root = self._build_graph(self.workflow, "root", "workflow")
        self.executables: dict[str, _Exec] = {}
        for node_id in _execution_order(root):
            node = root.nodes[node_id]
            dto = _Exec(node, (), None, root)
            self.executables[dto.id] = dto
            if node.subgraph is not None and node.mode not in (MODE_NEVER, MODE_BYPASS):
                self._add_inner(node, ())
        unknown = {}
        for dto in self.executables.values():
            node = dto.node
            if node.spec is None and not node.virtual and node.mode not in (MODE_NEVER, MODE_BYPASS):
                unknown.setdefault(node.type, []).append(dto.id)
        if unknown and not self.allow_unknown:
            listing = "; ".join(f"{t} (node {', '.join(ids)})" for t, ids in sorted(unknown.items()))
            raise ConversionError(
                f"the server does not know these node types (install their custom nodes, or mute/bypass "
                f"the nodes): {listing}"
            )
        for node_type, ids in unknown.items():
            log.warning("unknown node type %s (node %s): sent with its links only", node_type, ", ".join(ids))
        prompt: dict[str, dict] = {}
        for dto in self.executables.values():
            node = dto.node
            if node.virtual or node.mode in (MODE_NEVER, MODE_BYPASS):
                continue
            inputs: dict[str, Any] = {}
            for widget in node.widgets:
                if not widget.name or not widget.in_prompt:
                    continue
                value = self._serialize_widget(widget)
                if value is UNDEFINED:
                    inputs.pop(widget.name, None)
                else:
                    inputs[widget.name] = value
            for index, slot in enumerate(node.inputs):
                resolved = self._resolve_input(dto, index, set(), None)
                if resolved is None:
                    continue
                if isinstance(resolved, _WidgetValue):
                    value = resolved.value
                    if value is UNDEFINED:
                        inputs.pop(slot.name, None)
                    else:
                        inputs[slot.name] = {"__value__": value} if isinstance(value, list) else value
                    continue
                inputs[slot.name] = [resolved.origin, int(resolved.slot)]
            prompt[dto.id] = {"inputs": inputs, "class_type": node.type, "_meta": {"title": node.title}}
        for entry in prompt.values():
            for name, value in list(entry["inputs"].items()):
                if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and value[0] not in prompt:
                    del entry["inputs"][name]
        return prompt

    def _add_inner(self, instance: _Node, path: tuple[str, ...]) -> None:
        sub = instance.subgraph
        assert sub is not None
        inner_path = path + (node_key(instance.id),)
        for node_id in sub.order:
            inner = sub.nodes[node_id]
            dto = _Exec(inner, inner_path, instance, sub)
            self.executables[dto.id] = dto
            if inner.subgraph is not None:
                # The frontend descends into nested instances whatever their mode.
                self._add_inner(inner, inner_path)

    def _serialize_widget(self, widget: _Widget) -> Any:
        value = widget.value
        if value is UNDEFINED:
            return UNDEFINED
        if widget.spec.dynamic_prompts and isinstance(value, str):
            value = process_dynamic_prompt(value, self.rng)
        if isinstance(value, list):
            if widget.spec.kind == "curve":
                return {"__type__": "CURVE", "__value__": value}
            return {"__value__": value}
        return value

    def _resolve_input(self, dto: "_Exec", slot: int, visited: set, type_hint: Any) -> "_Resolved | _WidgetValue | None":
        key = (dto.id, "I", slot)
        if key in visited:
            raise ConversionError(f"circular link while resolving input {slot} of node {dto.id} ({dto.node.title})")
        visited.add(key)
        if slot >= len(dto.node.inputs):
            raise ConversionError(f"node {dto.id} ({dto.node.title}) has no input slot {slot}")
        inp = dto.node.inputs[slot]
        if inp.link is None:
            return None
        link = dto.graph.links.get(node_key(inp.link))
        if link is None:
            log.warning("%s: input %r refers to missing link %s; treated as unconnected", dto.node.where, inp.name, inp.link)
            return None
        instance = dto.instance
        if instance is not None and node_key(link.origin_id) == node_key(SUBGRAPH_INPUT_ID):
            if link.origin_slot >= len(instance.inputs):
                raise ConversionError(
                    f"subgraph instance {instance.id} ({instance.title}) has no input {link.origin_slot} "
                    f"(needed by node {dto.id})"
                )
            outer = instance.inputs[link.origin_slot]
            if outer.link is None:
                if link.origin_slot in instance.promoted:
                    return _WidgetValue(instance.promoted[link.origin_slot])
                return None
            parent = self.executables.get(":".join(dto.path))
            if parent is None:
                raise ConversionError(f"no executable entry for subgraph instance {':'.join(dto.path)}")
            return self._resolve_input(parent, link.origin_slot, visited, None)
        origin = dto.graph.nodes.get(node_key(link.origin_id))
        if origin is None:
            log.warning("%s: link %s comes from missing node %s; treated as unconnected", dto.node.where, link.id, link.origin_id)
            return None
        origin_dto = self.executables.get(":".join(dto.path + (node_key(origin.id),)))
        if origin_dto is None:
            raise ConversionError(f"no executable entry for node {':'.join(dto.path + (node_key(origin.id),))}")
        return self._resolve_output(origin_dto, link.origin_slot, type_hint if type_hint is not None else inp.type, visited)

    def _resolve_output(self, dto: "_Exec", slot: int, type_: Any, visited: set) -> "_Resolved | _WidgetValue | None":
        key = (dto.id, "O", slot)
        if key in visited:
            raise ConversionError(f"circular link while resolving output {slot} of node {dto.id} ({dto.node.title})")
        visited.add(key)
        node = dto.node
        if node.mode == MODE_NEVER:
            return None
        if node.mode == MODE_BYPASS:
            index = _bypass_slot_index(node, slot, type_)
            if index == -1:
                log.debug("bypassed node %s has no input matching type %s", dto.id, type_)
                return None
            return self._resolve_input(dto, index, visited, None)
        if node.subgraph is not None:
            return self._resolve_subgraph_output(dto, slot, type_, visited)
        if node.virtual:
            if slot < len(node.inputs) and node.inputs[slot].link is not None:
                link = dto.graph.links.get(node_key(node.inputs[slot].link))
                if link is not None:
                    return self._resolve_input(dto, slot, visited, type_)
            return None
        return _Resolved(dto.id, slot)

    def _resolve_subgraph_output(self, dto: "_Exec", slot: int, type_: Any, visited: set):
        instance = dto.node
        sub = instance.subgraph
        assert sub is not None
        if slot >= len(sub.io_outputs):
            raise ConversionError(f"subgraph instance {dto.id} ({instance.title}) has no output {slot}")
        link = None
        for link_id in sub.io_outputs[slot].get("linkIds") or ():
            link = sub.links.get(node_key(link_id))
            if link is not None:
                break
        if link is None:
            log.debug("subgraph output %s of %s is not connected inside", slot, dto.id)
            return None
        if node_key(link.origin_id) == node_key(SUBGRAPH_INPUT_ID):
            raise ConversionError(
                f"subgraph {sub.name!r} output {slot} is wired straight to one of its inputs; "
                "the frontend cannot convert that either"
            )
        inner = self.executables.get(":".join(dto.path + (node_key(instance.id), node_key(link.origin_id))))
        if inner is None:
            raise ConversionError(f"no executable entry for node {link.origin_id} inside {dto.id}")
        return self._resolve_output(inner, link.origin_slot, type_, visited)


_NO_WIDGET = object()


@dataclass
class _Resolved:
    origin: str
    slot: int


@dataclass
class _WidgetValue:
    value: Any


@dataclass
class _Exec:
    node: _Node
    path: tuple[str, ...]
    instance: _Node | None
    graph: _Graph

    @property
    def id(self) -> str:
        return ":".join(self.path + (node_key(self.node.id),))


def _saved_slot(raw: Mapping[str, Any]) -> _Slot:
    widget = raw.get("widget")
    widget_name = widget.get("name") if isinstance(widget, Mapping) else None
    return _Slot(str(raw.get("name", "")), raw.get("type"), raw.get("link"), widget_name)


def _merge_inputs(defaults: list[tuple[str, str, str | None]], saved: list[_Slot],
                  dynamic_values: Mapping[str, Any], kept_groups: tuple[str, ...] = ()) -> list[_Slot]:
    """The frontend's input list: the definition's slots (with saved links by name), then the
    saved extras (Autogrow groups, legacy inputs). Saved inputs of a DynamicCombo option that is not
    chosen are dropped, except Autogrow groups inside the chosen option."""
    by_name: dict[str, _Slot] = {}
    for slot in saved:
        by_name.setdefault(slot.name, slot)
    merged = []
    names = set()
    for name, slot_type, widget in defaults:
        stored = by_name.get(name)
        merged.append(_Slot(name, slot_type, stored.link if stored else None, widget))
        names.add(name)
    prefixes = tuple(f"{name}." for name in dynamic_values)
    kept = tuple(f"{name}." for name in kept_groups)
    for slot in saved:
        if slot.name in names:
            continue
        if prefixes and slot.name.startswith(prefixes) and not (kept and slot.name.startswith(kept)):
            continue
        names.add(slot.name)
        merged.append(slot)
    return merged


def is_valid_connection(type_a: Any, type_b: Any) -> bool:
    """LiteGraph's type compatibility: ``*``/empty match anything, comma lists match on overlap."""
    a = 0 if type_a in ("", "*") else type_a
    b = 0 if type_b in ("", "*") else type_b
    if not a or not b or a == b:
        return True
    a, b = str(a).lower(), str(b).lower()
    if "," not in a and "," not in b:
        return a == b
    return any(is_valid_connection(x, y) for x in a.split(",") for y in b.split(","))


def _bypass_slot_index(node: _Node, slot: int, type_: Any) -> int:
    inputs = node.inputs
    if slot >= len(node.outputs):
        raise ConversionError(f"bypassed node {node.id} ({node.title}) has no output {slot}")
    out_type = node.outputs[slot].type
    if type_ in ("*", ""):
        return slot if len(inputs) > slot else 0
    current = inputs[slot] if slot < len(inputs) else None
    if current is not None and is_valid_connection(current.type, out_type) and is_valid_connection(current.type, type_):
        return slot
    for index, inp in enumerate(inputs):
        if inp.type == type_:
            return index
    for index, inp in enumerate(inputs):
        if is_valid_connection(inp.type, out_type) and is_valid_connection(inp.type, type_):
            return index
    return -1


def _execution_order(graph: _Graph) -> list[str]:
    """Dependencies first (Kahn), ties broken by the workflow's own node order."""
    position = {node_id: index for index, node_id in enumerate(graph.order)}
    deps: dict[str, set[str]] = {node_id: set() for node_id in graph.order}
    for link in graph.links.values():
        origin, target = node_key(link.origin_id), node_key(link.target_id)
        if origin in deps and target in deps and origin != target:
            deps[target].add(origin)
    done: list[str] = []
    remaining = dict(deps)
    while remaining:
        ready = [n for n, d in remaining.items() if not (d & remaining.keys())]
        if not ready:  # a cycle: keep the rest in file order
            ready = sorted(remaining, key=position.__getitem__)
        ready.sort(key=position.__getitem__)
        for node_id in ready:
            done.append(node_id)
            del remaining[node_id]
    return done


def ui_to_api(workflow: Mapping[str, Any], object_info: Mapping[str, Any], *, seed: int | None = None,
              rng: Any = None, allow_unknown: bool = False,
              frontend: str | FrontendRules | None = None) -> dict[str, dict]:
    """Convert a UI-format workflow to an API prompt, as the frontend's ``graphToPrompt`` does.

    ``object_info`` is the server's ``/object_info`` answer (or the subset covering the workflow's
    node types). ``seed`` seeds the random ``{a|b}`` choices of dynamic-prompt widgets (``rng``,
    any object with a ``random()`` method, replaces the generator entirely). ``frontend`` is the
    web frontend version whose rules to follow (the server's ``required_frontend_version``; None:
    the current rules, see :func:`~api_client.node_info.frontend_rules`). Raises
    :class:`ConversionError` for node types the server does not know (unless muted/bypassed, or
    ``allow_unknown``) and :class:`WorkflowFormatError` for malformed files.
    """
    if not is_ui_workflow(workflow):
        if is_api_prompt(workflow):
            raise WorkflowFormatError("this is already an API-format prompt; nothing to convert")
        raise WorkflowFormatError("not a UI workflow: expected an object with a 'nodes' list and 'links'")
    rules = frontend_rules(frontend)
    specs = parse_object_info(object_info, rules)
    converter = _Converter(workflow, specs, rng if rng is not None else random.Random(seed), allow_unknown, rules)
    return converter.run()
