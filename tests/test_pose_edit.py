"""Pose edits keep proportions: arm angles, mirroring, fitting, head-room, uniform transforms."""

import copy
import math

import numpy as np
import pytest

from pulid_flux.pose import (
    arm_angles,
    figure_bounds,
    fit_to_canvas,
    limb_lengths,
    mirror_pose,
    pad_head_margin,
    pose_arm,
    transform_pose,
)
from pulid_flux.pose.keypoints import BODY, HAND_LEFT, HAND_RIGHT, PixelPose, PoseFormatError, head_top

W, H = 832, 1216
# A standing figure in pixels of an 832 x 1216 canvas (the subject's left on the image's right).
BODY_PX = np.array([
    [416, 260], [416, 350], [330, 356], [300, 520], [285, 660], [502, 356], [532, 520], [547, 660],
    [366, 640], [360, 850], [356, 1050], [466, 640], [472, 850], [476, 1050], [400, 240], [432, 240],
    [380, 250], [452, 250],
], dtype=np.float64)
LEFT_HAND_PX = np.array([[547, 660]] + [[530 + 8 * f, 675 + 12 * j] for f in range(5) for j in range(4)],
                        dtype=np.float64)


def flat(points, norm=True):
    scale = np.array([W, H]) if norm else np.ones(2)
    return [float(v) for x, y in points / scale for v in (x, y, 1.0)]


@pytest.fixture
def frame():
    """Normalised coordinates on a non-square canvas, with a left hand and an unknown key."""
    body = flat(BODY_PX)
    body[3 * 16: 3 * 16 + 3] = [0.0, 0.0, 0.0]  # right ear missing
    return {"people": [{BODY: body, "face_keypoints_2d": None, HAND_LEFT: flat(LEFT_HAND_PX),
                        HAND_RIGHT: None, "person_id": 7}],
            "canvas_height": H, "canvas_width": W, "source": "test"}


def pixel_body(frame, person=0):
    return PixelPose(frame).body(person)


def test_pose_arm_sets_angles_and_keeps_limb_lengths(frame):
    before = limb_lengths(frame)
    raised = pose_arm(frame, "left", 150.0, 20.0)
    after = limb_lengths(raised)
    assert after.keys() == before.keys()
    for limb, length in before.items():
        assert after[limb] == pytest.approx(length, abs=1e-6), limb
    assert arm_angles(raised, "left") == pytest.approx((150.0, 20.0))
    b0, b1 = pixel_body(frame), pixel_body(raised)
    assert b1[7, 1] < b1[5, 1] < b0[7, 1]                  # the wrist is now above the shoulder
    unchanged = [i for i in range(18) if i not in (6, 7)]
    assert np.allclose(b0[unchanged], b1[unchanged])
    src, out = frame["people"][0][BODY], raised["people"][0][BODY]
    assert [out[3 * i: 3 * i + 3] == src[3 * i: 3 * i + 3] for i in range(18)] == [i not in (6, 7) for i in range(18)]
    assert raised["people"][0]["person_id"] == 7 and raised["source"] == "test"
    assert raised["people"][0][BODY][3 * 16: 3 * 16 + 3] == [0.0, 0.0, 0.0]
    assert all(abs(v) <= 1.0 for v in raised["people"][0][BODY])   # still normalised


def test_lowering_and_the_right_arm(frame):
    low = pose_arm(frame, "right", 0.0)
    body = pixel_body(low)
    assert body[3, 0] == pytest.approx(body[2, 0]) and body[4, 0] == pytest.approx(body[2, 0])
    assert body[4, 1] > body[3, 1] > body[2, 1]             # hanging straight down
    out = pose_arm(frame, "right", 90.0)
    body = pixel_body(out)
    assert body[4, 0] < body[3, 0] < body[2, 0]             # out to the image's left
    assert body[4, 1] == pytest.approx(body[2, 1])


def test_the_hand_follows_the_wrist_rigidly(frame):
    raised = pose_arm(frame, "left", 170.0, -10.0)
    hand0 = PixelPose(frame).parts[(0, HAND_LEFT)][:, :2]
    hand1 = PixelPose(raised).parts[(0, HAND_LEFT)][:, :2]
    d0 = np.linalg.norm(hand0[:, None] - hand0[None], axis=-1)
    d1 = np.linalg.norm(hand1[:, None] - hand1[None], axis=-1)
    assert np.allclose(d0, d1, atol=1e-6)
    assert np.allclose(hand1[0], pixel_body(raised)[7, :2])  # hand point 0 stays on the wrist
    assert PixelPose(raised).parts[(0, HAND_LEFT)][:, 1].mean() < pixel_body(raised)[7, 1]  # fingers up


def test_pose_arm_needs_the_elbow(frame):
    frame["people"][0][BODY][3 * 6 + 2] = 0.0
    with pytest.raises(PoseFormatError, match="left elbow"):
        pose_arm(frame, "left", 90.0)
    with pytest.raises(ValueError, match="'left' or 'right'"):
        pose_arm(frame, "middle", 90.0)


def test_mirror_swaps_sides_and_is_an_involution(frame):
    mirrored = mirror_pose(frame)
    b0, b1 = pixel_body(frame), pixel_body(mirrored)
    assert b1[5, 0] == pytest.approx(W - b0[2, 0]) and b1[5, 1] == pytest.approx(b0[2, 1])
    assert b1[7, 0] == pytest.approx(W - b0[4, 0])
    person = mirrored["people"][0]
    assert person.get(HAND_LEFT) is None and person[HAND_RIGHT] is not None
    assert person[BODY][3 * 17: 3 * 17 + 3] == [0.0, 0.0, 0.0]    # the missing right ear is now the left
    assert {k: pytest.approx(v) for k, v in limb_lengths(frame).items()} == {
        (a, b): limb_lengths(mirrored)[(swap(a), swap(b))] for a, b in limb_lengths(frame)}
    assert_frames_close(mirror_pose(mirrored), frame)
    lifted = pose_arm(frame, "left", 160.0)
    assert arm_angles(mirror_pose(lifted), "right")[0] == pytest.approx(160.0)


