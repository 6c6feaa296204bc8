"""Node definitions from ComfyUI's ``/object_info``, seen the way the web frontend sees them.

The frontend turns every widget-capable input into one or more *widgets*; a saved UI workflow
stores their values positionally in ``widgets_values``. Converting a workflow therefore needs the
exact widget list the frontend builds for each node class, including the helper widgets that take
a ``widgets_values`` slot without being sent to the server (``control_after_generate``, the image
``upload`` button, ...). This module derives that list from an ``/object_info`` entry; the rules
mirror ComfyUI frontend 1.49 (``addInputs`` / ``useIntWidget`` / ``addValueControlWidgets`` /
the upload and remote-combo extensions), and :class:`FrontendRules` holds where the 1.35 frontend
of ComfyUI 0.8.0 differs.

Both input shapes the server emits are accepted: V1 combos ``[[options], {...}]`` and V3 combos
``["COMBO", {"options": [...]}]``; hidden inputs are ignored (they never carry widget values).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .errors import ObjectInfoError

log = logging.getLogger(__name__)


class _Undefined:
    """JavaScript's ``undefined``: a widget without a value, left out of the API prompt."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Undefined()


@dataclass(frozen=True)
class FrontendRules:
    """Where ComfyUI web frontends build or flatten a graph differently.

    Checked against the frontends the supported ComfyUI range bundles: 1.35.9 (ComfyUI 0.8.0) and
    1.49.6 (0.33.0), over each one's template library (tests/integration/test_convert_templates.py).
    """

    name: str
    #: 1.49 (``ensureGlobalIdUniqueness``): a subgraph node whose id another graph already uses is
    #: renumbered on load, which changes its ``outer:inner`` prompt id; 1.35 keeps the saved ids.
    unique_subgraph_ids: bool = True
    #: 1.49: a subgraph instance's ``widgets_values`` set its promoted widgets; 1.35 ignores them.
    instance_widget_values: bool = True
    #: 1.35: the audio player widget (``audioUI``) is sent in the prompt, as "".
    sends_audio_ui: bool = False
    #: 1.35: CustomCombo's option widgets start at ``option0`` and it has no ``index`` widget.
    custom_combo_index: bool = True


CURRENT_FRONTEND = FrontendRules("1.49")
LEGACY_FRONTEND = FrontendRules("1.35", unique_subgraph_ids=False, instance_widget_values=False,
                                sends_audio_ui=True, custom_combo_index=False)
#: Frontends older than this follow :data:`LEGACY_FRONTEND` (1.35.9 is the one verified; the versions
#: between 1.35 and 1.49 were not available to check and get the current rules).
LEGACY_BEFORE = (1, 36)


def frontend_rules(version: str | FrontendRules | None) -> FrontendRules:
    """The rules of frontend ``version`` ("1.35.9"; what ``/system_stats`` calls
    ``required_frontend_version``); None or an unreadable version: the current rules."""
    if isinstance(version, FrontendRules):
        return version
    parts = []
    for part in str(version or "").lstrip("v").split(".")[:2]:
        if not part.isdigit():
            return CURRENT_FRONTEND
        parts.append(int(part))
    if len(parts) == 2 and tuple(parts) < LEGACY_BEFORE:
        return LEGACY_FRONTEND
    return CURRENT_FRONTEND

# Input types the core frontend renders as widgets (its `ComfyWidgets` registry) plus the
# DynamicCombo. Any other type is a link-only socket.
WIDGET_TYPES = frozenset(
    {
        "INT", "FLOAT", "BOOLEAN", "STRING", "MARKDOWN", "COMBO", "IMAGEUPLOAD", "COLOR",
        "IMAGECOMPARE", "BOUNDING_BOX", "CHART", "GALLERIA", "PAINTER", "COMPOSITOR", "TEXTAREA",
        "CURVE", "RANGE", "VIDEO_EDIT", "BOUNDING_BOXES", "COLORS", "COMFY_DYNAMICCOMBO_V3",
        # widgets registered by the frontend's bundled extensions
        "LOAD_3D", "WEBCAM", "AUDIO_RECORD", "AUDIO_UI", "AUDIOUPLOAD",
    }
)
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
AUTOGROW = "COMFY_AUTOGROW_V3"
MATCH_TYPE = "COMFY_MATCHTYPE_V3"
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
# INT inputs with these names get a seed control widget unless the spec says otherwise.
_SEED_NAMES = ("seed", "noise_seed")
# Widgets the frontend's 3D extension adds to these classes although /object_info does not list them.
_CLASS_EXTRA_WIDGETS: dict[str, tuple["WidgetSpec", ...]] = {}
# Upload flags on combo inputs -> the extra input(s) the upload extensions append.
_UPLOAD_FLAGS = ("image_upload", "video_upload", "animated_image_upload")


