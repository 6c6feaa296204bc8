"""Identity scoring with the dlib engine on the real photos of shared/faces.

Every photo is detected once per module: the engine is wrapped in a cache keyed by pixel content.
Detection runs with upsample 0 (faster; the documented calibration holds for both 0 and 1).
"""

import csv
import json
import statistics

import numpy as np
import pytest
from PIL import Image

from pulid_flux.errors import NoFaceError
from pulid_flux.face import FaceEngine, load_engine
from pulid_flux.images import content_hash
from pulid_flux.scoring import DLIB_THRESHOLD, ScoringRun, calibrate_photos, score_folder, wrap_engine
from pulid_flux.scoring.stats import SUMMARY_KEYS

REFERENCE = ("obama_01.jpg", "obama_02.jpg")


class CachedEngine(FaceEngine):
    """Delegates to a real engine, remembering its answer per image content."""

    def __init__(self, engine):
        self.inner, self.cache, self.family = engine, {}, engine.family
        self.license_note = engine.license_note

    @property
    def name(self):
        return self.inner.name

    @property
    def embedding_size(self):
        return self.inner.embedding_size

    def detect(self, image, *, order="largest", embed=True):
        key = (content_hash(image), order, embed)
        if key not in self.cache:
            self.cache[key] = self.inner.detect(image, order=order, embed=embed)
        return self.cache[key]

    def embed_aligned(self, crop):
        return self.inner.embed_aligned(crop)


@pytest.fixture(scope="module")
def labels(faces_dir):
    return json.loads((faces_dir / "labels.json").read_text())["photos"]


@pytest.fixture(scope="module")
def engine():
    return CachedEngine(load_engine("dlib", upsample=0))


@pytest.fixture(scope="module")
def calibration(engine, faces_dir):
    return calibrate_photos(engine, faces_dir)


def gradient(path):
    x = np.linspace(0, 255, 480)
    image = np.stack([np.tile(x, (320, 1)), np.tile(x[::-1], (320, 1)), np.full((320, 480), 90.0)], -1)
    Image.fromarray(image.astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def scored(engine, faces_dir, labels, tmp_path_factory):
    """Every photo except the references, plus a face-less gradient, scored against obama_01 + obama_02."""
    folder = tmp_path_factory.mktemp("images")
    for name in labels:
        if name not in REFERENCE:
            (folder / name).symlink_to(faces_dir / "photos" / name)
    gradient(folder / "zz_gradient.png")
    out = tmp_path_factory.mktemp("out")
    result = score_folder(folder, [faces_dir / "photos" / r for r in REFERENCE], out, engines=[wrap_engine(engine)])
    return result, out


def test_default_threshold_is_inside_the_measured_gap(calibration):
    d = calibration.describe()
    assert calibration.separable
    assert d["n_identities"] == 9 and d["same_person"]["n"] == 40 and d["different_people"]["n"] == 150
    # The documented numbers (engines.py): same person >= 0.93, different people <= 0.90.
    assert d["same_person"]["min"] == pytest.approx(0.932, abs=0.01)
    assert d["different_people"]["max"] == pytest.approx(0.901, abs=0.01)
    assert d["different_people"]["max"] + 0.01 < DLIB_THRESHOLD < d["same_person"]["min"] - 0.01
    assert abs(calibration.threshold - DLIB_THRESHOLD) < 0.005
    assert calibration.skipped == []


def test_same_person_passes_and_everyone_else_fails(scored, labels):
    result, _ = scored
    rows = {im.file: im for im in result.images}
    threshold = result.run.thresholds["dlib"]
    assert threshold == DLIB_THRESHOLD
    for name, label in labels.items():
        if name in REFERENCE:
            continue
        s = rows[name].scores["dlib"]
        assert s.face_found, name
        if label["identity"] == "obama" or "obama" in label.get("people", ()):
            assert s.similarity > threshold, name
        else:
            assert s.similarity < threshold, name
    # Group photos: the best-matching of several faces is the one scored.
    assert rows["group_obama_biden.jpg"].scores["dlib"].n_faces >= 2
    assert rows["group_two_people.jpg"].scores["dlib"].n_faces == 2


def test_best_face_is_the_most_similar_one(scored, engine, faces_dir):
    result, _ = scored
    from pulid_flux.images import load_rgb
    image = load_rgb(faces_dir / "photos" / "group_two_people.jpg")
    faces = engine.detect(image)
    centroid = result.run.references["dlib"].centroid
    sims = [float(f.normed_embedding @ centroid) for f in faces]
    best = faces[int(np.argmax(sims))]
    s = {im.file: im for im in result.images}["group_two_people.jpg"].scores["dlib"]
    assert s.similarity == pytest.approx(max(sims), abs=1e-6) and max(sims) - min(sims) > 0.05
    assert s.face_px == pytest.approx(np.sqrt(best.area), abs=0.05)


def test_no_face_image_counts_in_no_face_rate_not_in_mean(scored):
    _, out = scored
    with open(out / "scores.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["file", "face_found", "n_faces", "similarity_dlib", "face_px", "error"]
        rows = list(reader)
    gradient_row = next(r for r in rows if r["file"] == "zz_gradient.png")
    assert gradient_row == {"file": "zz_gradient.png", "face_found": "0", "n_faces": "0", "similarity_dlib": "",
                            "face_px": "", "error": ""}
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == ["dlib"] and tuple(summary["dlib"]) == SUMMARY_KEYS
    s = summary["dlib"]
    # Recompute everything from the CSV rows.
    found = [float(r["similarity_dlib"]) for r in rows if r["similarity_dlib"] != ""]
    assert all(r["face_found"] == "1" for r in rows if r["similarity_dlib"] != "")
    assert s["count"] == len(found) == len(rows) - 1
    assert s["mean"] == pytest.approx(statistics.fmean(found), rel=1e-12)
    assert s["median"] == pytest.approx(statistics.median(found), rel=1e-12)
    assert s["std"] == pytest.approx(statistics.pstdev(found), rel=1e-9)
    assert (s["min"], s["max"]) == (min(found), max(found))
    assert s["no_face_rate"] == 1 / len(rows)
    assert s["pass_rate"] == sum(v >= s["threshold"] for v in found) / len(rows)
    assert s["threshold"] == DLIB_THRESHOLD
    info = json.loads((out / "run_info.json").read_text())
    assert info["engines"]["dlib"]["model"] == "dlib:hog"
    assert [p["file"].rsplit("/", 1)[-1] for p in info["reference"]["dlib"]["photos"]] == list(REFERENCE)


def test_reference_without_a_face_is_an_error_naming_the_file(engine, faces_dir, tmp_path):
    blank = gradient(tmp_path / "blank_reference.png")
    with pytest.raises(NoFaceError, match="blank_reference.png: no face found in this reference photo"):
        ScoringRun.create([faces_dir / "photos" / "obama_01.jpg", blank], [wrap_engine(engine)])
    with pytest.raises(FileNotFoundError, match="missing.jpg: reference image not found"):
        ScoringRun.create([tmp_path / "missing.jpg"], [wrap_engine(engine)])