def swap(i):
    pairs = {2: 5, 3: 6, 4: 7, 8: 11, 9: 12, 10: 13, 14: 15, 16: 17}
    pairs.update({v: k for k, v in pairs.items()})
    return pairs.get(i, i)


def assert_frames_close(a, b):
    assert a.keys() == b.keys() and a["canvas_width"] == b["canvas_width"]
    for pa, pb in zip(a["people"], b["people"]):
        assert pa.keys() == pb.keys()
        for key in pa:
            if isinstance(pa[key], list) and pa[key] and isinstance(pa[key][0], float):
                assert np.allclose(pa[key], pb[key], atol=1e-9), key
            else:
                assert pa[key] == pb[key], key


@pytest.mark.parametrize("size", [(1024, 1024), (1344, 768), (768, 1344)])
def test_fit_to_canvas_keeps_proportions_and_places_the_head(frame, size):
    fitted = fit_to_canvas(frame, *size)
    assert (fitted["canvas_width"], fitted["canvas_height"]) == size
    before, after = limb_lengths(frame), limb_lengths(fitted)
    ratios = np.array([after[k] / before[k] for k in before])
    assert np.allclose(ratios, ratios[0], rtol=1e-9)
    b = figure_bounds(fitted)
    assert b.crown == pytest.approx(0.18 * size[1])
    assert b.left >= 0.05 * size[0] - 1e-6 and b.right <= 0.95 * size[0] + 1e-6
    assert b.bottom <= 0.96 * size[1] + 1e-6
    assert (b.left + b.right) / 2 == pytest.approx(size[0] / 2)


def test_fit_keeps_a_cut_figure_on_the_bottom_edge():
    # A head-and-shoulders crop whose shoulders touch the bottom of its canvas.
    pts = np.array(BODY_PX) - [0, 100]
    pts = pts[:6].tolist() + [[0, 0]] * 8 + pts[14:].tolist()
    conf = [1] * 6 + [0] * 8 + [1] * 4
    body = [float(v) for (x, y), c in zip(pts, conf) for v in (x, y, c)]
    crop = {"people": [{BODY: body}], "canvas_width": 400, "canvas_height": 256}
    fitted = fit_to_canvas(crop, 1024, 1024)
    b = figure_bounds(fitted)
    assert b.crown == pytest.approx(0.18 * 1024)
    assert b.bottom > 0.99 * 1024                         # still cut by the bottom edge
    floating = fit_to_canvas(crop, 1024, 1024, cut_bottom=False)
    assert figure_bounds(floating).bottom == pytest.approx(0.96 * 1024)


def test_pad_head_margin_shrinks_about_the_feet_only_when_needed(frame):
    tight = transform_pose(frame, dy=-200.0)              # the head nearly touches the top
    assert head_top(pixel_body(tight)) < 0.18 * H
    padded = pad_head_margin(tight, 0.18)
    b0, b1 = figure_bounds(tight), figure_bounds(padded)
    assert b1.crown == pytest.approx(0.18 * H)
    assert b1.bottom == pytest.approx(b0.bottom)
    ratios = [limb_lengths(padded)[k] / v for k, v in limb_lengths(tight).items()]
    assert np.allclose(ratios, ratios[0])
    assert pad_head_margin(frame, 0.05) == frame          # already enough room: unchanged


def test_transform_scales_lengths_uniformly_and_keeps_units(frame):
    bigger = transform_pose(frame, scale=1.1, dx=10, dy=-20)
    assert limb_lengths(bigger).keys() == limb_lengths(frame).keys()
    for k, v in limb_lengths(frame).items():
        assert limb_lengths(bigger)[k] == pytest.approx(1.1 * v)
    moved = transform_pose(frame, dx=8, dy=4)
    assert np.allclose(pixel_body(moved)[0, :2], BODY_PX[0] + [8, 4])
    pixel_frame = {"people": [{BODY: flat(BODY_PX, norm=False)}], "canvas_width": W, "canvas_height": H}
    out = transform_pose(pixel_frame, dx=1)
    assert out["people"][0][BODY][0] == pytest.approx(BODY_PX[0, 0] + 1)


def test_edits_accept_lists_and_keep_the_source_untouched(frame):
    original = copy.deepcopy(frame)
    out = pose_arm([frame, frame], "left", 120.0)
    assert isinstance(out, list) and len(out) == 2
    assert frame == original
    assert math.isclose(arm_angles(out[1], "left")[0], 120.0)


def test_points_pushed_off_a_normalised_canvas_become_missing(frame):
    huge = transform_pose(frame, scale=1.5)               # the ankles leave the canvas
    body = np.array(huge["people"][0][BODY]).reshape(18, 3)
    assert body[10].tolist() == [0.0, 0.0, 0.0] and body[13].tolist() == [0.0, 0.0, 0.0]
    assert np.all(np.abs(body[:, :2]) <= 1.0)             # so the frame still reads as normalised
    assert limb_lengths(huge)[(1, 2)] == pytest.approx(1.5 * limb_lengths(frame)[(1, 2)])
    pixel_frame = {"people": [{BODY: flat(BODY_PX, norm=False)}], "canvas_width": W, "canvas_height": H}
    kept = transform_pose(pixel_frame, scale=1.5)        # pixel frames keep off-canvas points
    assert kept["people"][0][BODY][3 * 10 + 2] == 1.0
