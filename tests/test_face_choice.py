"""Face-choice rules on hand-made detections."""

import numpy as np
import pytest

from pulid_flux import NoFaceError
from pulid_flux.face import FACE_ORDERS, Face, choose_face, match_face, sort_faces


def face(x0, y0, x1, y1, score=0.9, tag=""):
    kps = np.tile([(x0 + x1) / 2, (y0 + y1) / 2], (5, 1))
    return Face(bbox=(x0, y0, x1, y1), kps=kps, score=score, embedding=np.ones(4), extra={"tag": tag})


@pytest.fixture
def crowd():
    return [face(500, 100, 560, 160, 0.99, "small_right_top"),      # 3600 px^2
            face(20, 300, 140, 420, 0.70, "big_left_bottom"),        # 14400
            face(250, 200, 330, 280, 0.80, "mid_centre")]            # 6400


def tags(faces):
    return [f.extra["tag"] for f in faces]


def test_orders(crowd):
    assert tags(sort_faces(crowd, "largest")) == ["big_left_bottom", "mid_centre", "small_right_top"]
    assert tags(sort_faces(crowd, "left_to_right")) == ["big_left_bottom", "mid_centre", "small_right_top"]
    assert tags(sort_faces(crowd, "right_to_left")) == ["small_right_top", "mid_centre", "big_left_bottom"]
    assert tags(sort_faces(crowd, "top_to_bottom")) == ["small_right_top", "mid_centre", "big_left_bottom"]
    assert tags(sort_faces(crowd, "score")) == ["small_right_top", "mid_centre", "big_left_bottom"]
    assert set(FACE_ORDERS) == {"largest", "left_to_right", "right_to_left", "top_to_bottom", "score"}


def test_index_picks_within_the_order(crowd):
    assert choose_face(crowd).extra["tag"] == "big_left_bottom"
    assert choose_face(crowd, "largest", 2).extra["tag"] == "small_right_top"
    assert choose_face(crowd, "right_to_left", 1).extra["tag"] == "mid_centre"
    assert choose_face(crowd, "top_to_bottom", -1).extra["tag"] == "big_left_bottom"


def test_ties_keep_detector_order():
    a, b = face(0, 0, 10, 10, tag="a"), face(50, 0, 60, 10, tag="b")
    assert tags(sort_faces([a, b], "largest")) == ["a", "b"]
    assert tags(sort_faces([b, a], "largest")) == ["b", "a"]


def test_errors(crowd):
    with pytest.raises(NoFaceError, match="no face found in ref.png"):
        choose_face([], source="ref.png")
    with pytest.raises(ValueError, match=r"face index 3 asked for image, but only 3 face\(s\).*0..2"):
        choose_face(crowd, "largest", 3)
    with pytest.raises(ValueError, match="unknown face order 'biggest'"):
        choose_face(crowd, "biggest")


def test_face_record():
    f = Face(bbox=[1, 2, 11, 22], kps=np.zeros(10), score=np.float32(0.5), embedding=[3.0, 4.0])
    assert f.bbox.dtype == np.float32 and f.kps.shape == (5, 2) and isinstance(f.score, float)
    assert (f.width, f.height, f.area, f.center) == (10.0, 20.0, 200.0, (6.0, 12.0))
    np.testing.assert_allclose(f.normed_embedding, [0.6, 0.8])
    np.testing.assert_allclose(f.embedding, [3.0, 4.0])            # the raw vector is kept
    assert f.summary()["bbox"] == [1.0, 2.0, 11.0, 22.0]


def test_matching_a_face_across_engines():
    template = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], float)
    target = Face(bbox=(10, 10, 90, 100), kps=template, score=0.9)
    same = Face(bbox=(12, 20, 88, 95), kps=template + [6, -5], score=1.4)          # another engine's points
    neighbour = Face(bbox=(110, 10, 190, 100), kps=template + [100, 0], score=0.99)
    assert match_face(target, [neighbour, same]) is same
    assert match_face(target, [neighbour]) is None
    assert match_face(target, []) is None
