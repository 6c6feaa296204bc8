"""A synthetic insightface model pack: tiny ONNX files with the real models' signatures.

Used by the tests, the integration tests and ``--tiny`` runs, so that the whole insightface path
(pack discovery, signature routing, onnxruntime, pre/post-processing) runs without real weights.

* Detector (``scrfd_10g_bnkps.onnx``): input ``input.1`` (1, 3, H, W), dynamic by default or fixed
  640; 9 outputs like SCRFD-10G with keypoints (scores, box distances, keypoint offsets for strides
  8, 16, 32; 2 anchors per location). It "sees a face" in each stride-32 cell of its input that is
  painted red: the cell's score is ``sigmoid(SCORE_GAIN * mean(R - B) - SCORE_BIAS)`` over the
  normalised input (red = +0.996, blue = -0.996 after (x - 127.5) / 128), so channel order and
  normalisation change the score; box distances and keypoint offsets are constants
  (``BOX_DISTANCES``, ``KPS_OFFSETS``, in stride units from the anchor point). Anchor 1 of each
  location scores lower (logit - ``ANCHOR1_LOGIT_DROP``) with a box ``ANCHOR1_BOX_SCALE`` times
  larger, which NMS must suppress. Strides 8 and 16 never fire.
* Recognizer (``glintr100.onnx``): input ``input.1`` (N, 3, 112, 112) -> 14x14 average pool ->
  flatten (N, 192, channel-major) -> MatMul with a seeded (192, 512) matrix -> (N, 512). With
  ``in_graph_norm`` the graph starts with nodes named ``Sub``/``Mul`` that normalise by themselves,
  like MXNet exports, so the caller must feed raw 0..255 values.
* Decoys (``1k3d68.onnx``, ``2d106det.onnx``, ``genderage.onnx``): the landmark and gender/age
  signatures, with an operator onnxruntime does not know, so any loader that opens them fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STRIDES = (8, 16, 32)
FIRING_STRIDE = 32
SCORE_GAIN = 4.0
SCORE_BIAS = 5.0
ANCHOR1_LOGIT_DROP = 0.5
ANCHOR1_BOX_SCALE = 1.1
#: left, top, right, bottom distance from the anchor point, in stride units
BOX_DISTANCES = (1.5, 2.0, 2.5, 3.0)
#: SCRFD keypoint order (image-left eye, image-right eye, nose, left mouth, right mouth), stride units
KPS_OFFSETS = ((-0.6, -0.5), (0.9, -0.5), (0.15, 0.3), (-0.45, 1.1), (0.75, 1.1))
RECOGNIZER_SIZE = 112
RECOGNIZER_POOL = 14
EMBEDDING_SIZE = 512
DETECTOR_FILE = "scrfd_10g_bnkps.onnx"
RECOGNIZER_FILE = "glintr100.onnx"
OPSET = 13
FACE_RGB = (255, 0, 0)
BACKGROUND_RGB = (128, 128, 128)


def _onnx():
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    return onnx, TensorProto, helper, numpy_helper


def _save(model, path) -> Path:
    onnx, *_ = _onnx()
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def build_detector(path, *, fixed_input: bool = False, batched: bool = False) -> Path:
    """Write the synthetic SCRFD detector (see the module docstring)."""
    _, TensorProto, helper, numpy_helper = _onnx()
    const = lambda name, value: numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)
    ints = lambda name, value: numpy_helper.from_array(np.asarray(value, dtype=np.int64), name)
    size = 640 if fixed_input else None
    x_shape = [1, 3, size, size] if fixed_input else [1, 3, "?", "?"]
    inits = [ints("c0", [0]), ints("c1", [1]), ints("c2", [2]), ints("c3", [3]), ints("ax1", [1]), ints("ax4", [4]),
             const("gain", SCORE_GAIN), const("bias", SCORE_BIAS), const("drop", ANCHOR1_LOGIT_DROP),
             const("zero", 0.0), const("off", -20.0)]
    box0 = np.array(BOX_DISTANCES, np.float32)
    inits.append(const("box_const", np.stack([box0, box0 * ANCHOR1_BOX_SCALE]).reshape(1, 1, 1, 2, 4)))
    kps = np.array(KPS_OFFSETS, np.float32).reshape(10)
    inits.append(const("kps_const", np.stack([kps, kps]).reshape(1, 1, 1, 2, 10)))
    for k, cols in (("1", 1), ("4", 4), ("10", 10)):
        inits.append(ints(f"shape{k}", [1, -1, cols] if batched else [-1, cols]))
    nodes = [
        helper.make_node("Slice", ["input.1", "c0", "c1", "ax1"], ["red"], name="slice_red"),
        helper.make_node("Slice", ["input.1", "c2", "c3", "ax1"], ["blue"], name="slice_blue"),
        helper.make_node("Sub", ["red", "blue"], ["rb"], name="red_minus_blue"),
    ]
    outputs = {"score": [], "bbox": [], "kps": []}
    for s in STRIDES:
        p = f"s{s}_"
        nodes.append(helper.make_node("AveragePool", ["rb"], [p + "pool"], kernel_shape=[s, s], strides=[s, s],
                                      name=p + "pool"))
        if s == FIRING_STRIDE:
            nodes += [helper.make_node("Mul", [p + "pool", "gain"], [p + "g"], name=p + "gain"),
                      helper.make_node("Sub", [p + "g", "bias"], [p + "logit0"], name=p + "bias")]
        else:
            nodes += [helper.make_node("Mul", [p + "pool", "zero"], [p + "z"], name=p + "silence"),
                      helper.make_node("Add", [p + "z", "off"], [p + "logit0"], name=p + "off")]
        n = (640 // s) ** 2 * 2 if fixed_input else f"n{s}"
        lead = [1] if batched else []
        nodes += [
            helper.make_node("Sub", [p + "logit0", "drop"], [p + "logit1"], name=p + "anchor1"),
            helper.make_node("Sigmoid", [p + "logit0"], [p + "sc0"], name=p + "sig0"),
            helper.make_node("Sigmoid", [p + "logit1"], [p + "sc1"], name=p + "sig1"),
            helper.make_node("Concat", [p + "sc0", p + "sc1"], [p + "sc"], axis=1, name=p + "anchors"),
            helper.make_node("Transpose", [p + "sc"], [p + "sct"], perm=[0, 2, 3, 1], name=p + "sc_t"),
            helper.make_node("Reshape", [p + "sct", "shape1"], [f"score_{s}"], name=p + "score"),
            helper.make_node("Mul", [p + "pool", "zero"], [p + "zeros"], name=p + "zeros"),
            helper.make_node("Transpose", [p + "zeros"], [p + "zt"], perm=[0, 2, 3, 1], name=p + "z_t"),
            helper.make_node("Unsqueeze", [p + "zt", "ax4"], [p + "zu"], name=p + "z_u"),
            helper.make_node("Add", [p + "zu", "box_const"], [p + "box"], name=p + "box_add"),
            helper.make_node("Reshape", [p + "box", "shape4"], [f"bbox_{s}"], name=p + "bbox"),
            helper.make_node("Add", [p + "zu", "kps_const"], [p + "kp"], name=p + "kps_add"),
            helper.make_node("Reshape", [p + "kp", "shape10"], [f"kps_{s}"], name=p + "kps"),
        ]
        for key, cols in (("score", 1), ("bbox", 4), ("kps", 10)):
            outputs[key].append(helper.make_tensor_value_info(f"{key}_{s}", TensorProto.FLOAT, lead + [n, cols]))
    graph = helper.make_graph(nodes, "synthetic_scrfd",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, x_shape)],
                              outputs["score"] + outputs["bbox"] + outputs["kps"], initializer=inits)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), path)


def recognizer_matrix(seed: int = 0) -> np.ndarray:
    """The (192, 512) weights of the synthetic recognizer built with ``seed``."""
    pooled = 3 * (RECOGNIZER_SIZE // RECOGNIZER_POOL) ** 2
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((pooled, EMBEDDING_SIZE)) / np.sqrt(pooled)).astype(np.float32)


def build_recognizer(path, *, seed: int = 0, in_graph_norm: bool = False) -> Path:
    """Write the synthetic ArcFace recognizer (see the module docstring)."""
    _, TensorProto, helper, numpy_helper = _onnx()
    inits = [numpy_helper.from_array(recognizer_matrix(seed), "fc_weight")]
    nodes, source = [], "input.1"
    if in_graph_norm:
        inits += [numpy_helper.from_array(np.array(127.5, np.float32), "mean"),
                  numpy_helper.from_array(np.array(1 / 127.5, np.float32), "scale")]
        nodes += [helper.make_node("Sub", ["input.1", "mean"], ["centred"], name="Sub_0"),
                  helper.make_node("Mul", ["centred", "scale"], ["normed"], name="Mul_1")]
        source = "normed"
    nodes += [helper.make_node("AveragePool", [source], ["pooled"], kernel_shape=[RECOGNIZER_POOL] * 2,
                               strides=[RECOGNIZER_POOL] * 2, name="pool"),
              helper.make_node("Flatten", ["pooled"], ["flat"], axis=1, name="flatten"),
              helper.make_node("MatMul", ["flat", "fc_weight"], ["embedding"], name="fc")]
    graph = helper.make_graph(
        nodes, "synthetic_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, RECOGNIZER_SIZE, RECOGNIZER_SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["None", EMBEDDING_SIZE])], initializer=inits)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), path)


def build_decoy(path, side: int, outputs: int) -> Path:
    """A landmark/genderage-shaped model that onnxruntime cannot load (unknown operator)."""
    onnx, TensorProto, helper, _ = _onnx()
    node = helper.make_node("NotARealOperator", ["data"], ["fc1"], domain="pulid.decoy", name="decoy")
    graph = helper.make_graph(
        [node], "decoy", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["None", 3, side, side])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["None", outputs])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid("pulid.decoy", 1)])
    model.ir_version = 8
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def build_pack(pack_dir, *, nested: bool = False, fixed_input: bool = False, batched: bool = False,
               in_graph_norm: bool = False, decoys: bool = True, seed: int = 0) -> Path:
    """Write a synthetic antelopev2-like pack into ``pack_dir`` (or ``pack_dir/<name>`` when ``nested``,
    as the antelopev2 zip unpacks). Returns the folder holding the .onnx files."""
    pack_dir = Path(pack_dir)
    target = pack_dir / pack_dir.name if nested else pack_dir
    build_detector(target / DETECTOR_FILE, fixed_input=fixed_input, batched=batched)
    build_recognizer(target / RECOGNIZER_FILE, seed=seed, in_graph_norm=in_graph_norm)
    if decoys:
        build_decoy(target / "1k3d68.onnx", 192, 3309)
        build_decoy(target / "2d106det.onnx", 192, 212)
        build_decoy(target / "genderage.onnx", 96, 3)
    return target


def paint_faces(width: int, height: int, cells, det_size: int = 640) -> np.ndarray:
    """An RGB uint8 gray image in which the synthetic detector sees a face at each (col, row)
    stride-32 cell of its letterboxed ``det_size`` input."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND_RGB
    scale = min(det_size / width, det_size / height)
    for col, row in cells:
        x0, y0 = (col * FIRING_STRIDE) / scale, (row * FIRING_STRIDE) / scale
        x1, y1 = ((col + 1) * FIRING_STRIDE) / scale, ((row + 1) * FIRING_STRIDE) / scale
        image[round(y0):round(y1), round(x0):round(x1)] = FACE_RGB
    return image
