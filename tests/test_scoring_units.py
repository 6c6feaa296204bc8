"""Identity scoring building blocks without face models: statistics, file names, manifests,
thresholds, the grid layout and the plot."""

import json
import math
import statistics

import numpy as np
import pytest
from PIL import Image

from pulid_flux.scoring import SUMMARY_KEYS, parse_gallery_name, read_manifest, render_grid, summarize
from pulid_flux.scoring.calibrate import suggest_threshold
from pulid_flux.scoring.cli import parse_thresholds
from pulid_flux.scoring.engines import parse_spec, resolve_thresholds, spec_key
from pulid_flux.scoring.grid import Tile, small_tile
from pulid_flux.scoring.naming import image_meta
from pulid_flux.scoring.plot import plot_similarities
from pulid_flux.scoring.reference import centroid


def test_summary_definitions():
    sims = [0.5, None, 0.2, 0.9, 0.3]
    s = summarize(sims, threshold=0.3)
    assert tuple(s) == SUMMARY_KEYS
    found = [0.5, 0.2, 0.9, 0.3]
    assert s["count"] == 4
    assert s["mean"] == pytest.approx(statistics.fmean(found), abs=1e-15)
    assert s["median"] == pytest.approx(0.4, abs=1e-15)
    assert s["std"] == pytest.approx(statistics.pstdev(found), abs=1e-15)   # population, not sample
    assert s["std"] != pytest.approx(statistics.stdev(found))
    assert (s["min"], s["max"]) == (0.2, 0.9)
    assert s["no_face_rate"] == 1 / 5
    assert s["pass_rate"] == 3 / 5          # 0.5, 0.9 and 0.3 (at the threshold) pass; no face fails
    assert s["threshold"] == 0.3


def test_summary_without_any_face_and_empty_set():
    s = summarize([None, None], threshold=0.3)
    assert s["count"] == 0 and s["mean"] is None and s["std"] is None and s["min"] is None
    assert s["no_face_rate"] == 1.0 and s["pass_rate"] == 0.0
    assert summarize([0.7], 0.3)["std"] == 0.0
    with pytest.raises(ValueError, match="empty"):
        summarize([], 0.3)


@pytest.mark.parametrize("name, prompt, seed, index", [
    ("03_beach.png", "beach", None, 3),
    ("03_red_dress_seed42.png", "red_dress", 42, 3),
    ("12_red_dress_s42_cfg3.5.png", "red_dress", 42, 12),
    ("01_portrait_cfg3.5_seed-7_w0.9.png", "portrait", 7, 1),
    ("07_city_night_123.webp", "city_night", 123, 7),
    ("00_v2_seed5.png", "v2", 5, 0),            # the first token is always the tag
])
def test_gallery_names(name, prompt, seed, index):
    meta = parse_gallery_name(name)
    assert (meta.prompt, meta.seed, meta.index) == (prompt, seed, index)


def test_unparseable_name_warns_and_keeps_the_stem(caplog):
    meta = parse_gallery_name("ComfyUI_00012_.png")
    assert (meta.prompt, meta.seed, meta.index) == ("ComfyUI_00012_", None, None)
    assert "not a <NN>_<tag>" in caplog.text


def test_manifest_json_and_csv(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps([
        {"file": "cfg_a/ComfyUI_0001.png", "prompt": "beach", "seed": "11"},
        {"file": "02_x.png", "tag": "city"}]))
    records = read_manifest(tmp_path / "m.json")
    assert image_meta("cfg_a/ComfyUI_0001.png", records).prompt == "beach"
    assert image_meta("cfg_a/ComfyUI_0001.png", records).seed == 11
    meta = image_meta("cfg_b/02_x_seed3.png", records)            # no entry: the name decides
    assert (meta.prompt, meta.seed) == ("x", 3)
    assert image_meta("cfg_b/02_x.png", records).prompt == "city"   # bare file-name entry
    (tmp_path / "m.csv").write_text("file,prompt,seed\ncfg/a.png,snow,5\n")
    assert read_manifest(tmp_path / "m.csv") == {"cfg/a.png": {"prompt": "snow", "seed": 5}}
    (tmp_path / "bad.json").write_text(json.dumps([{"file": "a.png", "seed": "x1"}]))
    with pytest.raises(ValueError, match="bad.json entry 1 seed: expected an integer"):
        read_manifest(tmp_path / "bad.json")


