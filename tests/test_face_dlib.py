"""dlib engine on the real photos of ../shared/faces: counts, identity, face choice, keypoints, alignment.

Every photo is detected once per module (HOG, upsample 1, detection on a copy shrunk to 640 px for
speed; landmarks and descriptors on the full image).
"""

import json

import numpy as np
import pytest

from pulid_flux import PulidWeightsError
from pulid_flux.face import (
    FFHQ_TEMPLATE_512,
    align_ffhq,
    choose_face,
    load_engine,
    norm_crop,
    transform_points,
)
from pulid_flux.images import load_rgb

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def labels(faces_dir):
    return json.loads((faces_dir / "labels.json").read_text())["photos"]


@pytest.fixture(scope="module")
def engine():
    return load_engine("dlib", detect_max_side=640)


@pytest.fixture(scope="module")
def photos(faces_dir, labels):
    return {name: load_rgb(faces_dir / "photos" / name) for name in labels}


@pytest.fixture(scope="module")
def detections(engine, photos):
    return {name: engine.detect(image) for name, image in photos.items()}


@pytest.fixture(scope="module")
def identity_refs(detections, labels):
    """Mean normalised descriptor of each person over their single-face photos."""
    refs = {}
    for name, meta in labels.items():
        if meta["faces"] == 1 and detections[name]:
            refs.setdefault(meta["identity"], []).append(detections[name][0].normed_embedding)
    return {person: np.mean(vectors, axis=0) for person, vectors in refs.items()}


def who(face, refs, among):
    return max(among, key=lambda person: float(face.normed_embedding @ refs[person]))


def test_face_counts(detections, labels):
    wrong = {}
    for name, meta in labels.items():
        found = len(detections[name])
        ok = found == 1 if meta["faces"] == 1 else found >= len(meta["people"])
        if not ok:
            wrong[name] = (found, meta["faces"])
    assert not wrong, f"(found, labelled) faces: {wrong}"


def test_same_person_is_closer_than_any_other_person(detections, labels):
    singles = [n for n, m in labels.items() if m["faces"] == 1]
    same, different = [], []
    for i, a in enumerate(singles):
        for b in singles[i + 1:]:
            sim = float(detections[a][0].normed_embedding @ detections[b][0].normed_embedding)
            (same if labels[a]["identity"] == labels[b]["identity"] else different).append((sim, a, b))
    assert len(same) >= 40 and len(different) >= 100
    worst_same, worst_diff = min(same), max(different)
    assert worst_same[0] > worst_diff[0], f"lowest same-person pair {worst_same} vs highest other pair {worst_diff}"
    assert all(f.embedding.shape == (128,) for v in detections.values() for f in v)


# (order, index) -> person. group_obama_biden also holds a smaller background face at the far right.
GROUP_REQUESTS = {
    "group_two_people.jpg": [("left_to_right", 0, "obama"), ("left_to_right", 1, "biden"),
                             ("right_to_left", 0, "biden"), ("right_to_left", 1, "obama")],
    "group_obama_biden.jpg": [("left_to_right", 0, "biden"), ("left_to_right", 1, "obama"),
                              ("top_to_bottom", 0, "obama"), ("top_to_bottom", 1, "biden")],
}


@pytest.mark.parametrize("photo", sorted(GROUP_REQUESTS))
def test_face_choice_on_group_photos_picks_one_person_for_embedding_and_alignment(
        photo, engine, photos, detections, labels, identity_refs):
    everyone = sorted(identity_refs)
    assert sorted(p for _, _, p in GROUP_REQUESTS[photo]) == sorted(labels[photo]["people"] * 2)
    for order, index, person in GROUP_REQUESTS[photo]:
        face = choose_face(detections[photo], order, index, source=photo)
        assert who(face, identity_refs, everyone) == person, f"{order}[{index}] embedding is not {person}"
        # The alignment made from the same face shows the same person.
        crop, matrix = align_ffhq(photos[photo], face.kps)
        in_crop = choose_face(engine.detect(crop), "largest", source=f"aligned {photo}")
        assert who(in_crop, identity_refs, everyone) == person, f"{order}[{index}] aligned crop is not {person}"
        assert np.abs(in_crop.kps - transform_points(face.kps, matrix)).max() < 6.0
    largest = choose_face(detections[photo], "largest")
    assert largest.area == max(f.area for f in detections[photo])
    assert who(largest, identity_refs, everyone) in labels[photo]["people"]


