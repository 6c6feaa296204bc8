"""Face regions (box + optional mask) on the real photos of ../shared/faces with dlib: the region's
face is the detected face, rescues faces detection misses, picks either person of a group photo
(also through ``pulid-studio score --reference`` with a sidecar), and a mask hiding most of the face
is an error. Plus the formats (widget value, sidecar, mask PNG) and their errors."""

import base64
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pulid_flux.errors import FaceRegionError
from pulid_flux.face import load_engine
from pulid_flux.face.region import (
    FaceRegion,
    encode_mask_png,
    format_region_list,
    list_photos,
    match_regions,
    parse_region_list,
    read_sidecar,
    region_from_dict,
    sidecar_path,
)
from pulid_flux.face.region_locate import (
    MIN_VISIBLE_SHARE,
    box_only_face,
    embed_region,
    locate_face,
    region_embedding,
)
from pulid_flux.images import load_rgb

ROOT = Path(__file__).resolve().parents[1]
SAME_IDENTITY = 0.95          # the bar: a box gives the same identity as detection


def cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def user_box(face, grow_x=1.3, grow_y=1.5, lift=0.1):
    """A box as a person draws it around a detected face: looser than the detector's, a bit higher."""
    x0, y0, x1, y1 = (float(v) for v in face.bbox)
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - lift * h
    return (cx - grow_x * w / 2, cy - grow_y * h / 2, grow_x * w, grow_y * h)


def mask_png(path, width, height, keep):
    """A mask PNG of the photo's size, white where ``keep`` (x0, y0, x1, y1 in photo pixels) is."""
    mask = np.zeros((height, width), bool)
    x0, y0, x1, y1 = (int(round(v)) for v in keep)
    mask[y0:y1, x0:x1] = True
    path.write_bytes(encode_mask_png(mask))
    return path


# ------------------------------------------------------------------------------------------ formats


def test_widget_value_round_trip_with_mask_and_hash():
    mask = np.zeros((30, 40), bool)
    mask[5:20, 10:30] = True
    regions = [None, FaceRegion((10.5, 20, 100, 120), mask, "ab" * 32)]
    text = format_region_list(regions)
    value = json.loads(text)
    assert value[0] is None and value[1]["box"] == [10.5, 20, 100, 120] and value[1]["hash"] == "ab" * 32
    assert value[1]["mask"].startswith("data:image/png;base64,")
    parsed = parse_region_list(text)
    assert parsed[0] is None and parsed[1].box == (10.5, 20.0, 100.0, 120.0)
    np.testing.assert_array_equal(parsed[1].mask, mask)
    assert parsed[1].key == regions[1].key and parsed[1].source == "face_region[1]"
    assert parse_region_list("") == [] and parse_region_list("  ") == []
    # One object for a one-image batch.
    assert parse_region_list('{"box": [1, 2, 30, 40]}')[0].box == (1, 2, 30, 40)


@pytest.mark.parametrize("text, expected", [
    ("[{", "not valid JSON"),
    ('"box"', "expected a list"),
    ('[{"bbox": [1, 2, 3, 4]}]', "face_region[0]: unknown key(s) 'bbox'"),
    ('[null, {"mask": null}]', "face_region[1]: 'box' is missing"),
    ('[{"box": [1, 2, 3]}]', "list of 4 numbers"),
    ('[{"box": [1, 2, "a", 40]}]', "4 numbers"),
    ('[{"box": [10, 10, 200, 5]}]', "at least 8 px"),
    ('[{"box": [1, 2, 30, 40], "mask": "face.png"}]', "PNG data URL here"),
    ('[{"box": [1, 2, 30, 40], "mask": "data:image/png;base64,@@"}]', "invalid base64"),
    ('[{"box": [1, 2, 30, 40], "mask": "data:image/png;base64,aGVsbG8="}]', "not a readable PNG"),
    ('[{"box": [1, 2, 30, 40], "hash": 5}]', "'hash' must be"),
])
def test_bad_widget_values_say_which_entry_and_what_to_write(text, expected):
    with pytest.raises(FaceRegionError, match=re.escape(expected)):
        parse_region_list(text)


