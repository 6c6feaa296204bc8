"""Head pose from landmarks (pulid_flux.face.headpose): the generic 3-D face rotated and projected,
then real photos with dlib (its raw 5-point landmarks, as the dataset tools use them)."""

import numpy as np
import pytest

from pulid_flux.face.headpose import (LANDMARK_SCHEMES, HeadPose, angles_from_matrix, estimate_head_pose,
                                      face_head_pose, face_landmarks, head_angle_name, project_generic_face,
                                      rotation_matrix)

# Photos of shared/faces whose subject looks into the camera (checked by eye); obama_02/_04 and
# liuyifei_01 are turned by 15-30 degrees and serve the mirror test instead.
FRONTAL = ["obama_01.jpg", "obama_05_1080p.jpg", "obama_06_240p.jpg", "obama_07_small.jpg", "biden_02.jpg",
           "alex_lacamoire_02.jpg", "alex_lacamoire_03.jpg", "lin_manuel_miranda_01.png", "lecun_01.jpg",
           "lifeifei_01.jpg", "hinton_01.jpg"]
TURNED = {"obama_02.jpg": -1, "obama_04.jpg": +1, "liuyifei_01.png": +1}   # sign of the yaw, read by eye


@pytest.mark.parametrize("scheme", sorted(LANDMARK_SCHEMES))
def test_generic_face_rotated_and_projected_is_recovered_within_5_degrees(scheme):
    worst = 0.0
    for yaw in range(-60, 61, 10):
        for pitch in (-20, 0, 15):
            for roll in (-10, 0, 12):
                points = project_generic_face(yaw, pitch, roll, scheme=scheme, width=1200, height=900,
                                              center=(500, 380))
                pose = estimate_head_pose(points, scheme, (1200, 900))
                worst = max(worst, abs(pose.yaw - yaw), abs(pose.pitch - pitch), abs(pose.roll - roll))
    assert worst < 5.0, f"{scheme}: worst error {worst:.2f} deg"


def test_noisy_landmarks_stay_within_5_degrees_of_yaw():
    rng = np.random.default_rng(0)
    for yaw in (-60, -30, 0, 30, 60):
        points = project_generic_face(yaw, 0, 0, scheme="kps5", width=1024, height=1024)
        eyes = np.linalg.norm(points[1] - points[0])
        noisy = points + rng.normal(scale=0.01 * eyes, size=points.shape)     # 1 % of the eye distance
        assert abs(estimate_head_pose(noisy, "kps5", (1024, 1024)).yaw - yaw) < 5.0


def test_angle_conventions():
    # Positive yaw moves the nose toward the image's right of the eyes' midpoint, positive pitch
    # lifts it toward the eyes, positive roll moves the eyes (the top of the head) toward the image's
    # right of the nose.
    def nose_from_eyes(yaw, pitch, roll):
        p = project_generic_face(yaw, pitch, roll, scheme="kps5")
        return p[2] - (p[0] + p[1]) / 2

    front = nose_from_eyes(0, 0, 0)
    assert abs(front[0]) < 1e-6
    assert nose_from_eyes(30, 0, 0)[0] > 0 and nose_from_eyes(-30, 0, 0)[0] < 0
    assert nose_from_eyes(0, 20, 0)[1] < front[1]
    assert nose_from_eyes(0, 0, 15)[0] < 0
    for angles in [(35.0, -12.0, 7.0), (-80.0, 25.0, -30.0)]:
        assert np.allclose(angles_from_matrix(rotation_matrix(*angles)), angles)
    assert [head_angle_name(y) for y in (0, -24, 30, -59, 61, 90)] == [
        "frontal", "frontal", "three-quarter", "three-quarter", "profile", "profile"]


def test_bad_landmarks_are_clear_errors():
    with pytest.raises(ValueError, match="needs a \\(5, 2\\) landmark array"):
        estimate_head_pose(np.zeros((4, 2)), "kps5")
    with pytest.raises(ValueError, match="unknown landmark scheme 'kps7'"):
        estimate_head_pose(np.zeros((5, 2)), "kps7")
    with pytest.raises(ValueError, match="NaN"):
        estimate_head_pose(np.full((5, 2), np.nan), "kps5")


def _yaw(engine, image) -> HeadPose:
    faces = engine.detect(image)
    assert faces, "no face found"
    points, scheme = face_landmarks(faces[0])
    assert scheme == "dlib5" and points.shape == (5, 2)     # the measured points, not the placed keypoints
    return face_head_pose(faces[0], (image.shape[1], image.shape[0]))


def test_real_frontal_photos_have_small_yaw(dlib_engine, faces_dir):
    from pulid_flux.images import load_rgb

    yaws = {name: _yaw(dlib_engine, load_rgb(faces_dir / "photos" / name)).yaw for name in FRONTAL}
    assert all(abs(y) < 20.0 for y in yaws.values()), yaws


def test_mirrored_photo_flips_the_sign_of_yaw(dlib_engine, faces_dir):
    from pulid_flux.images import load_rgb

    for name, sign in TURNED.items():
        image = load_rgb(faces_dir / "photos" / name)
        yaw = _yaw(dlib_engine, image).yaw
        mirrored = _yaw(dlib_engine, np.ascontiguousarray(image[:, ::-1])).yaw
        assert np.sign(yaw) == sign and np.sign(mirrored) == -sign, (name, yaw, mirrored)
        assert abs(yaw + mirrored) < 6.0, (name, yaw, mirrored)