@dataclass(frozen=True)
class InputSpec:
    """One declared input: ``type`` is ``"COMBO"`` for combos, ``options`` the combo choices."""

    name: str
    type: str
    optional: bool
    config: Mapping[str, Any]
    options: tuple | None = None

    @property
    def force_input(self) -> bool:
        return bool(self.config.get("forceInput"))

    @property
    def widget_type(self) -> str:
        return str(self.config.get("widgetType") or self.type)

    @property
    def is_widget(self) -> bool:
        return self.widget_type in WIDGET_TYPES and not self.force_input

    @property
    def socketless(self) -> bool:
        return bool(self.config.get("socketless"))


@dataclass(frozen=True)
class WidgetSpec:
    """One frontend widget.

    ``in_values``: it takes a ``widgets_values`` slot; ``in_prompt``: its value is sent to the server.
    ``kind`` is the frontend widget kind (``number``, ``combo``, ``text``, ``control``, ``button``...).
    """

    name: str
    kind: str
    default: Any = UNDEFINED
    in_values: bool = True
    in_prompt: bool = True
    dynamic_prompts: bool = False
    options: tuple | None = None
    # For a DynamicCombo: option key -> the sub-inputs that appear when that option is chosen.
    dynamic_options: Mapping[str, tuple[InputSpec, ...]] | None = None
    source: InputSpec | None = None


@dataclass(frozen=True)
class NodeSpec:
    """What the frontend builds for one node class before a saved workflow is applied to it."""

    class_type: str
    display_name: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[tuple[str, str], ...]
    output_node: bool
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)
    frontend: FrontendRules = CURRENT_FRONTEND

    @property
    def title(self) -> str:
        return self.display_name or self.class_type

    def input(self, name: str) -> InputSpec | None:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        return None

    def base_widgets(self) -> list[WidgetSpec]:
        """The widget list before DynamicCombo expansion, including extension-added widgets."""
        widgets: list[WidgetSpec] = []
        for spec in self.ordered_inputs():
            widgets.extend(widgets_for_input(spec, self.class_type))
        extra = _LEGACY_CLASS_WIDGETS if self.frontend is LEGACY_FRONTEND else _CLASS_EXTRA_WIDGETS
        widgets.extend(extra.get(self.class_type, ()))
        return widgets

    def widget_layout(self, dynamic_values: Mapping[str, Any] | None = None) -> list[WidgetSpec]:
        """The widget list of a fresh node (DynamicCombos expanded for their default option)."""
        widgets = self.base_widgets()
        expanded: list[WidgetSpec] = []
        for widget in widgets:
            expanded.extend(expand_dynamic(widget, (dynamic_values or {}).get(widget.name, widget.default)))
        return expanded

    def ordered_inputs(self) -> list[InputSpec]:
        """Inputs in the frontend's order: ``input_order`` required, then optional, then the rest."""
        order = self.raw.get("input_order") if isinstance(self.raw, Mapping) else None
        if not order:
            return list(self.inputs)
        by_name = {spec.name: spec for spec in self.inputs}
        ordered: list[InputSpec] = []
        for name in order.get("required") or ():
            spec = by_name.get(name)
            if spec is not None and not spec.optional:
                ordered.append(spec)
        for name in order.get("optional") or ():
            spec = by_name.get(name)
            if spec is not None and spec.optional:
                ordered.append(spec)
        seen = {spec.name for spec in ordered}
        ordered.extend(spec for spec in self.inputs if spec.name not in seen)
        return ordered

    def socket_inputs(self, dynamic_values: Mapping[str, Any] | None = None) -> list[tuple[str, str, str | None]]:
        """The input slots of a fresh node as ``(name, type, widget_name)``, in the frontend's order.

        Link-only sockets come first, then one socket per (non-socketless) widget input; this order
        matters when a bypassed node picks which input to pass through.
        """
        ordered = self.ordered_inputs()
        slots: list[tuple[str, str, str | None]] = []
        for spec in ordered:
            if spec.is_widget:
                continue
            if spec.type == AUTOGROW:
                slots.extend(_autogrow_default_slots(spec))
            else:
                slots.append((spec.name, spec.type, None))
        for spec in ordered:
            if spec.is_widget and not spec.socketless:
                slots.append((spec.name, spec.type, spec.name))
                if spec.widget_type == DYNAMIC_COMBO:
                    chosen = (dynamic_values or {}).get(spec.name, _combo_default(spec))
                    for sub in _dynamic_sub_inputs(spec).get(str(chosen), ()):
                        if sub.type == AUTOGROW:
                            slots.extend(_autogrow_default_slots(sub))
                        else:
                            slots.append((sub.name, sub.type, sub.name if sub.is_widget else None))
        return slots

    def dynamic_autogrow_names(self, dynamic_values: Mapping[str, Any]) -> tuple[str, ...]:
        """Names of the Autogrow inputs inside the chosen options of this node's DynamicCombos."""
        names = []
        for spec in self.inputs:
            if spec.widget_type != DYNAMIC_COMBO:
                continue
            chosen = dynamic_values.get(spec.name, _combo_default(spec))
            names += [sub.name for sub in _dynamic_sub_inputs(spec).get(str(chosen), ()) if sub.type == AUTOGROW]
        return tuple(names)


