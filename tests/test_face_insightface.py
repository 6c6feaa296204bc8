"""insightface engine on a synthetic model pack: discovery, routing, preprocessing, output decoding."""

import logging

import cv2
import numpy as np
import pytest

from pulid_flux import PulidWeightsError
from pulid_flux.face import load_engine, norm_crop
from pulid_flux.face.insightface_engine import (
    classify_model,
    find_pack_dir,
    select_providers,
)
from pulid_flux.face.onnx_signature import OnnxSignature, OnnxValue, read_signature
from pulid_flux.tiny import insightface_pack as synth


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# Red minus blue after (x - 127.5) / 128 for a pure red pixel.
RED_MINUS_BLUE = (255 - 127.5) / 128 - (0 - 127.5) / 128


def expected_face(col, row, det_scale):
    """bbox, kps and score the synthetic detector encodes for a red stride-32 cell, in image pixels."""
    s = synth.FIRING_STRIDE
    ax, ay = col * s, row * s                     # SCRFD anchor points sit at cell corners
    left, top, right, bottom = synth.BOX_DISTANCES
    bbox = np.array([ax - left * s, ay - top * s, ax + right * s, ay + bottom * s]) / det_scale
    kps = (np.array([ax, ay]) + np.array(synth.KPS_OFFSETS) * s) / det_scale
    score = sigmoid(synth.SCORE_GAIN * RED_MINUS_BLUE - synth.SCORE_BIAS)
    return bbox, kps, score


@pytest.fixture(scope="module")
def insightface_root(tmp_path_factory):
    """ComfyUI layout with the nested folder the antelopev2 zip unpacks to."""
    root = tmp_path_factory.mktemp("insightface")
    synth.build_pack(root / "models" / "antelopev2", nested=True)
    return root


@pytest.fixture(scope="module")
def engine(insightface_root):
    return load_engine("insightface", root=insightface_root, device="cpu")


def test_nested_pack_is_found_and_only_detector_and_recognizer_load(engine, insightface_root):
    nested = insightface_root / "models" / "antelopev2" / "antelopev2"
    assert find_pack_dir(insightface_root, "antelopev2") == nested
    assert engine.files == {"detection": nested / synth.DETECTOR_FILE, "recognition": nested / synth.RECOGNIZER_FILE}
    # The decoys hold an operator onnxruntime rejects: the engine only works because it never opened them.
    assert {p.name: t for p, t in engine.seen.items()} == {
        "1k3d68.onnx": "landmark", "2d106det.onnx": "landmark", "genderage.onnx": "genderage",
        "glintr100.onnx": "recognition", "scrfd_10g_bnkps.onnx": "detection"}
    import onnxruntime
    with pytest.raises(Exception, match="NotARealOperator|pulid.decoy"):  # onnxruntime's own error types
        onnxruntime.InferenceSession(str(nested / "genderage.onnx"), providers=["CPUExecutionProvider"])
    assert engine.name == "insightface:antelopev2" and engine.embedding_size == 512
    assert "non-commercial" in engine.license_note


def test_flat_pack_and_pack_dir_option(tmp_path):
    pack = synth.build_pack(tmp_path / "models" / "buffalo_l", decoys=False)
    assert find_pack_dir(tmp_path, "buffalo_l") == pack
    assert load_engine("insightface", pack_dir=pack, device="cpu").name == "insightface:buffalo_l"


def test_missing_pack_and_incomplete_pack_are_clear_errors(tmp_path):
    with pytest.raises(PulidWeightsError, match="antelopev2.*Download antelopev2"):
        load_engine("insightface", root=tmp_path)
    pack = tmp_path / "models" / "antelopev2"
    synth.build_detector(pack / "scrfd_10g_bnkps.onnx")
    synth.build_decoy(pack / "genderage.onnx", 96, 3)
    with pytest.raises(PulidWeightsError, match=r"no recognition model \(found: genderage.onnx=genderage, "
                                                r"scrfd_10g_bnkps.onnx=detection\)"):
        load_engine("insightface", root=tmp_path)
    (pack / "glintr100.onnx").write_bytes(b"\x0a\xff\xff")  # truncated download
    with pytest.raises(PulidWeightsError, match="glintr100.onnx.*not a readable ONNX model"):
        load_engine("insightface", root=tmp_path)


def test_detection_is_decoded_exactly(engine):
    # 1280x960 letterboxes into 640x480 (scale 0.5 exactly): the red square fills cell (7, 5).
    image = synth.paint_faces(1280, 960, [(7, 5)])
    faces = engine.detect(image)
    assert len(faces) == 1, "both anchors of the cell fire; NMS must keep one"
    bbox, kps, score = expected_face(7, 5, 0.5)
    face = faces[0]
    np.testing.assert_allclose(face.bbox, bbox, atol=1e-3)       # anchor 0's box, not anchor 1's larger one
    np.testing.assert_allclose(face.kps, kps, atol=1e-3)
    # Score depends on the normalisation: std 127.5 instead of 128 would give 0.9526, not 0.9511.
    assert face.score == pytest.approx(score, abs=2e-5)
    assert face.embedding.shape == (512,)
    np.testing.assert_allclose(np.linalg.norm(face.normed_embedding), 1.0, rtol=1e-5)