def test_mask_rules_alpha_and_luma():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0] = (255, 255, 255, 255)      # light, opaque: face
    rgba[1] = (255, 255, 255, 0)        # light, transparent: not
    rgba[2] = (0, 0, 0, 255)            # dark, opaque: not
    rgba[3] = (200, 200, 200, 200)      # light, mostly opaque: face
    import io
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    mask = region_from_dict({"box": [0, 0, 10, 10], "mask": url}, "test").mask
    assert mask.tolist() == [[True] * 4, [False] * 4, [False] * 4, [True] * 4]


def test_box_outside_the_photo_and_mask_of_another_shape_are_errors():
    with pytest.raises(FaceRegionError, match=r"lies outside the 640x480 photo"):
        FaceRegion((600, 400, 100, 100), source="x").check_image(640, 480)
    FaceRegion((560, 400, 100, 100)).check_image(640, 480)          # 64 % inside: allowed
    with pytest.raises(FaceRegionError, match=r"mask is 100x100 but the photo is 640x480"):
        FaceRegion((10, 10, 50, 50), np.ones((100, 100), bool)).check_image(640, 480)
    FaceRegion((10, 10, 50, 50), np.ones((240, 320), bool)).check_image(640, 480)


def test_regions_go_to_the_image_with_their_hash_or_are_dropped():
    a, b = FaceRegion((0, 0, 10, 10), image_hash="h_b", source="face_region[0]"), None
    c = FaceRegion((5, 5, 10, 10), source="face_region[2]")
    per_image, warnings = match_regions([a, b, c], ["h_a", "h_b", "h_c"], ["image 1", "image 2", "image 3"])
    assert per_image == [None, a, c] and warnings == []            # a follows its photo to position 2
    per_image, warnings = match_regions([FaceRegion((0, 0, 10, 10), image_hash="h_old", source="face_region[0]")],
                                        ["h_new"], ["image 1"])
    assert per_image == [None]
    assert warnings == ["face_region[0] was drawn on another image (hash h_old…, none of the 1 image(s) has it); "
                        "region dropped: draw it again on this photo"]
    per_image, warnings = match_regions([None, c], ["h_a"], ["image 1"])
    assert per_image == [None] and "is for image 2, but the batch has 1" in warnings[0]


def test_sidecar_with_mask_file_and_its_errors(tmp_path):
    photo = tmp_path / "me.jpg"
    Image.new("RGB", (64, 48)).save(photo)
    assert sidecar_path(photo) == tmp_path / "me.face.json" and read_sidecar(photo) is None
    mask_png(tmp_path / "me_mask.png", 64, 48, (10, 10, 40, 40))
    sidecar_path(photo).write_text(json.dumps({"box": [8, 6, 40, 36], "mask": "me_mask.png"}))
    region = read_sidecar(photo)
    assert region.box == (8, 6, 40, 36) and region.mask.shape == (48, 64) and region.mask[20, 20]
    assert region.source == str(tmp_path / "me.face.json")
    # The mask is not a photo of the folder.
    assert [p.name for p in list_photos(tmp_path)] == ["me.jpg"]
    for content, expected in [
        ('{"box": [8, 6, 40, 36], "mask": "gone.png"}', "gone.png does not exist"),
        ('{"box": [8, 6, 40, 36], "mask": "../me_mask.png"}', "a PNG file in the same folder"),
        ('{"box": [8, 6, 40, 36],}', "not valid JSON"),
        ('{"rect": [8, 6, 40, 36]}', "unknown key(s) 'rect'"),
    ]:
        sidecar_path(photo).write_text(content)
        with pytest.raises(FaceRegionError, match=re.escape(str(tmp_path / "me.face.json"))) as info:
            read_sidecar(photo)
        assert expected in str(info.value)


