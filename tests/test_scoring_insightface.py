"""Identity scoring through the insightface path, on synthetic ONNX models with the real signatures
(pulid_flux.tiny.insightface_pack): similarities checked against an independent numpy computation,
the ``arcface:<file.onnx>`` engine, and a whole gallery (CSVs, summaries, grids, plot)."""

import csv
import json
import math
import statistics

import numpy as np
import pytest
from PIL import Image

from pulid_flux.errors import NoFaceError, PulidWeightsError
from pulid_flux.face import norm_crop
from pulid_flux.scoring import ARCFACE_THRESHOLD, EngineOptions, ScoringRun, load_scoring_engine, score_gallery
from pulid_flux.scoring.stats import SUMMARY_KEYS
from pulid_flux.tiny import insightface_pack as synth

S = synth.FIRING_STRIDE


def scene(cells, context, size=640, marker=None):
    """Synthetic faces (red cells) in a blue/green block pattern seeded by ``context``: the pattern
    around a face is what the synthetic recognizer "recognises" (it never makes the detector fire)."""
    image = synth.paint_faces(size, size, cells)
    blocks = np.random.default_rng(context).integers(0, 256, (size // 16, size // 16, 2), dtype=np.uint8)
    blocks = blocks.repeat(16, 0).repeat(16, 1)
    background = ~(image == synth.FACE_RGB).all(-1)
    image[background, 1] = blocks[background, 0]
    image[background, 2] = np.maximum(blocks[background, 1], 128)
    if marker is not None:
        image[:48, :48] = marker
    return image


def moved(source, src_cell, dst_cell, into):
    """``into`` with the 10x10-cell window around ``src_cell`` of ``source`` copied around ``dst_cell``."""
    (sc, sr), (dc, dr) = src_cell, dst_cell
    window = source[(sr - 4) * S:(sr + 6) * S, (sc - 4) * S:(sc + 6) * S]
    out = into.copy()
    out[(dr - 4) * S:(dr + 6) * S, (dc - 4) * S:(dc + 6) * S] = window
    return out


def expected_face(cell):
    """bbox and keypoints the synthetic detector encodes for a cell (640 px image: detection scale 1)."""
    ax, ay = cell[0] * S, cell[1] * S
    left, top, right, bottom = synth.BOX_DISTANCES
    bbox = np.array([ax - left * S, ay - top * S, ax + right * S, ay + bottom * S])
    return bbox, np.array([ax, ay]) + np.array(synth.KPS_OFFSETS) * S


def expected_embedding(image, cell, seed=0):
    """The synthetic recognizer written out in numpy: ArcFace crop, (x-127.5)/127.5, 14x14 mean pool,
    channel-major flatten, fixed random matrix."""
    crop, _ = norm_crop(image, expected_face(cell)[1], 112)
    x = (crop.astype(np.float64) - 127.5) / 127.5
    pooled = x.reshape(8, 14, 8, 14, 3).mean(axis=(1, 3)).transpose(2, 0, 1).reshape(-1)
    return pooled @ synth.recognizer_matrix(seed).astype(np.float64)


def unit(v):
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("insightface")
    synth.build_pack(root / "models" / "antelopev2", nested=True)
    return root


@pytest.fixture(scope="module")
def options(root):
    return EngineOptions(insightface_root=root, device="cpu")


@pytest.fixture(scope="module")
def run(options):
    ref_a = scene([(10, 10)], context=1)
    ref_b = moved(ref_a, (10, 10), (7, 9), scene([], context=5))
    return ScoringRun.create([("ref_a", ref_a), ("ref_b", ref_b)], ["insightface"], options=options), ref_a


def test_reference_and_best_face_match_numpy(run):
    run, ref_a = run
    assert run.keys == ["insightface"] and run.thresholds == {"insightface": ARCFACE_THRESHOLD}
    assert run.models == {"insightface": "insightface:antelopev2"}
    # Both references show the same context: the centroid is that embedding.
    assert np.allclose(run.references["insightface"].centroid, unit(expected_embedding(ref_a, (10, 10))), atol=1e-5)
    two = moved(ref_a, (10, 10), (5, 10), scene([(14, 10)], context=2))
    scored = run.score(two, "two.png")
    s = scored.scores["insightface"]
    centre = unit(expected_embedding(ref_a, (10, 10)))
    sims = [float(unit(expected_embedding(two, c)) @ centre) for c in [(5, 10), (14, 10)]]
    assert s.n_faces == 2 and sims[0] > 0.999 and sims[1] < 0.9
    assert s.similarity == pytest.approx(max(sims), abs=2e-6)
    bbox, _ = expected_face((5, 10))
    assert s.bbox == pytest.approx(tuple(bbox), abs=0.1)
    assert s.face_px == pytest.approx(math.sqrt((bbox[2] - bbox[0]) * (bbox[3] - bbox[1])), abs=0.05)
    other = run.score(scene([(10, 10)], context=9), "other.png").scores["insightface"]
    assert other.similarity == pytest.approx(
        float(unit(expected_embedding(scene([(10, 10)], context=9), (10, 10))) @ centre), abs=2e-6)
    assert other.similarity < 0.9


def test_no_face_and_faceless_reference(run, options):
    run, _ = run
    none = run.score(scene([], context=3), "empty.png").scores["insightface"]
    assert (none.face_found, none.n_faces, none.similarity, none.face_px) == (False, 0, None, None)
    with pytest.raises(NoFaceError, match="plain.png: no face found in this reference photo by insightface"):
        ScoringRun.create([("plain.png", scene([], context=3))], ["insightface"], options=options)


def test_arcface_onnx_recognizer_engine(root, options, tmp_path):
    path = synth.build_recognizer(tmp_path / "CurricularFace.onnx", seed=7)
    engine = load_scoring_engine(f"arcface:{path}", options)   # insightface root given: its SCRFD detects
    assert engine.key == "arcface_curricularface" and engine.default_threshold == ARCFACE_THRESHOLD
    assert engine.model.startswith("onnx:CurricularFace.onnx@insightface:antelopev2")
    ref = scene([(10, 10)], context=1)
    image = moved(ref, (10, 10), (5, 10), scene([(14, 10)], context=2))
    run = ScoringRun.create([("ref", ref)], [engine, "insightface"], options=options)
    s = run.score(image, "x.png").scores
    assert list(s) == ["arcface_curricularface", "insightface"]
    centre = unit(expected_embedding(ref, (10, 10), seed=7))
    sims = [float(unit(expected_embedding(image, c, seed=7)) @ centre) for c in [(5, 10), (14, 10)]]
    assert s["arcface_curricularface"].similarity == pytest.approx(max(sims), abs=2e-6)
    other = scene([(10, 10)], context=4)
    sim7 = run.score(other, "o.png").scores["arcface_curricularface"].similarity
    assert sim7 == pytest.approx(float(unit(expected_embedding(other, (10, 10), seed=7)) @ centre), abs=2e-6)
    # A detector file is not a recognizer; a missing file is named.
    with pytest.raises(PulidWeightsError, match="not an ArcFace-style recognizer.*route it to: detection"):
        load_scoring_engine(f"arcface:{root / 'models/antelopev2/antelopev2' / synth.DETECTOR_FILE}", options)
    with pytest.raises(PulidWeightsError, match="nope.onnx: recognizer file not found"):
        load_scoring_engine(f"arcface:{tmp_path / 'nope.onnx'}", options)


# ---------------------------------------------------------------------------------------------
# Gallery: gallery/<config>/<NN>_<tag>[_<params>].png -> eval CSVs, summaries, grids, plot

CONFIGS = ["base", "pulid_0.9"]
PROMPTS = ["beach", "city", "snow"]


def marker(config, prompt, seed):
    """A colour per image (red 0: never a detection), shown in the image's top-left corner."""
    return (0, 40 + 90 * CONFIGS.index(config) + seed, 60 + 60 * PROMPTS.index(prompt))


@pytest.fixture(scope="module")
def gallery(root, options, tmp_path_factory):
    base = tmp_path_factory.mktemp("gallery")
    ref = scene([(10, 10)], context=1)
    Image.fromarray(ref).save(base / "reference.png")
    files = {
        # (config, file): (prompt, seed, a face?, the reference's context around it?)
        ("base", "01_beach_seed1.png"): ("beach", 1, True, False),
        ("base", "01_beach_seed2.png"): ("beach", 2, True, True),
        ("base", "02_city_seed1.png"): ("city", 1, False, False),
        ("base", "03_snow_s1_cfg3.5.png"): ("snow", 1, True, False),
        ("pulid_0.9", "01_beach_seed1.png"): ("beach", 1, True, True),
        ("pulid_0.9", "02_city_seed1.png"): ("city", 1, True, True),
        ("pulid_0.9", "03_snow_s1_cfg3.5.png"): ("snow", 1, True, True),
        ("pulid_0.9", "03_snow_s2_cfg3.5.png"): ("snow", 2, False, False),
    }
    for (config, name), (prompt, seed, face, same) in files.items():
        background = scene([], context=20 + len(name) + seed)
        image = moved(ref, (10, 10), (8, 9), background) if same else scene(
            [(9, 9)] if face else [], context=30 + seed + PROMPTS.index(prompt))
        image[:48, :48] = marker(config, prompt, seed)
        (base / "gallery" / config).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(base / "gallery" / config / name)
    out = base / "out"
    result = score_gallery(base / "gallery", [base / "reference.png"], out, engines=["insightface"], options=options)
    return result, out, files


def read_rows(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def test_gallery_csvs_and_summaries_recompute(gallery):
    result, out, files = gallery
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == CONFIGS and summary == result.summaries
    _, summary_rows = read_rows(out / "summary.csv")
    assert [(r["config"], r["engine"]) for r in summary_rows] == [(c, "insightface") for c in CONFIGS]
    for config in CONFIGS:
        header, rows = read_rows(out / "eval" / f"{config}.csv")
        assert header == ["file", "config", "prompt", "seed", "face_found", "n_faces", "similarity_insightface",
                          "face_px", "error"]
        assert [r["file"] for r in rows] == sorted(n for c, n in files if c == config)
        for r in rows:
            prompt, seed, face, same = files[(config, r["file"])]
            assert (r["config"], r["prompt"], r["seed"]) == (config, prompt, str(seed))
            assert r["face_found"] == str(int(face)) and r["n_faces"] == str(int(face))
            if same:
                assert float(r["similarity_insightface"]) > 0.999
            elif face:
                assert float(r["similarity_insightface"]) < 0.9
            else:
                assert r["similarity_insightface"] == "" and r["face_px"] == ""
        s = summary[config]["insightface"]
        assert tuple(s) == SUMMARY_KEYS
        found = [float(r["similarity_insightface"]) for r in rows if r["similarity_insightface"]]
        assert s["count"] == len(found)
        assert s["mean"] == pytest.approx(statistics.fmean(found), rel=1e-12)
        assert s["median"] == pytest.approx(statistics.median(found), rel=1e-12)
        assert s["std"] == pytest.approx(statistics.pstdev(found), rel=1e-9, abs=1e-12)
        assert (s["min"], s["max"]) == (min(found), max(found))
        assert s["no_face_rate"] == (len(rows) - len(found)) / len(rows)
        assert s["pass_rate"] == sum(v >= ARCFACE_THRESHOLD for v in found) / len(rows)
        csv_row = next(r for r in summary_rows if r["config"] == config)
        assert float(csv_row["mean"]) == s["mean"] and int(csv_row["n_images"]) == len(rows)
    assert summary["base"]["insightface"]["no_face_rate"] == 0.25
    assert summary["pulid_0.9"]["insightface"]["pass_rate"] == 0.75


def test_gallery_grid_one_tile_per_prompt_and_config(gallery):
    result, out, files = gallery
    assert result.prompts == PROMPTS and result.configs == CONFIGS
    for layout, name, tolerance in [(result.layout, "grid.jpg", 14), (result.small_layout, "grid_small.png", 6)]:
        assert layout.order() == [(p, c) for p in PROMPTS for c in CONFIGS]
        assert sorted(layout.boxes) == sorted(layout.order())
        with Image.open(out / name) as im:
            assert im.size == layout.size
            pixels = np.asarray(im.convert("RGB")).astype(int)
        scale = layout.tile / 640
        for (prompt, config), (x0, y0, x1, y1) in layout.boxes.items():
            # Each tile shows the cell's lowest seed.
            seed = min(v[1] for (c, _), v in files.items() if c == config and v[0] == prompt)
            got = pixels[y0 + int(24 * scale), x0 + int(24 * scale)]
            assert np.abs(got - marker(config, prompt, seed)).max() <= tolerance, (prompt, config, name)
    assert result.layout.tile == 640
    assert 1000 <= result.small_layout.size[0] <= 1100


def test_gallery_plot_and_run_info(gallery):
    result, out, _ = gallery
    with Image.open(out / "summary_plot.png") as im:
        assert im.format == "PNG" and im.width > 0 and im.height > 0
    info = json.loads((out / "run_info.json").read_text())
    assert info["configs"] == CONFIGS and info["prompts"] == PROMPTS
    assert info["engines"]["insightface"]["threshold"] == ARCFACE_THRESHOLD
    assert "population" in info["std"] and "sqrt" in info["face_px"]
    assert result.paths["eval"] == {c: out / "eval" / f"{c}.csv" for c in CONFIGS}