def test_detector_input_is_rgb(engine):
    # A blue square is "red" to a model fed BGR: it must not be detected.
    image = synth.paint_faces(1280, 960, [(7, 5)])
    blue = image.copy()
    blue[np.all(image == synth.FACE_RGB, axis=-1)] = (0, 0, 255)
    assert engine.detect(blue) == []


def test_det_size_of_a_dynamic_detector(insightface_root):
    small = load_engine("insightface", root=insightface_root, det_size=320, device="cpu")
    assert small.detector.input_size == (320, 320)
    image = synth.paint_faces(1280, 960, [(3, 2)], det_size=320)     # scale 0.25
    (face,) = small.detect(image, embed=False)
    bbox, kps, _ = expected_face(3, 2, 0.25)
    np.testing.assert_allclose(face.bbox, bbox, atol=1e-3)
    np.testing.assert_allclose(face.kps, kps, atol=1e-3)
    assert face.embedding is None and face.normed_embedding is None
    with pytest.raises(ValueError, match="multiple of 32"):
        load_engine("insightface", root=insightface_root, det_size=300, device="cpu")


def test_fixed_input_detector_ignores_det_size_and_batched_outputs(tmp_path, caplog):
    pack = synth.build_pack(tmp_path / "fixed", fixed_input=True, batched=True, decoys=False)
    assert read_signature(pack / synth.DETECTOR_FILE).inputs[0].shape == (1, 3, 640, 640)
    with caplog.at_level(logging.INFO, logger="pulid_flux.face.scrfd"):
        fixed = load_engine("insightface", pack_dir=pack, det_size=320, device="cpu")
    assert fixed.detector.input_size == (640, 640)
    assert "fixed 640x640 input; det_size (320, 320) is ignored" in caplog.text
    # Portrait image: letterboxed into 480x640 (scale 0.5), padding on the right.
    image = synth.paint_faces(960, 1280, [(4, 9)])
    (face,) = fixed.detect(image)
    bbox, kps, score = expected_face(4, 9, 0.5)
    np.testing.assert_allclose(face.bbox, bbox, atol=1e-3)
    np.testing.assert_allclose(face.kps, kps, atol=1e-3)
    assert face.score == pytest.approx(score, abs=2e-5)


def test_several_faces_are_sorted_by_the_requested_rule(engine):
    image = synth.paint_faces(1280, 960, [(14, 3), (3, 10), (9, 6)])
    xs = [round(f.center[0]) for f in engine.detect(image, order="left_to_right")]
    assert xs == sorted(xs) and len(xs) == 3
    ys = [round(f.center[1]) for f in engine.detect(image, order="top_to_bottom")]
    assert ys == sorted(ys)
    assert [round(f.center[0]) for f in engine.detect(image, order="right_to_left")] == xs[::-1]


def reference_embedding(crop, weights, mean=127.5, std=127.5):
    """The synthetic recognizer's math in numpy: RGB planes, normalise, 14x14 mean pool, flatten, matmul."""
    x = (crop.astype(np.float64) - mean) / std
    pooled = x.reshape(8, 14, 8, 14, 3).mean(axis=(1, 3))          # (8, 8, 3)
    return pooled.transpose(2, 0, 1).reshape(-1) @ weights