# ------------------------------------------------------------------------------------------ real photos


@pytest.fixture(scope="module")
def engine(dlib_engine):
    return dlib_engine


@pytest.fixture(scope="module")
def photos(faces_dir):
    return faces_dir / "photos"


@pytest.fixture(scope="module")
def refs(engine, photos):
    """Each person's descriptor from two single-face photos (not the group photo)."""
    def mean(names):
        return np.mean([engine.detect(load_rgb(photos / n))[0].normed_embedding for n in names], axis=0)
    return {"obama": mean(["obama_01.jpg", "obama_02.jpg"]), "biden": mean(["biden_01.jpg", "biden_02.jpg"])}


@pytest.mark.parametrize("name", ["obama_01.jpg", "biden_02.jpg", "hinton_01.jpg", "lifeifei_01.jpg"])
def test_a_box_around_a_face_gives_the_same_identity_as_detection(engine, photos, name):
    image = load_rgb(photos / name)
    (detected,) = engine.detect(image)
    region = FaceRegion(user_box(detected))
    located, embedding = embed_region(image, region, engine)
    assert located.mode == "redetected" and located.rotation == 0
    assert cosine(embedding, detected.embedding) >= SAME_IDENTITY
    np.testing.assert_allclose(located.face.kps, detected.kps, atol=0.06 * detected.width)


@pytest.mark.parametrize("name", ["obama_01.jpg", "lecun_01.jpg"])
def test_box_only_alignment_keeps_the_identity(engine, photos, name):
    """No engine to re-detect: the face is placed by the box alone (hairline-to-chin box)."""
    image = load_rgb(photos / name)
    (detected,) = engine.detect(image)
    x0, y0, x1, y1 = (float(v) for v in detected.bbox)
    region = FaceRegion((x0, y0 - 0.25 * (y1 - y0), x1 - x0, 1.25 * (y1 - y0)))
    located = locate_face(image, region, None)
    assert located.box_only and located.face.embedding is None
    np.testing.assert_allclose(located.face.kps, box_only_face(region).kps)
    assert cosine(region_embedding(image, located, engine), detected.embedding) >= SAME_IDENTITY


def shrunk_in_canvas(image, face, face_px, canvas=(1800, 2400), at=(900, 1500)):
    """The photo scaled so its face is ``face_px`` wide, pasted into a large plain canvas."""
    k = face_px / face.width
    small = cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    out = np.full((*canvas, 3), 200, np.uint8)
    out[at[0]:at[0] + small.shape[0], at[1]:at[1] + small.shape[1]] = small
    moved = face.bbox * k + (at[1], at[0], at[1], at[0])
    return out, moved


def test_a_face_too_small_for_detection_is_found_in_the_box(engine, photos):
    image = load_rgb(photos / "obama_01.jpg")
    (detected,) = engine.detect(image)
    canvas, bbox = shrunk_in_canvas(image, detected, 40)
    assert engine.detect(canvas) == []                        # missed at full size
    x0, y0, x1, y1 = bbox
    located, embedding = embed_region(canvas, FaceRegion((x0 - 10, y0 - 15, x1 - x0 + 20, y1 - y0 + 25)), engine)
    assert located.mode == "redetected"
    assert cosine(embedding, detected.embedding) >= SAME_IDENTITY


@pytest.mark.parametrize("turns, found_at", [(1, 270), (3, 90), (2, 180)])
def test_a_turned_face_is_found_by_turning_the_box(engine, photos, turns, found_at):
    image = load_rgb(photos / "obama_02.jpg")
    (detected,) = engine.detect(image)
    turned = np.ascontiguousarray(np.rot90(image, turns))
    assert engine.detect(turned) == []
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in detected.bbox)
    box = {1: (y0, w - x1, y1 - y0, x1 - x0), 3: (h - y1, x0, y1 - y0, x1 - x0), 2: (w - x1, h - y1, x1 - x0, y1 - y0)}
    located, embedding = embed_region(turned, FaceRegion(box[turns]), engine)
    assert (located.mode, located.rotation) == ("redetected", found_at)
    assert cosine(embedding, detected.embedding) >= SAME_IDENTITY
    assert "turned" in located.describe() or "upside down" in located.describe()