def _autogrow_default_slots(spec: InputSpec) -> list[tuple[str, str, str | None]]:
    template = spec.config.get("template") or {}
    inputs = template.get("input") or {}
    names = template.get("names")
    minimum = int(template.get("min", 1) or 0)
    prefix = template.get("prefix") or ""
    specs = [s for part in ("required", "optional") for s in (inputs.get(part) or {}).items()]
    slots = []
    for index in range(max(minimum + 1, 1)):
        if names:
            if index >= len(names):
                break
            slot_name = names[index]
        else:
            slot_name = f"{prefix}{index}"
        for _inner, inner_spec in specs:
            slot_type = inner_spec[0] if isinstance(inner_spec[0], str) else "COMBO"
            slots.append((f"{spec.name}.{slot_name}", slot_type, None))
    return slots


def _combo_options(raw_spec: list | tuple, config: Mapping[str, Any]) -> tuple | None:
    head = raw_spec[0] if raw_spec else None
    if isinstance(head, (list, tuple)):
        return tuple(head)
    if head == "COMBO":
        options = config.get("options")
        return tuple(options) if isinstance(options, (list, tuple)) else ()
    return None


def parse_input_spec(name: str, raw_spec: Any, optional: bool, where: str) -> InputSpec:
    """Parse one ``/object_info`` input entry (``[TYPE, {config}]``) into an :class:`InputSpec`."""
    if isinstance(raw_spec, str):  # V1 hidden-style bare string; treat as a link type
        return InputSpec(name, raw_spec, optional, {})
    if not isinstance(raw_spec, (list, tuple)) or not raw_spec:
        raise ObjectInfoError(f"{where}: input {name!r} should be [TYPE, {{options}}], got {raw_spec!r}")
    config = raw_spec[1] if len(raw_spec) > 1 and isinstance(raw_spec[1], Mapping) else {}
    options = _combo_options(raw_spec, config)
    if options is not None:
        return InputSpec(name, "COMBO", optional, config, options)
    head = raw_spec[0]
    if not isinstance(head, str):
        return InputSpec(name, "UNKNOWN", optional, config)
    return InputSpec(name, head, optional, config)


