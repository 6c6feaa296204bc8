"""Subject finding and the accept/reject rules, on synthetic faces with controlled embeddings."""

import logging

import numpy as np
import pytest

from pulid_flux import NoFaceError
from pulid_flux.dataset import (DatasetItem, PrepareOptions, drop_duplicates, find_subject, judge,
                                subject_from_faces)
from pulid_flux.face import Face

DIM = 128
THRESHOLD = 0.5
RNG = np.random.default_rng(7)
IDENTITIES = {name: RNG.normal(size=DIM) for name in "ABCD"}


def embedding(identity, noise=0.5):
    base = IDENTITIES[identity] / np.linalg.norm(IDENTITIES[identity])
    jitter = RNG.normal(size=DIM)
    return base + noise * jitter / np.linalg.norm(jitter)


def face(identity, box=(400, 300, 600, 540), score=1.0):
    return Face(bbox=box, kps=np.zeros((5, 2)), score=score, embedding=embedding(identity))


def photo(name, *identities, size=(1600, 1200), boxes=None, sharpness=200.0):
    boxes = boxes or [(400 + 500 * i, 300, 600 + 500 * i, 540) for i in range(len(identities))]
    faces = [face(who, box) for who, box in zip(identities, boxes)]
    return DatasetItem(name=name, width=size[0], height=size[1], faces=faces, sharpness=[sharpness] * len(faces),
                       phash=int(RNG.integers(0, 2**62)))


def folder():
    items = [photo(f"a{n}.jpg", "A") for n in range(6)]
    items += [photo(f"b{n}.jpg", "B") for n in range(3)]
    items += [photo(f"c{n}.jpg", "C") for n in range(2)]
    items += [photo("group.jpg", "B", "A"), photo("empty.jpg"), photo("d.jpg", "D")]
    return items


def test_the_most_frequent_identity_is_the_subject():
    items = folder()
    subject = find_subject(items, THRESHOLD, "test")
    assert set(subject.members) == {f"a{n}.jpg" for n in range(6)} | {"group.jpg"}
    assert subject.runner_up == 3 and not subject.ambiguous
    sims = subject.similarities([face("A"), face("B")])
    assert sims[0] > 0.7 and sims[1] < 0.3
    assert subject.summary()["photos"] == 7 and subject.summary()["embedding_size"] == DIM


def test_a_tie_is_reported_as_ambiguous(caplog):
    items = [photo(f"a{n}.jpg", "A") for n in range(3)] + [photo(f"b{n}.jpg", "B") for n in range(3)]
    with caplog.at_level(logging.WARNING):
        subject = find_subject(items, THRESHOLD)
    assert subject.ambiguous and subject.runner_up == 3 and len(subject.members) == 3
    assert "ambiguous" in caplog.text


def test_a_photo_counts_once_even_with_two_faces_of_the_subject():
    # A: 3 faces in 2 photos; B: 3 faces in 3 photos. Photos count, so B is the subject.
    items = [photo("mirror.jpg", "A", "A"), photo("a.jpg", "A")] + [photo(f"b{n}.jpg", "B") for n in range(3)]
    subject = find_subject(items, THRESHOLD)
    assert subject.members == ["b0.jpg", "b1.jpg", "b2.jpg"] and subject.runner_up == 2
    assert not subject.ambiguous


def test_no_face_anywhere_raises():
    with pytest.raises(NoFaceError, match="no face found in any of the 2"):
        find_subject([photo("x.jpg"), photo("y.jpg")], THRESHOLD)


def test_references_define_the_subject(caplog):
    subject = subject_from_faces([("r1.jpg", face("B")), ("r2.jpg", face("B"))], THRESHOLD, "test")
    assert subject.method == "reference" and subject.members == ["r1.jpg", "r2.jpg"]
    assert subject.similarities([face("B")])[0] > 0.7
    with caplog.at_level(logging.WARNING):
        subject_from_faces([("r1.jpg", face("B")), ("r2.jpg", face("B")), ("odd.jpg", face("C"))], 0.9)
    assert "odd.jpg" in caplog.text


@pytest.fixture
def subject():
    return subject_from_faces([("ref.jpg", face("A"))], THRESHOLD)


def decided(item, subject, **options):
    judge(item, subject, PrepareOptions(**options))
    return item.status, item.reason


def test_reasons(subject):
    assert decided(photo("none.jpg"), subject) == ("rejected", "no_face")
    assert decided(photo("b.jpg", "B"), subject) == ("rejected", "not_subject")
    # The subject among others: the most similar face is the subject's, wherever it is.
    item = photo("pair.jpg", "B", "A")
    assert decided(item, subject) == ("rejected", "multiple_faces") and item.subject_index == 1
    small_other = photo("small.jpg", "A", "B", boxes=[(400, 300, 600, 540), (1300, 900, 1360, 972)])
    assert decided(small_other, subject) == ("accepted", None)
    assert small_other.crop.avoided == 1 and small_other.crop.blurred == []
    # The other face is nearly as large (0.9) but the ratio is relaxed: accepted, the crop leaves it out.
    relaxed = photo("pair.jpg", "B", "A", boxes=[(1000, 300, 1180, 516), (400, 300, 600, 540)])
    assert decided(relaxed, subject, competing_face_ratio=1.0) == ("accepted", None)
    assert relaxed.crop.avoided == 1
    assert decided(photo("tiny.jpg", "A", boxes=[(400, 300, 450, 360)]), subject) == ("rejected", "face_too_small")
    far = photo("far.jpg", "A", size=(4000, 3000), boxes=[(2000, 300, 2100, 420)])
    assert decided(far, subject) == ("rejected", "face_too_small") and "of the image" in far.detail
    cut = photo("cut.jpg", "A", boxes=[(-60, 300, 140, 540)])
    assert decided(cut, subject) == ("rejected", "face_too_small") and "cuts the face" in cut.detail
    assert decided(photo("small.jpg", "A", size=(300, 260), boxes=[(100, 60, 200, 180)]), subject) == (
        "rejected", "low_resolution")
    assert decided(photo("soft.jpg", "A", sharpness=12.0), subject) == ("rejected", "blurry")
    assert decided(photo("soft.jpg", "A", sharpness=12.0), subject, blur_threshold=10) == ("accepted", None)
    assert decided(photo("ok.jpg", "A"), subject) == ("accepted", None)


def test_near_duplicates_keep_the_better_photo(subject):
    small = photo("small.jpg", "A", boxes=[(400, 300, 560, 492)])
    large = photo("large.jpg", "A")
    other = photo("other.jpg", "A")
    large.phash = small.phash ^ 0b1011              # 3 bits apart
    other.phash = small.phash ^ ((1 << 40) - 1)     # 40 bits apart
    items = [small, large, other]
    for item in items:
        judge(item, subject, PrepareOptions())
    drop_duplicates(items, max_distance=10)
    assert (large.status, other.status) == ("accepted", "accepted")
    assert (small.reason, small.duplicate_of) == ("duplicate", "large.jpg")
    assert "hash distance 3" in small.detail
