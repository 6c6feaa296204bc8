"""OpenPose rendering: controlnet_aux's colours, geometry, units, missing points, hands, face, scaling."""

import numpy as np
import pytest

from pulid_flux.pose import render_pose, render_poses
from pulid_flux.pose.keypoints import BODY, FACE, HAND_LEFT, HAND_RIGHT, PoseFormatError

# The reference tables (OpenPose COCO-18 as drawn by controlnet_aux), written out independently of
# the code under test: joint colours, and (joint, joint, limb colour = joint colour * 0.6).
JOINT_RGB = [
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
]
LIMB_RGB = [
    (1, 2, (153, 0, 0)), (1, 5, (153, 51, 0)), (2, 3, (153, 102, 0)), (3, 4, (153, 153, 0)),
    (5, 6, (102, 153, 0)), (6, 7, (51, 153, 0)), (1, 8, (0, 153, 0)), (8, 9, (0, 153, 51)),
    (9, 10, (0, 153, 102)), (1, 11, (0, 153, 153)), (11, 12, (0, 102, 153)), (12, 13, (0, 51, 153)),
    (1, 0, (0, 0, 153)), (0, 14, (51, 0, 153)), (14, 16, (102, 0, 153)), (0, 15, (153, 0, 153)),
    (15, 17, (153, 0, 102)),
]

# A spread-out figure on a 1024 x 1024 canvas (pixels): every limb is long enough that its midpoint
# is far from any joint circle and from the other limbs.
W = H = 1024
FIGURE = np.array([
    [512, 200],   # 0 nose
    [512, 380],   # 1 neck
    [352, 392],   # 2 right shoulder
    [240, 560],   # 3 right elbow
    [200, 760],   # 4 right wrist
    [672, 392],   # 5 left shoulder
    [784, 560],   # 6 left elbow
    [824, 760],   # 7 left wrist
    [432, 680],   # 8 right hip
    [408, 840],   # 9 right knee
    [392, 1000],  # 10 right ankle
    [592, 680],   # 11 left hip
    [616, 840],   # 12 left knee
    [632, 1000],  # 13 left ankle
    [440, 120],   # 14 right eye
    [584, 120],   # 15 left eye
    [360, 64],    # 16 right ear
    [664, 64],    # 17 left ear
], dtype=np.float64)


def frame_from(points, width=W, height=H, conf=None, **extra_parts):
    conf = np.ones(len(points)) if conf is None else conf
    flat = [float(v) for (x, y), c in zip(points, conf) for v in (x, y, c)]
    person = {BODY: flat, FACE: None, HAND_LEFT: None, HAND_RIGHT: None}
    person.update(extra_parts)
    return {"people": [person], "canvas_height": height, "canvas_width": width}


@pytest.fixture(scope="module")
def figure_image():
    return render_pose(frame_from(FIGURE))


def test_limb_midpoints_have_the_limb_colour_at_60_percent(figure_image):
    for a, b, rgb in LIMB_RGB:
        mid = (FIGURE[a] + FIGURE[b]) / 2
        assert tuple(figure_image[int(mid[1]), int(mid[0])]) == rgb, f"limb {a}-{b}"


def test_joint_centres_have_the_joint_colour(figure_image):
    for i, rgb in enumerate(JOINT_RGB):
        x, y = FIGURE[i].astype(int)
        assert tuple(figure_image[y, x]) == rgb, f"joint {i}"


def test_geometry_stick_half_width_4_joint_radius_4_black_background(figure_image):
    # The right shin (9 -> 10) is nearly vertical: 4 px either side of its axis is inside the stick.
    mid = ((FIGURE[9] + FIGURE[10]) / 2).astype(int)
    assert tuple(figure_image[mid[1], mid[0] - 3]) == (0, 153, 102)
    assert tuple(figure_image[mid[1], mid[0] - 7]) == (0, 0, 0)
    nose = FIGURE[0].astype(int)
    assert tuple(figure_image[nose[1] - 20, nose[0]]) == (0, 0, 0)  # above the nose: background
    assert tuple(figure_image[nose[1], nose[0] + 3]) == JOINT_RGB[0]
    assert figure_image.dtype == np.uint8 and figure_image.shape == (H, W, 3)
    assert not figure_image[:40, :40].any()


@pytest.mark.parametrize("size", [(None, None), (512, 768), (1216, 832)])
def test_canvas_size_is_the_request(size):
    img = render_pose(frame_from(FIGURE), *size)
    expected = (H, W) if size[0] is None else (size[1], size[0])
    assert img.shape == (*expected, 3)


def test_pixel_and_normalised_inputs_render_identically():
    # 2048 x 1024 canvas: dividing by powers of two is exact, so both inputs name the same points.
    pts = FIGURE * [2.0, 1.0]
    pixel = frame_from(pts, 2048, 1024)
    normalised = frame_from(pts / [2048.0, 1024.0], 2048, 1024)
    a, b = render_pose(pixel), render_pose(normalised)
    assert a.any() and np.array_equal(a, b)
    # ... and keep agreeing when drawn at another size (coordinates map from the canvas).
    assert np.array_equal(render_pose(pixel, 1024, 512), render_pose(normalised, 1024, 512))