def parse_node_spec(class_type: str, info: Mapping[str, Any], frontend: FrontendRules = CURRENT_FRONTEND) -> NodeSpec:
    """Build a :class:`NodeSpec` from one ``/object_info`` entry, as ``frontend`` sees it."""
    where = f"object_info[{class_type!r}]"
    if not isinstance(info, Mapping):
        raise ObjectInfoError(f"{where} should be an object, got {type(info).__name__}")
    declared = info.get("input") or {}
    if not isinstance(declared, Mapping):
        raise ObjectInfoError(f"{where}.input should be an object")
    sections: dict[str, list[InputSpec]] = {}
    for part, optional in (("required", False), ("optional", True)):
        section = declared.get(part) or {}
        if not isinstance(section, Mapping):
            raise ObjectInfoError(f"{where}.input.{part} should be an object")
        sections[part] = [parse_input_spec(name, raw_spec, optional, where) for name, raw_spec in section.items()]
    # The upload extensions add their inputs to the *required* section of the definition.
    extra = _extension_inputs(sections["required"] + sections["optional"], frontend)
    inputs = sections["required"] + extra + sections["optional"]
    raw_outputs = info.get("output") or []
    names = info.get("output_name") or []
    outputs = []
    for index, out_type in enumerate(raw_outputs):
        out_name = names[index] if index < len(names) and names[index] else f"output_{index}"
        if isinstance(out_type, (list, tuple)):
            out_type = "COMBO"
        elif out_type == MATCH_TYPE:
            out_type = "*"
        outputs.append((out_name, str(out_type)))
    return NodeSpec(
        class_type=class_type,
        display_name=str(info.get("display_name") or info.get("name") or class_type),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        output_node=bool(info.get("output_node")),
        raw=info,
        frontend=frontend,
    )


def _extension_inputs(inputs: Iterable[InputSpec], frontend: FrontendRules = CURRENT_FRONTEND) -> list[InputSpec]:
    """Inputs the frontend's upload extensions append to a node definition."""
    extra: list[InputSpec] = []
    for spec in inputs:
        if spec.type != "COMBO":
            continue
        if any(spec.config.get(flag) for flag in _UPLOAD_FLAGS):
            extra.append(InputSpec("upload", "IMAGEUPLOAD", False, {"imageInputName": spec.name}))
        elif spec.config.get("audio_upload"):
            extra.append(InputSpec("audioUI", "AUDIO_UI", False, {"sent": True} if frontend.sends_audio_ui else {}))
            extra.append(InputSpec("upload", "AUDIOUPLOAD", False, {"audioInputName": spec.name}))
    return extra


def _combo_default(spec: InputSpec) -> Any:
    default = spec.config.get("default")
    if default:  # the frontend tests truthiness: "" or 0 fall through to the first option
        return default
    options = spec.options if spec.widget_type != DYNAMIC_COMBO else tuple(_dynamic_sub_inputs(spec))
    if options:
        return options[0]
    if spec.config.get("remote"):
        return "Loading..."
    return UNDEFINED


def _dynamic_sub_inputs(spec: InputSpec) -> dict[str, tuple[InputSpec, ...]]:
    result: dict[str, tuple[InputSpec, ...]] = {}
    for option in spec.config.get("options") or ():
        if not isinstance(option, Mapping) or "key" not in option:
            continue
        inputs = option.get("inputs") or {}
        subs = []
        for part, optional in (("required", False), ("optional", True)):
            for sub_name, raw_spec in (inputs.get(part) or {}).items():
                subs.append(parse_input_spec(f"{spec.name}.{sub_name}", raw_spec, optional, f"dynamic combo {spec.name!r}"))
        result[str(option["key"])] = tuple(subs)
    return result


def _control_name(spec: InputSpec, key: str) -> str:
    # A string option of the same name renames the widget, else `control_prefix` is prepended.
    custom = spec.config.get(key)
    if isinstance(custom, str):
        return custom
    prefix = spec.config.get("control_prefix")
    return f"{prefix} {key}" if prefix else key


def _control_widgets(spec: InputSpec, default: str, combo: bool) -> list[WidgetSpec]:
    # The control widget takes a widgets_values slot but is never sent to the server.
    widgets = [WidgetSpec(_control_name(spec, "control_after_generate"), "control", default, True, False, source=spec)]
    if combo:
        widgets.append(WidgetSpec(_control_name(spec, "control_filter_list"), "text", "", True, False, source=spec))
    return widgets