def test_a_box_on_either_person_of_a_two_person_photo_gives_that_person(engine, photos, refs):
    image = load_rgb(photos / "group_two_people.jpg")
    faces = sorted(engine.detect(image), key=lambda f: f.center[0])
    assert len(faces) == 2
    people = []
    for face in faces:
        _, embedding = embed_region(image, FaceRegion(user_box(face)), engine)
        unit = embedding / np.linalg.norm(embedding)
        people.append(max(refs, key=lambda p: float(unit @ refs[p])))
        assert cosine(embedding, face.embedding) >= SAME_IDENTITY
    assert sorted(people) == ["biden", "obama"]


def test_a_mask_hiding_most_of_the_face_is_an_error(engine, photos, tmp_path):
    image = load_rgb(photos / "obama_01.jpg")
    (detected,) = engine.detect(image)
    box = user_box(detected)
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in detected.bbox)
    full = np.ones((h, w), bool)
    top_fifth = np.zeros((h, w), bool)
    top_fifth[: int(y0 + 0.15 * (y1 - y0))] = True                 # hair and forehead only
    lower_half = np.zeros((h, w), bool)
    lower_half[int((y0 + y1) / 2):] = True
    located, _ = embed_region(image, FaceRegion(box, full), engine)
    assert located.face.extra["visible_share"] == pytest.approx(1.0, abs=0.01)
    located, _ = embed_region(image, FaceRegion(box, lower_half), engine)
    assert MIN_VISIBLE_SHARE < located.face.extra["visible_share"] < 0.8
    with pytest.raises(FaceRegionError, match=r"the mask leaves only \d+% of the face visible \(at least 30% "):
        embed_region(image, FaceRegion(box, top_fifth, source="obama_01.face.json"), engine)


# ------------------------------------------------------------------------------------------ scoring CLI


