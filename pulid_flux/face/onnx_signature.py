"""Read an ONNX model's inputs, outputs and first node names.

A model pack holds five ONNX files (about 400 MB for antelopev2) but PuLID needs two. insightface
tells them apart by opening an onnxruntime session on every file; reading the graph with ``onnx``
costs one protobuf parse per file instead, after which the model (weights included) is dropped, so
only the detector and the recognizer are ever turned into sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import PulidWeightsError

Dim = int | str | None


@dataclass(frozen=True)
class OnnxValue:
    name: str
    shape: tuple[Dim, ...]        # int = fixed, str = symbolic (dynamic), None = unknown


@dataclass(frozen=True)
class OnnxSignature:
    inputs: tuple[OnnxValue, ...]     # graph inputs that are not initializers (what a session asks for)
    outputs: tuple[OnnxValue, ...]
    first_nodes: tuple[tuple[str, str], ...]   # (name, op_type) of the first graph nodes


def _dim(dim) -> Dim:
    kind = dim.WhichOneof("value")
    return dim.dim_value if kind == "dim_value" else dim.dim_param if kind == "dim_param" else None


def _value(info) -> OnnxValue:
    return OnnxValue(info.name, tuple(_dim(d) for d in info.type.tensor_type.shape.dim))


def read_signature(path, first_nodes: int = 8) -> OnnxSignature:
    """Inputs, outputs and the first ``first_nodes`` nodes of the ONNX file ``path``."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    try:
        graph = onnx.load_model(str(path), load_external_data=False).graph
    except (OSError, DecodeError, ValueError) as exc:
        raise PulidWeightsError(path, f"not a readable ONNX model ({exc.__class__.__name__}: {exc}); "
                                      "the file may be truncated by an interrupted download") from exc
    # Old exporters (ONNX IR < 4) list every weight as a graph input too; a session does not ask for them.
    initializers = {t.name for t in graph.initializer}
    inputs = tuple(_value(v) for v in graph.input if v.name not in initializers)
    outputs = tuple(_value(v) for v in graph.output)
    if not inputs or not outputs:
        raise PulidWeightsError(path, "not a usable ONNX model: the graph declares no inputs or no outputs")
    return OnnxSignature(inputs, outputs, tuple((n.name, n.op_type) for n in graph.node[:first_nodes]))
