"""Pose bank placement for many aspects, users' JSON poses, and the per-prompt composition choice."""

import json

import numpy as np
import pytest

from pulid_flux.pose import (
    BUILTIN_POSES,
    UnknownPoseError,
    arm_angles,
    bank,
    choose_composition,
    figure_bounds,
    limb_lengths,
    list_pose_bank,
    pose_bank,
    render_pose,
)
from pulid_flux.pose.keypoints import BODY, PixelPose, head_top, is_normalized

ASPECTS = [(1024, 1024), (832, 1216), (1216, 832), (768, 1344), (1344, 768), (512, 2048), (2048, 512)]


def visible_xy(frame):
    body = np.array(frame["people"][0][BODY]).reshape(18, 3)
    vis = body[:, 2] > 0
    return body[vis, :2] * [frame["canvas_width"], frame["canvas_height"]], vis


@pytest.mark.parametrize("name", BUILTIN_POSES)
@pytest.mark.parametrize("size", ASPECTS)
def test_builtin_poses_fit_inside_every_aspect(name, size):
    frame = pose_bank(name, *size)
    w, h = size
    assert (frame["canvas_width"], frame["canvas_height"]) == size
    assert is_normalized(frame)
    xy, vis = visible_xy(frame)
    assert vis[[0, 1, 2, 5, 14, 15, 16, 17]].all()          # head, neck and shoulders always in view
    assert (xy[:, 0] >= 0.05 * w - 1e-6).all() and (xy[:, 0] <= 0.95 * w + 1e-6).all()
    assert (xy[:, 1] >= 0).all() and (xy[:, 1] <= h + 1e-6).all()
    b = figure_bounds(frame)
    assert b.crown == pytest.approx(0.18 * h, abs=1.0)      # 18 % head-room
    assert (b.left + b.right) / 2 == pytest.approx(w / 2)
    img = render_pose(frame)
    assert img.shape == (h, w, 3) and img.any()


def test_framings_show_more_of_the_body_in_order():
    counts = [visible_xy(pose_bank(n, 1216, 832))[1].sum() for n in ("headshot", "portrait", "medium", "full_body")]
    assert counts == sorted(counts) and counts[0] < counts[-1] == 18
    head = visible_xy(pose_bank("headshot", 1216, 832))[1]
    assert not head[[8, 11]].any()                            # no hips in a headshot
    # On a landscape canvas the cut framings put their cut line on the bottom edge: every point sits
    # where crown -> cut spans the 82 % of the height below the head-room.
    for name in ("headshot", "portrait", "medium"):
        frame = pose_bank(name, 1216, 832)
        cm = bank.builtin_figure_cm(name)
        crown_cm = head_top(np.column_stack([cm, np.ones(18)]))
        cut_cm = bank.FRAMINGS[name][0]
        xy, vis = visible_xy(frame)
        expected_y = 0.18 * 832 + (cm[vis, 1] - crown_cm) / (cut_cm - crown_cm) * 0.82 * 832
        assert np.allclose(xy[:, 1], expected_y), name
        assert (cm[~vis, 1] > cut_cm).all()                   # and what is missing lies below the cut


def test_full_body_is_anatomically_plausible():
    frame = pose_bank("full_body", 832, 1216)
    body = PixelPose(frame).body(0)
    lengths = limb_lengths(frame)
    for a, b in [(2, 3), (3, 4), (8, 9), (9, 10)]:             # left and right limbs match
        mirror = {2: 5, 3: 6, 4: 7, 8: 11, 9: 12, 10: 13}
        assert lengths[(a, b)] == pytest.approx(lengths[(mirror[a], mirror[b])], rel=0.02)
    assert lengths[(8, 9)] > lengths[(2, 3)] > lengths[(3, 4)]  # thigh > upper arm > forearm
    assert body[0, 1] < body[1, 1] < body[8, 1] < body[9, 1] < body[10, 1]
    assert body[5, 0] > body[1, 0] > body[2, 0]               # subject's left on the image's right
    height = body[10, 1] - figure_bounds(frame).crown
    assert 0.2 < (body[5, 0] - body[2, 0]) / height < 0.3     # shoulder width about a quarter of height


def test_arm_up_raises_the_left_arm_only():
    up, down = pose_bank("full_body_arm_up", 832, 1216), pose_bank("full_body", 832, 1216)
    assert arm_angles(up, "left")[0] == pytest.approx(165.0)
    assert arm_angles(up, "right") == pytest.approx(arm_angles(down, "right"))
    body = PixelPose(up).body(0)
    assert body[7, 1] < figure_bounds(up).crown                # the hand is above the head
    ratio = limb_lengths(up)[(5, 6)] / limb_lengths(up)[(2, 3)]
    assert ratio == pytest.approx(1.0, rel=1e-6)               # lengths kept by the edit


def test_user_json_poses_are_listed_and_fitted(tmp_path):
    body = []
    for x, y in [(300, 200), (300, 300), (240, 305), (220, 420), (210, 520), (360, 305), (380, 420),
                 (390, 520), (265, 520), (262, 680), (260, 840), (335, 520), (338, 680), (340, 840),
                 (290, 185), (310, 185), (280, 195), (320, 195)]:
        body += [float(x), float(y), 1.0]
    (tmp_path / "dancer.json").write_text(json.dumps(
        [{"people": [{"pose_keypoints_2d": body}], "canvas_height": 900, "canvas_width": 600}]))
    (tmp_path / "headshot.json").write_text("[]")             # a built-in name: ignored
    names = list_pose_bank([tmp_path, tmp_path / "absent"])
    assert names == list(BUILTIN_POSES) + ["dancer"]
    frame = pose_bank("dancer", 1216, 832, [tmp_path])
    b = figure_bounds(frame)
    assert b.crown == pytest.approx(0.18 * 832) and b.bottom <= 0.96 * 832 + 1e-6
    assert frame["canvas_width"] == 1216
    with pytest.raises(UnknownPoseError, match=r"'dancr'.*dancer"):
        pose_bank("dancr", 512, 512, [tmp_path])
    with pytest.raises(UnknownPoseError, match="headshot"):
        pose_bank("nothing", 512, 512)


@pytest.mark.parametrize("prompt,expected", [
    ("close-up portrait of a woman, soft light", "headshot"),
    ("Extreme closeup of his face", "headshot"),
    ("a headshot for LinkedIn", "headshot"),
    ("portrait of an old sailor", "portrait"),
    ("head and shoulders photo, studio", "portrait"),
    ("medium shot of a chef in a kitchen", "medium"),
    ("waist-up photo, upper body", "medium"),
    ("full body portrait, standing on a beach", "full_body"),
    ("full-length shot of a dancer", "full_body"),
    ("full body, she is waving at the camera", "full_body_arm_up"),
    ("a man with his arm raised in victory", "full_body_arm_up"),
    ("close-up of a woman waving", "headshot"),
    ("a cat on a sofa", "portrait"),
    ("", "portrait"),
])
def test_composition_from_prompt_words(prompt, expected):
    assert choose_composition(prompt) == expected


def test_composition_tag_and_default():
    assert choose_composition("full body", tag="headshot") == "headshot"
    assert choose_composition("close-up", tag="Full body") == "full_body"
    assert choose_composition("anything", tag="medium shot") == "medium"
    assert choose_composition("a dancer", tag="dancer", available=list(BUILTIN_POSES) + ["dancer"]) == "dancer"
    assert choose_composition("a cat on a sofa", default="medium") == "medium"
    with pytest.raises(UnknownPoseError, match="unknown composition tag 'sideways'"):
        choose_composition("x", tag="sideways")