def test_recognizer_preprocessing(engine, tmp_path):
    rng = np.random.default_rng(1)
    crop = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    expected = reference_embedding(crop, synth.recognizer_matrix(0))
    np.testing.assert_allclose(engine.embed_aligned(crop), expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(engine.embed_aligned(crop[..., ::-1].copy()), expected, atol=1e-2)

    # An MXNet-style graph that normalises itself gets raw pixels (insightface's first-nodes rule).
    pack = synth.build_pack(tmp_path / "mx", in_graph_norm=True, decoys=False)
    mx = load_engine("insightface", pack_dir=pack, device="cpu")
    assert (mx.recognizer.mean, mx.recognizer.std) == (0.0, 1.0)
    np.testing.assert_allclose(mx.embed_aligned(crop), expected, rtol=1e-4, atol=1e-4)

    # Other crop sizes are resized to the model's input first.
    big = cv2.resize(crop, (224, 224), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_allclose(engine.embed_aligned(big), engine.embed_aligned(cv2.resize(big, (112, 112))),
                               rtol=1e-5, atol=1e-5)


def test_face_embedding_is_recognizer_on_the_norm_crop(engine):
    rng = np.random.default_rng(2)
    image = synth.paint_faces(1280, 960, [(7, 5)])
    image[480:] = rng.integers(0, 256, (480, 1280, 3), dtype=np.uint8)   # texture inside the crop
    (face,) = engine.detect(image)
    crop, _ = norm_crop(image, face.kps, 112)
    np.testing.assert_allclose(face.embedding, reference_embedding(crop, synth.recognizer_matrix(0)),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore::FutureWarning")   # scikit-image deprecation inside insightface
def test_matches_insightface_face_analysis(tmp_path):
    """Cross-check against insightface's own FaceAnalysis on the same synthetic pack."""
    app = pytest.importorskip("insightface.app")
    pack = synth.build_pack(tmp_path / "models" / "synth", decoys=False)
    rng = np.random.default_rng(3)
    image = synth.paint_faces(1000, 700, [(3, 4), (12, 9)])
    image[500:] = rng.integers(0, 256, (200, 1000, 3), dtype=np.uint8)
    ours = load_engine("insightface", pack_dir=pack, device="cpu").detect(image, order="left_to_right")
    fa = app.FaceAnalysis(name="synth", root=str(tmp_path), providers=["CPUExecutionProvider"])
    fa.prepare(ctx_id=-1, det_size=(640, 640))
    theirs = sorted(fa.get(np.ascontiguousarray(image[..., ::-1])), key=lambda f: f.bbox[0])
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.bbox, b.bbox, atol=1e-3)
        np.testing.assert_allclose(a.kps, b.kps, atol=1e-3)
        assert a.score == pytest.approx(float(b.det_score), abs=1e-6)
        np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-3)


def test_model_routing_by_signature():
    def sig(inputs, outputs=1):
        return OnnxSignature(tuple(OnnxValue(f"in{i}", s) for i, s in enumerate(inputs)),
                             tuple(OnnxValue(f"out{i}", ("N", 1)) for i in range(outputs)), ())
    assert classify_model(sig([(1, 3, "?", "?")], outputs=9)) == "detection"
    assert classify_model(sig([("None", 3, 192, 192)])) == "landmark"
    assert classify_model(sig([("None", 3, 96, 96)])) == "genderage"
    assert classify_model(sig([(1, 3, 128, 128), (1, 512)])) == "inswapper"
    assert classify_model(sig([("None", 3, 112, 112)])) == "recognition"
    assert classify_model(sig([("None", 3, 100, 100)])) is None


def test_signature_reader(tmp_path):
    onnx = pytest.importorskip("onnx")
    det = read_signature(synth.build_detector(tmp_path / "det.onnx"))
    assert det.inputs == (OnnxValue("input.1", (1, 3, "?", "?")),)
    assert [v.name for v in det.outputs] == [f"{kind}_{s}" for kind in ("score", "bbox", "kps") for s in (8, 16, 32)]
    assert [v.shape for v in det.outputs[::4]] == [("n8", 1), ("n16", 4), ("n32", 10)]
    assert len(det.first_nodes) == 8
    rec = synth.build_recognizer(tmp_path / "rec.onnx", in_graph_norm=True)
    assert read_signature(rec).first_nodes[:2] == (("Sub_0", "Sub"), ("Mul_1", "Mul"))
    assert len(read_signature(rec, first_nodes=1).first_nodes) == 1
    # Old exporters list weights among the graph inputs; a session does not ask for them.
    model = onnx.load(str(rec))
    weight = model.graph.initializer[0]
    model.graph.input.append(onnx.helper.make_tensor_value_info(weight.name, weight.data_type, list(weight.dims)))
    onnx.save(model, str(tmp_path / "old.onnx"))
    assert [v.name for v in read_signature(tmp_path / "old.onnx").inputs] == ["input.1"]
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(PulidWeightsError, match="empty.onnx.*no inputs or no outputs"):
        read_signature(tmp_path / "empty.onnx")
    (tmp_path / "cut.onnx").write_bytes(rec.read_bytes()[:-100])
    with pytest.raises(PulidWeightsError, match="cut.onnx.*truncated"):
        read_signature(tmp_path / "cut.onnx")


def test_provider_choice(monkeypatch, caplog):
    import onnxruntime
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with caplog.at_level(logging.INFO, logger="pulid_flux.face.insightface_engine"):
        assert select_providers("auto") == ["CPUExecutionProvider"]
    assert "run on CPU" in caplog.text and "onnxruntime-gpu" in caplog.text
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert select_providers("auto") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="device must be"):
        select_providers("gpu0")


def test_bad_images_are_refused(engine):
    with pytest.raises(ValueError, match="uint8"):
        engine.detect(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        engine.detect(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="unknown face order"):
        engine.detect(np.zeros((64, 64, 3), np.uint8), order="biggest")