def widgets_for_input(spec: InputSpec, class_type: str = "") -> list[WidgetSpec]:
    """The widgets the frontend creates for one input, in order (empty for link-only inputs)."""
    if not spec.is_widget:
        return []
    kind = spec.widget_type
    config = spec.config
    control = config.get("control_after_generate")
    if kind == "INT":
        widgets = [WidgetSpec(spec.name, "number", config.get("default", 0), source=spec)]
        wants_control = control if control is not None else spec.name in _SEED_NAMES
        if wants_control:
            widgets += _control_widgets(spec, control if isinstance(control, str) else "randomize", False)
        return widgets
    if kind == "FLOAT":
        widgets = [WidgetSpec(spec.name, "number", config.get("default", 0), source=spec)]
        if control:
            widgets += _control_widgets(spec, "fixed", False)
        return widgets
    if kind == "BOOLEAN":
        return [WidgetSpec(spec.name, "toggle", config.get("default", False), source=spec)]
    if kind in ("STRING", "TEXTAREA", "MARKDOWN"):
        dynamic = config.get("dynamicPrompts") is True and kind == "STRING"
        return [WidgetSpec(spec.name, "text", config.get("default", ""), dynamic_prompts=dynamic, source=spec)]
    if kind == "COMBO":
        widgets = [WidgetSpec(spec.name, "combo", _combo_default(spec), options=spec.options, source=spec)]
        remote = config.get("remote")
        if isinstance(remote, Mapping):
            widgets.append(WidgetSpec("Auto-refresh after generation", "toggle", False, True, False, source=spec))
            if remote.get("refresh_button"):
                widgets.append(WidgetSpec("refresh", "button", "refresh", True, True, source=spec))
        if control:
            widgets += _control_widgets(spec, control if isinstance(control, str) else "randomize", True)
        return widgets
    if kind == DYNAMIC_COMBO:
        subs = _dynamic_sub_inputs(spec)
        return [
            WidgetSpec(spec.name, "dynamic_combo", _combo_default(spec), options=tuple(subs), dynamic_options=subs, source=spec)
        ]
    if kind == "IMAGEUPLOAD" or kind == "AUDIOUPLOAD":
        return [WidgetSpec(spec.name, "button", UNDEFINED, True, False, source=spec)]
    if kind == "AUDIO_UI":
        if config.get("sent"):   # frontend 1.35: sent, empty
            return [WidgetSpec(spec.name, "audio_ui", "", False, True, source=spec)]
        return [WidgetSpec(spec.name, "audio_ui", UNDEFINED, False, False, source=spec)]
    if kind == "AUDIO_RECORD":
        return [
            WidgetSpec(spec.name, "audio_ui", "", True, True, source=spec),
            WidgetSpec(spec.name, "audio_record", "", True, False, source=spec),
        ]
    if kind == "BOUNDING_BOX":
        box = config.get("default") or {"x": 0, "y": 0, "width": 512, "height": 512}
        widgets = [WidgetSpec(spec.name, "bounding_box", dict(box), source=spec)]
        widgets += [WidgetSpec(axis, "number", box.get(axis), True, False, source=spec) for axis in ("x", "y", "width", "height")]
        return widgets
    if kind == "COLOR":
        nested = config.get("options") if isinstance(config.get("options"), Mapping) else {}
        return [WidgetSpec(spec.name, "color", config.get("default", nested.get("default", "#000000")), source=spec)]
    if kind == "CURVE":
        default = config.get("default") or {"points": [[0, 0], [1, 1]], "interpolation": "monotone_cubic"}
        return [WidgetSpec(spec.name, "curve", default, source=spec)]
    if kind == "IMAGECOMPARE":
        # Not saved in widgets_values; the frontend sends the (empty) before/after image pair.
        return [WidgetSpec(spec.name, "imagecompare", ["", ""], False, True, source=spec)]
    if kind == "LOAD_3D":
        widgets = []
        if class_type == "Load3D":
            widgets = [
                WidgetSpec("upload 3d model", "button", "upload3dmodel", source=spec),
                WidgetSpec("upload extra resources", "button", "uploadExtraResources", source=spec),
                WidgetSpec("clear", "button", "clear", source=spec),
            ]
        return widgets + [WidgetSpec(spec.name, "load3d", "", source=spec)]
    if kind == "WEBCAM":
        return [WidgetSpec(spec.name, "webcam", "", source=spec)]
    if kind in ("BOUNDING_BOXES", "COLORS", "GALLERIA"):
        return [WidgetSpec(spec.name, kind.lower(), config.get("default", []), source=spec)]
    return [WidgetSpec(spec.name, kind.lower(), config.get("default", UNDEFINED), source=spec)]