def same_place(bbox, face):
    """Boxes of one face found at two scales (HOG's pyramid) differ by a few pixels; another person's
    face is more than a face width away."""
    centre = np.array([(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2])
    return float(np.linalg.norm(centre - np.array(face.center))) < 0.2 * face.width


def read_scores(path):
    with open(path, newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


@pytest.mark.parametrize("person", [0, 1])
def test_score_reference_sidecar_picks_the_person(engine, photos, refs, tmp_path, person):
    """``pulid-studio score --reference group.jpg`` with a sidecar boxing one person: that person's
    photos score high, the other's low; without the sidecar the largest face would be used."""
    image = load_rgb(photos / "group_two_people.jpg")
    face = sorted(engine.detect(image), key=lambda f: f.center[0])[person]
    unit = face.embedding / np.linalg.norm(face.embedding)
    who = max(refs, key=lambda p: float(unit @ refs[p]))
    other = "biden" if who == "obama" else "obama"
    reference = tmp_path / "group.jpg"
    shutil.copyfile(photos / "group_two_people.jpg", reference)
    sidecar_path(reference).write_text(json.dumps({"box": [round(v, 1) for v in user_box(face)]}))
    images = tmp_path / "images"
    images.mkdir()
    for name in ("obama_03.jpg", "biden_01.jpg"):
        shutil.copyfile(photos / name, images / name)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "api_client.cli", "score", "--reference", str(reference),
                           "--images", str(images), "--engine", "dlib", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    scores = read_scores(out / "scores.csv")
    same, different = (float(scores[f"{p}_0{1 if p == 'biden' else 3}.jpg"]["similarity_dlib"]) for p in (who, other))
    assert same > 0.93 > 0.91 > different, (who, same, different)
    photo = json.loads((out / "run_info.json").read_text())["reference"]["dlib"]["photos"][0]
    assert photo["region"] == {"source": str(sidecar_path(reference)), "mode": "redetected"}
    assert same_place(photo["bbox"], face)


def test_a_scored_photo_with_a_sidecar_is_judged_by_that_face(tmp_path, photos):
    from pulid_flux.scoring import ScoringRun

    run = ScoringRun.create([photos / "obama_01.jpg"], ["dlib"])
    folder = tmp_path / "scored"
    folder.mkdir()
    shutil.copyfile(photos / "group_two_people.jpg", folder / "group.jpg")
    engine = run.engines[0].engine
    faces = engine.detect(load_rgb(folder / "group.jpg"))
    best_by_detection = run.score_file(folder / "group.jpg").primary
    other = min(faces, key=lambda f: run.references["dlib"].similarity(f.embedding))
    sidecar_path(folder / "group.jpg").write_text(json.dumps({"box": list(user_box(other))}))
    boxed = run.score_file(folder / "group.jpg").primary
    assert boxed.n_faces == 1 and boxed.similarity < best_by_detection.similarity - 0.05
    assert same_place(boxed.bbox, other)


# ------------------------------------------------------------------------------------------ dataset prep


def test_dataset_prep_honours_sidecars(tmp_path, photos):
    """A photo whose face dlib misses is rescued by its sidecar; the reference's sidecar picks the person."""
    from pulid_flux.dataset import prepare_dataset

    engine = load_engine("dlib")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("obama_01.jpg", "obama_02.jpg", "obama_04.jpg", "biden_02.jpg"):
        shutil.copyfile(photos / name, inputs / name)
    # obama_05 turned on its side: no face for the detector until its sidecar boxes it.
    turned = np.ascontiguousarray(np.rot90(load_rgb(photos / "obama_05_1080p.jpg"), 1))
    Image.fromarray(turned).save(inputs / "obama_turned.png")
    (face,) = engine.detect(load_rgb(photos / "obama_05_1080p.jpg"))
    w = load_rgb(photos / "obama_05_1080p.jpg").shape[1]
    x0, y0, x1, y1 = (float(v) for v in face.bbox)
    (inputs / "obama_turned.face.json").write_text(json.dumps({"box": [y0, w - x1, y1 - y0, x1 - x0],
                                                               "mask": "obama_turned_mask.png"}))
    mask_png(inputs / "obama_turned_mask.png", turned.shape[1], turned.shape[0], (0, 0, turned.shape[1], turned.shape[0]))
    # The reference is the group photo, its sidecar on Obama.
    group = load_rgb(photos / "group_two_people.jpg")
    reference = tmp_path / "group.jpg"
    shutil.copyfile(photos / "group_two_people.jpg", reference)
    group_faces = engine.detect(group)
    obama_ref = engine.detect(load_rgb(photos / "obama_01.jpg"))[0].normed_embedding
    obama = max(group_faces, key=lambda f: float(f.normed_embedding @ obama_ref))
    sidecar_path(reference).write_text(json.dumps({"box": list(user_box(obama))}))

    result = prepare_dataset(inputs, tmp_path / "out", "ohwx man", engine, references=[reference])
    by_name = {item.name: item for item in result.items}
    assert "obama_turned_mask.png" not in by_name                   # a mask is not a photo
    assert by_name["obama_turned.png"].accepted, by_name["obama_turned.png"].detail
    assert by_name["obama_01.jpg"].accepted and by_name["obama_04.jpg"].accepted
    assert by_name["biden_02.jpg"].reason == "not_subject"
    record = next(r for r in json.loads(result.report_path.read_text())["items"] if r["file"] == "obama_turned.png")
    assert record["face_region"]["mode"] == "redetected"
    assert record["face_region"]["source"].endswith("obama_turned.face.json")