def test_keypoints_are_in_scrfd_order(detections):
    for name, faces in detections.items():
        for f in faces:
            (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = f.kps
            assert lex < nx < rex and lmx < rmx, name           # image-left before image-right
            assert max(ley, rey) < ny < min(lmy, rmy), name     # eyes, then nose, then mouth
            x0, y0, x1, y1 = f.bbox
            assert x0 - 5 < lex and rex < x1 + 5 and y0 - 5 < ley and max(lmy, rmy) < y1 + 5, name


def test_five_point_estimate_agrees_with_the_68_point_model(photos, detections):
    precise = load_engine("dlib", landmarks=68, detect_max_side=640)
    errors = []
    for name in ("obama_01.jpg", "biden_02.jpg", "hinton_01.jpg", "lecun_01.jpg", "rihanna_01.webp",
                 "obama_07_small.jpg"):
        (ref,) = precise.detect(photos[name], embed=False)
        iod = np.linalg.norm(ref.kps[1] - ref.kps[0])
        errors.append(np.linalg.norm(detections[name][0].kps - ref.kps, axis=1) / iod)
    errors = np.array(errors)
    assert errors[:, :2].max() < 0.08, f"eye error / eye distance: {errors[:, :2].round(3)}"
    assert errors[:, 2:].max() < 0.35 and errors[:, 2:].mean() < 0.2, f"nose/mouth: {errors[:, 2:].round(3)}"


def test_alignment_of_real_faces(engine, photos, detections):
    for name in ("obama_01.jpg", "obama_07_small.jpg", "biden_02.jpg", "liuyifei_01.png"):
        face = detections[name][0]
        crop, matrix = align_ffhq(photos[name], face.kps)
        moved = transform_points(face.kps, matrix)
        assert np.linalg.norm(moved[:2] - FFHQ_TEMPLATE_512[:2], axis=1).max() < 15, name
        (again,) = engine.detect(crop, embed=False)
        assert np.abs(again.kps - moved).max() < 5.0, f"{name}: re-detected keypoints moved"


def test_embedding_of_the_aligned_crop_matches(engine, photos, detections):
    for name in ("obama_02.jpg", "lifeifei_01.jpg", "alex_lacamoire_01.png"):
        face = detections[name][0]
        crop, _ = norm_crop(photos[name], face.kps, 112)
        vector = engine.embed_aligned(crop)
        assert vector.shape == (128,)
        assert float(vector @ face.normed_embedding) / np.linalg.norm(vector) > 0.98, name


def test_cnn_detector(photos):
    cnn = load_engine("dlib", detector="cnn", upsample=0)
    (face,) = cnn.detect(photos["obama_07_small.jpg"], embed=False)
    assert cnn.name == "dlib:cnn" and face.score > 0.5 and face.width > 60


def test_engine_metadata_and_errors(engine, tmp_path):
    assert engine.name == "dlib:hog" and engine.embedding_size == 128
    assert "not restricted to non-commercial" in engine.license_note
    with pytest.raises(PulidWeightsError, match="shape_predictor_5_face_landmarks.dat.*face-recognition-models"):
        load_engine("dlib", models_dir=tmp_path)
    with pytest.raises(ValueError, match="landmarks must be 5 or 68"):
        load_engine("dlib", landmarks=7)
    with pytest.raises(ValueError, match="unknown face engine 'opencv'"):
        load_engine("opencv")