def test_a_pose_drawn_at_half_size_puts_joints_at_half_coordinates():
    img = render_pose(frame_from(FIGURE), 512, 512)
    for i in (0, 4, 13):
        x, y = (FIGURE[i] / 2).astype(int)
        assert tuple(img[y, x]) == JOINT_RGB[i]


def test_missing_points_are_skipped_with_their_limbs():
    conf = np.ones(18)
    conf[7] = 0.0                                    # left wrist: confidence 0
    pts = FIGURE.copy()
    pts[10] = (-1, -1)                               # right ankle: -1 marker, confidence 1
    img = render_pose(frame_from(pts, conf=conf))
    for joint, (a, b) in ((7, (6, 7)), (10, (9, 10))):
        x, y = FIGURE[joint].astype(int)
        assert not img[y, x].any(), f"joint {joint} drawn"
        mid = ((FIGURE[a] + FIGURE[b]) / 2).astype(int)
        assert not img[mid[1], mid[0]].any(), f"limb {a}-{b} drawn"
    x, y = FIGURE[6].astype(int)
    assert tuple(img[y, x]) == JOINT_RGB[6]          # its neighbour is still drawn


def test_low_confidence_threshold_is_configurable():
    conf = np.ones(18)
    conf[4] = 0.2
    frame = frame_from(FIGURE, conf=conf)
    x, y = FIGURE[4].astype(int)
    assert not render_pose(frame)[y, x].any()
    assert tuple(render_pose(frame, min_confidence=0.1)[y, x]) == JOINT_RGB[4]


def test_hands_and_face_follow_controlnet_aux():
    hand = np.array([[100, 100]] + [[100 + 40 * f, 160 + 60 * j] for f in range(5) for j in range(4)], dtype=np.float64)
    face = np.array([[900, 100 + 12 * i] for i in range(70)], dtype=np.float64)
    flat = lambda p: [float(v) for x, y in p for v in (x, y, 1.0)]
    img = render_pose(frame_from(FIGURE, **{HAND_LEFT: flat(hand), FACE: flat(face)}))
    # Edge 0 (wrist -> thumb base) has hue 0 (red); edge 8 (wrist -> middle base) hue 0.4, which
    # at full saturation is (0, 255, 102).
    for edge, (a, b), rgb in ((0, (0, 1), (255, 0, 0)), (8, (0, 9), (0, 255, 102))):
        mid = ((hand[a] + hand[b]) / 2).astype(int)
        assert tuple(img[mid[1], mid[0]]) == rgb, f"hand edge {edge}"
    x, y = hand[5].astype(int)
    assert tuple(img[y, x]) == (0, 0, 255)           # hand points are blue
    x, y = face[10].astype(int)
    assert tuple(img[y, x]) == (255, 255, 255)       # face points are white, radius 3
    assert tuple(img[y, x + 3]) == (255, 255, 255) and not img[y, x + 5].any()
    plain = render_pose(frame_from(FIGURE, **{HAND_LEFT: flat(hand), FACE: flat(face)}),
                        draw_hands=False, draw_face=False)
    assert np.array_equal(plain, render_pose(frame_from(FIGURE)))


def test_xinsir_stick_scaling_widens_sticks_on_large_canvases():
    frame = frame_from(FIGURE)
    mid = ((FIGURE[9] + FIGURE[10]) / 2).astype(int)
    thin = render_pose(frame, stick_scaling="none")
    wide = render_pose(frame, stick_scaling="xinsir")        # 1024 px -> half-width 4 * 3
    assert not thin[mid[1], mid[0] - 9].any()
    assert tuple(wide[mid[1], mid[0] - 9]) == (0, 153, 102)
    small = render_pose(frame, 400, 400, stick_scaling="xinsir")  # under 500 px: unchanged
    assert np.array_equal(small, render_pose(frame, 400, 400))
    with pytest.raises(ValueError, match="stick_scaling"):
        render_pose(frame, stick_scaling="huge")


def test_every_person_is_drawn_and_a_list_uses_its_first_frame():
    two = frame_from(FIGURE)
    shifted = FIGURE * 0.5
    two["people"].append(frame_from(shifted)["people"][0])
    img = render_pose([two, frame_from(FIGURE * 0.25)])
    for pts in (FIGURE, shifted):
        x, y = pts[0].astype(int)
        assert tuple(img[y, x]) == JOINT_RGB[0]
    x, y = (FIGURE[0] * 0.25).astype(int)
    assert not img[y, x].any()                       # the second frame is not drawn
    assert len(render_poses([two, frame_from(FIGURE)])) == 2


def test_bad_input_is_rejected_with_its_location():
    frame = frame_from(FIGURE)
    frame["people"][0][BODY] = frame["people"][0][BODY][:-3]
    with pytest.raises(PoseFormatError, match=r"person 0.*pose_keypoints_2d.*18.*51"):
        render_pose(frame)
    with pytest.raises(PoseFormatError, match="canvas_width"):
        render_pose({"people": [], "canvas_height": 10})
    with pytest.raises(PoseFormatError, match="empty"):
        render_pose([])
