"""nodes/compat.py: the V3 options newer than ComfyUI 0.8.0 are used only where this ComfyUI has them.

Both branches run without ComfyUI on stand-ins shaped like 0.8.0's and 0.33's classes; the tests
at the end (COMFYUI_PATH) check the real ComfyUI loaded in this session, whichever version it is.
"""

import dataclasses
import importlib.util
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ("pulid", "face", "identity", "pose", "scoring", "dataset")


def _load_compat():
    # By file: the nodes package itself imports ComfyUI, compat.py does not.
    spec = importlib.util.spec_from_file_location("_pulid_studio_compat_under_test", ROOT / "nodes" / "compat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compat = _load_compat()


# -- stand-ins: the signatures of ComfyUI 0.8.0 and 0.33 ------------------------------------------

class FloatInput08:
    """``io.Float.Input`` of ComfyUI 0.8.0: no ``advanced``."""

    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, default=None, min=None,
                 max=None, step=None, round=None, display_mode=None, socketless=None, force_input=None,
                 extra_dict=None, raw_link=None):
        self.id = id


class FloatInput033(FloatInput08):
    """``io.Float.Input`` of ComfyUI 0.33: takes ``advanced``."""

    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, default=None, min=None,
                 max=None, step=None, round=None, display_mode=None, gradient_stops=None, socketless=None,
                 force_input=None, extra_dict=None, raw_link=None, advanced=None):
        super().__init__(id)
        self.advanced = advanced


@dataclasses.dataclass
class Schema08:
    node_id: str
    display_name: str = None
    is_output_node: bool = False


@dataclasses.dataclass
class Schema033(Schema08):
    search_aliases: list = dataclasses.field(default_factory=list)
    is_dev_only: bool = False
    price_badge: object = None
    accept_all_inputs: bool = False
    essentials_category: str = None
    has_intermediate_output: bool = False


# -- advanced= ------------------------------------------------------------------------------------

def test_advanced_only_where_the_input_takes_it():
    assert compat.advanced(FloatInput08) == {}
    assert compat.advanced(FloatInput033) == {"advanced": True}
    # Spread into the constructor, as the nodes do: works on both, and sets the flag on the newer one.
    FloatInput08("weight", default=1.0, **compat.advanced(FloatInput08))
    assert FloatInput033("weight", default=1.0, **compat.advanced(FloatInput033)).advanced is True
    with pytest.raises(TypeError, match="advanced"):
        FloatInput08("weight", advanced=True)           # what every node did on 0.8.0 before compat


def test_input_accepts_reads_the_signature():
    assert compat.input_accepts(FloatInput033, "gradient_stops")
    assert not compat.input_accepts(FloatInput08, "gradient_stops")
    assert not compat.input_accepts(FloatInput033, "no_such_option")


# -- io.Schema fields -----------------------------------------------------------------------------

def test_newer_schema_fields_are_dropped_only_where_missing():
    newer = {"has_intermediate_output": True, "search_aliases": ["pulid"], "is_dev_only": False,
             "essentials_category": "Identity", "price_badge": None, "accept_all_inputs": False}
    assert set(newer) == compat.NEWER_SCHEMA_FIELDS
    assert compat.schema_options(Schema08, **newer) == {}
    assert compat.schema_options(Schema033, **newer) == newer
    assert compat.schema_options(Schema08, has_intermediate_output=True, is_output_node=True) == {"is_output_node": True}


def test_a_misspelt_field_is_never_dropped():
    kept = compat.schema_options(Schema08, has_intermediate_outptu=True)
    assert kept == {"has_intermediate_outptu": True}
    with pytest.raises(TypeError, match="has_intermediate_outptu"):
        Schema08(node_id="X", **kept)


def test_schema_fields_of_a_dataclass():
    assert compat.schema_fields(Schema08) == {"node_id", "display_name", "is_output_node"}
    assert compat.schema_fields(Schema033) >= compat.NEWER_SCHEMA_FIELDS


# -- the real ComfyUI of this session (COMFYUI_PATH) ----------------------------------------------

@pytest.fixture(scope="module")
def real(pack_nodes):
    from comfy_api.v0_0_2 import io
    return pack_nodes("compat"), io, {name: pack_nodes(name) for name in NODE_MODULES}


def test_real_comfyui_detection_matches_its_classes(real):
    module, io, _ = real
    for input_cls in (io.Float.Input, io.Int.Input, io.Combo.Input, io.String.Input, io.Boolean.Input):
        takes = "advanced" in inspect.signature(input_cls.__init__).parameters
        assert module.advanced(input_cls) == ({"advanced": True} if takes else {})
    fields = {f.name for f in dataclasses.fields(io.Schema)}
    assert module.schema_fields() == fields
    assert module.schema_options(has_intermediate_output=True) == (
        {"has_intermediate_output": True} if "has_intermediate_output" in fields else {})


def test_every_node_registers_on_this_comfyui(real):
    """What ComfyUI does with each node class at start-up and for /object_info, on this version."""
    module, io, nodes = real
    supported = bool(module.advanced(io.Float.Input))
    advanced = []
    ids = set()
    for name, node_module in nodes.items():
        for node in node_module.NODE_LIST:
            schema = node.GET_SCHEMA()
            info = node.GET_NODE_INFO_V1()
            ids.add(schema.node_id)
            for section in ("required", "optional"):
                for input_name, spec in info["input"].get(section, {}).items():
                    if len(spec) > 1 and spec[1].get("advanced"):
                        advanced.append(f"{schema.node_id}.{input_name}")
    assert len(ids) == 19 and all(i.startswith("PulidStudio") for i in ids)
    if supported:
        # The inputs users rarely change are folded away where the frontend can do it.
        assert len(advanced) == 17 and "PulidStudioApplyPulidFlux.uncond" in advanced
    else:
        assert advanced == []
