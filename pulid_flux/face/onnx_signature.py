"""Read an ONNX model's inputs, outputs and first node names without loading its weights.

A model pack holds five ONNX files (about 400 MB for antelopev2) but PuLID needs two. insightface
tells them apart by opening an onnxruntime session on every file; this walks the protobuf wire
format instead, skipping the weight blobs, so only the detector and the recognizer are ever loaded.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

from ..errors import PulidWeightsError

# ModelProto / GraphProto / NodeProto / ValueInfoProto / TypeProto field numbers (onnx.proto3)
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 1, 5, 11, 12
_NODE_NAME, _NODE_OP_TYPE = 3, 4
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR, _TENSOR_SHAPE = 1, 2
_SHAPE_DIM, _DIM_VALUE, _DIM_PARAM = 1, 1, 2
_TENSOR_NAME = 8

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


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ValueError("malformed varint")


def _fields(buf, start: int, end: int):
    """Yield (field_number, value) of one message; length-delimited values come as (start, end)."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = (pos, pos + length), pos + length
        elif wire == 5:
            value, pos = None, pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise ValueError("message runs past its end (truncated file?)")
        yield number, value


def _string(buf, span) -> str:
    return bytes(buf[span[0]:span[1]]).decode("utf-8", errors="replace")


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _value_info(buf, span) -> OnnxValue:
    name, shape = "", ()
    for number, value in _fields(buf, *span):
        if number == _VALUE_NAME:
            name = _string(buf, value)
        elif number == _VALUE_TYPE:
            for tn, tv in _fields(buf, *value):
                if tn != _TYPE_TENSOR:
                    continue
                for sn, sv in _fields(buf, *tv):
                    if sn != _TENSOR_SHAPE:
                        continue
                    dims = []
                    for dn, dv in _fields(buf, *sv):
                        if dn != _SHAPE_DIM:
                            continue
                        dim: Dim = None
                        for fn, fv in _fields(buf, *dv):
                            if fn == _DIM_VALUE:
                                dim = _int64(fv)
                            elif fn == _DIM_PARAM:
                                dim = _string(buf, fv)
                        dims.append(dim)
                    shape = tuple(dims)
    return OnnxValue(name, shape)


def read_signature(path, first_nodes: int = 8) -> OnnxSignature:
    """Inputs, outputs and the first ``first_nodes`` nodes of the ONNX file ``path``."""
    path = Path(path)
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            graph = next((v for n, v in _fields(buf, 0, len(buf)) if n == _MODEL_GRAPH and v), None)
            if graph is None:
                raise ValueError("no graph")
            inputs, outputs, nodes, initializers = [], [], [], set()
            for number, value in _fields(buf, *graph):
                if number == _GRAPH_INPUT:
                    inputs.append(_value_info(buf, value))
                elif number == _GRAPH_OUTPUT:
                    outputs.append(_value_info(buf, value))
                elif number == _GRAPH_INITIALIZER:
                    for tn, tv in _fields(buf, *value):
                        if tn == _TENSOR_NAME:
                            initializers.add(_string(buf, tv))
                elif number == _GRAPH_NODE and len(nodes) < first_nodes:
                    name = op = ""
                    for nn, nv in _fields(buf, *value):
                        if nn == _NODE_NAME:
                            name = _string(buf, nv)
                        elif nn == _NODE_OP_TYPE:
                            op = _string(buf, nv)
                    nodes.append((name, op))
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise PulidWeightsError(path, f"not a readable ONNX model ({exc.__class__.__name__}: {exc}); "
                                      "the file may be truncated by an interrupted download") from exc
    # Old exporters (ONNX IR < 4) list every weight as a graph input too; a session does not ask for them.
    real_inputs = tuple(v for v in inputs if v.name not in initializers)
    if not real_inputs or not outputs:
        raise PulidWeightsError(path, "not a usable ONNX model: the graph declares no inputs or no outputs")
    return OnnxSignature(real_inputs, tuple(outputs), tuple(nodes))