def expand_dynamic(widget: WidgetSpec, chosen: Any) -> list[WidgetSpec]:
    """A DynamicCombo widget followed by the widgets of its chosen option (recursively)."""
    if widget.dynamic_options is None:
        return [widget]
    result = [widget]
    for sub in widget.dynamic_options.get(str(chosen), ()) if chosen is not UNDEFINED else ():
        for sub_widget in widgets_for_input(sub):
            result.extend(expand_dynamic(sub_widget, sub_widget.default))
    return result


def parse_object_info(object_info: Mapping[str, Any],
                      frontend: str | FrontendRules | None = None) -> dict[str, NodeSpec]:
    """Parse a whole ``/object_info`` answer, skipping (with a warning) entries that are malformed.

    ``frontend``: the web frontend version whose widgets to build (see :func:`frontend_rules`).
    """
    rules = frontend_rules(frontend)
    if not isinstance(object_info, Mapping):
        raise ObjectInfoError(f"object_info should be an object mapping class names to node info, got {type(object_info).__name__}")
    specs: dict[str, NodeSpec] = {}
    for class_type, info in object_info.items():
        try:
            specs[class_type] = parse_node_spec(class_type, info, rules)
        except ObjectInfoError as exc:
            log.warning("ignoring node class %s: %s", class_type, exc)
    return specs


def migrate_widgets_values(spec: NodeSpec, widget_names: set[str], values: list) -> list:
    """Drop the slots that old frontends saved for ``forceInput`` inputs.

    Mirrors the frontend's ``migrateWidgetsValues``: when ``widgets_values`` has exactly one slot per
    widget-or-forceInput input (two for inputs with an explicit ``control_after_generate``), the
    slots belonging to ``forceInput`` inputs are removed.
    """
    flags: list[bool] = []
    for input_spec in spec.inputs:
        if input_spec.name not in widget_names and not input_spec.force_input:
            continue
        flags.append(input_spec.force_input)
        if input_spec.config.get("control_after_generate"):
            flags.append(False)
    if len(flags) == len(values) and any(flags):
        return [value for value, drop in zip(values, flags) if not drop]
    return values


_CLASS_EXTRA_WIDGETS.update(
    {
        "SaveGLB": (WidgetSpec("image", "load3d", ""),),
        "Preview3D": (WidgetSpec("image", "load3d", ""),),
        "WebcamCapture": (WidgetSpec("waiting for camera...", "button", "capture"),),
        # CustomCombo grows option widgets as they are filled; the converter handles it specially.
        "CustomCombo": (WidgetSpec("index", "hidden", 0), WidgetSpec("option1", "text", "")),
    }
)

# Frontend 1.35 (ComfyUI 0.8.0): its audio extension adds a sent, empty ``audioUI`` widget to these
# output nodes too, PreviewAny shows two read-only ``preview`` widgets (sent) and a ``previewMode``
# toggle, and CustomCombo starts at ``option0`` without an ``index``.
_LEGACY_AUDIO_UI = (WidgetSpec("audioUI", "audio_ui", "", False, True),)
_LEGACY_CLASS_WIDGETS: dict[str, tuple[WidgetSpec, ...]] = {
    **{name: extra for name, extra in _CLASS_EXTRA_WIDGETS.items() if name != "CustomCombo"},
    **{name: _LEGACY_AUDIO_UI for name in ("SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus")},
    "PreviewAny": (WidgetSpec("preview", "markdown", "", False, True), WidgetSpec("preview", "text", "", False, True),
                   WidgetSpec("previewMode", "toggle", False)),
    "CustomCombo": (WidgetSpec("option0", "text", ""),),
}
