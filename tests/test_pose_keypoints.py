"""POSE_KEYPOINT JSON: byte-exact round trips of controlnet_aux files, units, validation errors."""

import json

import numpy as np
import pytest

from pulid_flux.pose import (
    as_frame,
    as_frames,
    is_normalized,
    load_pose_json,
    pose_from_json_string,
    save_pose_json,
)
from pulid_flux.pose.keypoints import PixelPose, PoseFormatError, head_top


def _numbers(values):
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def _triplets(rng, n, width, height, missing=()):
    out = []
    for i in range(n):
        if i in missing:
            out += [0.0, 0.0, 0.0]
        else:
            # DWPose stores float32 pixel values widened to float: long, exact decimal expansions.
            out += [float(np.float32(rng.uniform(0, width))), float(np.float32(rng.uniform(0, height))), 1.0]
    return out


def dwpose_frame_text(rng):
    """One frame as controlnet_aux's 'Save Pose Keypoints' writes it (json.dump: default separators,
    keys in encode_poses_as_dict's order, absent parts as null, missing points as 0.0, 0.0, 0.0)."""
    person_a = ('{"pose_keypoints_2d": ' + _numbers(_triplets(rng, 18, 832, 1216, missing={10, 13})) +
                ', "face_keypoints_2d": ' + _numbers(_triplets(rng, 70, 832, 1216)) +
                ', "hand_left_keypoints_2d": ' + _numbers(_triplets(rng, 21, 832, 1216)) +
                ', "hand_right_keypoints_2d": null}')
    person_b = ('{"pose_keypoints_2d": ' + _numbers(_triplets(rng, 18, 832, 1216)) +
                ', "face_keypoints_2d": null, "hand_left_keypoints_2d": null, "hand_right_keypoints_2d": null}')
    return '{"people": [' + person_a + ', ' + person_b + '], "canvas_height": 1216, "canvas_width": 832}'


def test_controlnet_aux_file_round_trips_byte_for_byte(tmp_path):
    rng = np.random.default_rng(1)
    text = "[" + dwpose_frame_text(rng) + ", " + dwpose_frame_text(rng) + "]"
    src = tmp_path / "aux.json"
    src.write_text(text)
    pose = load_pose_json(src)
    assert isinstance(pose, list) and len(pose) == 2
    out = save_pose_json(pose, tmp_path / "out" / "again.json")
    assert out.read_text() == text


def test_unknown_keys_dict_top_level_and_ints_survive(tmp_path):
    text = ('{"people": [{"pose_keypoints_2d": ' + _numbers([0.5, 0.25, 1] * 18) +
            ', "person_id": [-1], "extra": {"k": 1}}], "canvas_height": 512, "canvas_width": 512, '
            '"version": "1.3", "animals": [], "note": "hand written", "count": 3}')
    src = tmp_path / "single.json"
    src.write_text(text)
    pose = load_pose_json(src)
    assert isinstance(pose, dict)
    assert save_pose_json(pose, tmp_path / "b.json").read_text() == text
    ints = ('[{"people": [{"pose_keypoints_2d": [' + ", ".join(["10, 20, 1"] * 18) +
            ']}], "canvas_width": 64, "canvas_height": 64}]')
    assert json.dumps(pose_from_json_string(ints)) == ints


def test_nested_triplets_are_read_and_kept_nested(tmp_path):
    nested = [[0.1 * (i % 9) + 0.05, 0.05 * i, 1.0] for i in range(18)]
    pose = [{"people": [{"pose_keypoints_2d": nested}], "canvas_width": 640, "canvas_height": 480}]
    path = save_pose_json(pose, tmp_path / "nested.json")
    again = load_pose_json(path)
    assert again == pose
    assert is_normalized(as_frame(again))


def test_units_detection():
    norm = {"people": [{"pose_keypoints_2d": [0.5, 0.5, 1.0] * 17 + [0.0, 0.0, 0.0]}],
            "canvas_width": 100, "canvas_height": 100}
    pix = {"people": [{"pose_keypoints_2d": [0.5, 0.5, 1.0] * 17 + [50.0, 20.0, 1.0]}],
           "canvas_width": 100, "canvas_height": 100}
    assert is_normalized(norm) and not is_normalized(pix)
    # A point with confidence 0 does not count, however large its coordinates.
    ghost = {"people": [{"pose_keypoints_2d": [0.5, 0.5, 1.0] * 17 + [80.0, 80.0, 0.0]}],
             "canvas_width": 100, "canvas_height": 100}
    assert is_normalized(ghost)


def test_pixel_view_is_in_canvas_pixels_for_both_units():
    norm = {"people": [{"pose_keypoints_2d": [0.5, 0.25, 1.0] * 18}], "canvas_width": 800, "canvas_height": 400}
    body = PixelPose(norm).body(0)
    assert np.allclose(body[:, :2], [400.0, 100.0])
    assert PixelPose(norm).to_frame() == norm


@pytest.mark.parametrize("frame,match", [
    ({"people": []}, "canvas_width"),
    ({"people": [], "canvas_width": 0, "canvas_height": 5}, "canvas_width"),
    ({"people": {}, "canvas_width": 5, "canvas_height": 5}, "'people' must be a list"),
    ({"people": ["x"], "canvas_width": 5, "canvas_height": 5}, "person 0"),
    ({"people": [{"pose_keypoints_2d": [1.0] * 75}], "canvas_width": 5, "canvas_height": 5},
     r"pose_keypoints_2d.*18.*75"),
    ({"people": [{"pose_keypoints_2d": [1.0] * 54, "hand_left_keypoints_2d": [1.0] * 60}],
      "canvas_width": 5, "canvas_height": 5}, r"hand_left_keypoints_2d.*21"),
    ({"people": [{"pose_keypoints_2d": ["a"] * 54}], "canvas_width": 5, "canvas_height": 5}, "number"),
])
def test_malformed_frames_name_the_problem(frame, match):
    with pytest.raises(PoseFormatError, match=match):
        as_frames([frame])


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(PoseFormatError, match="not found"):
        load_pose_json(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PoseFormatError, match=r"bad\.json.*not valid JSON"):
        load_pose_json(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('[{"people": [{"pose_keypoints_2d": [1, 2]}], "canvas_width": 9, "canvas_height": 9}]')
    with pytest.raises(PoseFormatError, match=r"wrong\.json.*frame 0.*person 0.*pose_keypoints_2d"):
        load_pose_json(wrong)


def test_head_top_is_above_the_nose_by_head_proportions():
    body = np.zeros((18, 3))
    body[0] = (100, 114.5, 1)   # nose
    body[1] = (100, 130, 1)     # neck
    body[14] = (96, 111, 1)
    body[15] = (104, 111, 1)
    assert head_top(body) == pytest.approx(100.55)
    body[1, 2] = 0              # without the neck: three eye-to-nose spans above the eyes
    assert head_top(body) == pytest.approx(111 - 3 * 3.5)
    assert head_top(np.zeros((18, 3))) is None