def test_engine_specs_and_thresholds():
    assert parse_spec("insightface:buffalo_l") == ("insightface", "buffalo_l")
    assert spec_key("insightface:buffalo_l") == "insightface_buffalo_l"
    assert spec_key("arcface:/m/CurricularFace.onnx") == "arcface_curricularface"
    assert spec_key("/m/AdaFace-R100.onnx") == "arcface_adaface_r100"
    with pytest.raises(ValueError, match="unknown scoring engine 'facenet'"):
        parse_spec("facenet")

    class E:
        def __init__(self, key, t):
            self.key, self.default_threshold = key, t
    engines = [E("dlib", 0.915), E("insightface", 0.3)]
    assert resolve_thresholds(engines) == {"dlib": 0.915, "insightface": 0.3}
    assert resolve_thresholds(engines, 0.5) == {"dlib": 0.5, "insightface": 0.5}
    assert resolve_thresholds(engines, {"insightface": 0.4}) == {"dlib": 0.915, "insightface": 0.4}
    with pytest.raises(ValueError, match="unknown engine.*dilb"):
        resolve_thresholds(engines, {"dilb": 0.9})
    assert parse_thresholds(["0.35"]) == 0.35
    assert parse_thresholds(["dlib=0.9", "insightface:buffalo_l=0.4"]) == {"dlib": 0.9, "insightface_buffalo_l": 0.4}
    with pytest.raises(ValueError, match="lies in"):
        parse_thresholds(["3"])


def test_centroid_is_the_renormalised_mean_of_unit_vectors():
    a, b = np.array([3.0, 0.0]), np.array([0.0, 0.5])       # different norms weigh the same
    assert np.allclose(centroid([a, b]), [math.sqrt(0.5), math.sqrt(0.5)])


def test_threshold_suggestion():
    assert suggest_threshold([0.95, 0.97], [0.80, 0.90]) == (pytest.approx(0.925), True)
    # Overlap: 0.55 and 0.8 both misclassify one pair in six (balanced); ties go to the lower threshold.
    assert suggest_threshold([0.6, 0.9, 0.95], [0.5, 0.7, 0.4]) == (pytest.approx(0.55), False)


def test_grid_tiles_in_stable_order_with_pixels():
    rows, cols = ["beach", "city", "snow"], ["base", "pulid_0.8", "pulid_1.0"]
    colours = {(r, c): (20 + 70 * i, 30 + 60 * j, 200 - 40 * i) for i, r in enumerate(rows) for j, c in enumerate(cols)}
    tiles = {cell: Tile(np.full((90, 60, 3), colour, np.uint8), "0.512\nseed 1", "pass")
             for cell, colour in colours.items() if cell != ("city", "base")}
    image, layout = render_grid(tiles, rows, cols, tile=120)
    assert layout.order() == [(r, c) for r in rows for c in cols]
    assert image.size == layout.size
    pixels = np.asarray(image)
    xs = [layout.boxes[(rows[0], c)][0] for c in cols]
    ys = [layout.boxes[(r, cols[0])][1] for r in rows]
    assert xs == sorted(xs) and ys == sorted(ys)          # columns left to right, rows top to bottom
    for cell, (x0, y0, x1, y1) in layout.boxes.items():
        assert (x1 - x0, y1 - y0) == (120, 120)
        centre = pixels[(y0 + y1) // 2, (x0 + x1) // 2]
        if cell == ("city", "base"):
            assert tuple(centre) == (40, 40, 40)           # missing cell: empty tile
        else:
            assert tuple(centre) == colours[cell]
    assert small_tile(3) > small_tile(8)
    small, _ = render_grid(tiles, rows, cols, tile=small_tile(3))
    assert 1000 <= small.width <= 1100


def test_plot_is_a_png(tmp_path):
    sims = {"base": {"dlib": [0.95, None, 0.9]}, "pulid": {"dlib": [None, None]}}
    summaries = {c: {"dlib": summarize(v["dlib"], 0.915)} for c, v in sims.items()}
    path = plot_similarities(tmp_path / "p.png", ["base", "pulid"], sims, summaries, ["dlib"], {"dlib": "dlib:hog"})
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 0 and im.height > 0
