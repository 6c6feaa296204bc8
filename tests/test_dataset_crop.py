"""Crop geometry, output sizes, face blurring and resizing (synthetic boxes and images, no face engine)."""

import numpy as np
import pytest

from pulid_flux.dataset import PrepareOptions, blur_faces, output_size, plan_crop, render_crop, shot_type
from pulid_flux.dataset.quality import face_sharpness

OPTS = PrepareOptions()


def inside(inner, outer):
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def test_shot_types_follow_the_face_to_image_ratio():
    ratios = OPTS.shot_ratios
    assert [shot_type(r, ratios) for r in (0.6, 0.45, 0.44, 0.28, 0.2, 0.16, 0.15, 0.05)] == [
        "close-up", "close-up", "portrait", "portrait", "medium shot", "medium shot", "full body", "full body"]


@pytest.mark.parametrize("size", [(600, 800), (1000, 1000), (3000, 1500), (1500, 3000), (5000, 4000), (1023, 2047),
                                  (4096, 2048), (333, 555)])
def test_output_size_bounds(size):
    w, h = output_size(*size, OPTS)
    assert w % 32 == 0 and h % 32 == 0
    assert min(w, h) >= 1024 and max(w, h) <= 2048
    assert abs(w / h - size[0] / size[1]) <= 32 / 1024 * (size[0] / size[1]) + 1e-9
    # Never upscaled beyond what the short side needs; big crops are only shrunk to max_side.
    if min(size) >= 1024 and max(size) <= 2048:
        assert abs(w - size[0]) <= 16 and abs(h - size[1]) <= 16


def test_random_crops_keep_every_invariant():
    rng = np.random.default_rng(1)
    for _ in range(400):
        width, height = (int(v) for v in rng.integers(300, 5000, size=2))
        side = rng.uniform(0.06, 0.6) * min(width, height)
        x0 = rng.uniform(0, width - side)
        y0 = rng.uniform(0, height - side * 1.2)
        face = (x0, y0, x0 + side, min(y0 + side * 1.2, height))
        plan = plan_crop(width, height, face, [], OPTS)
        box = plan.box
        assert 0 <= box[0] < box[2] <= width and 0 <= box[1] < box[3] <= height
        aspect = plan.width / plan.height
        assert OPTS.min_aspect - 2 / plan.height <= aspect <= OPTS.max_aspect + 2 / plan.height, (width, height, face)
        out_w, out_h = plan.output_size
        assert abs(aspect - out_w / out_h) <= 1.5 / min(plan.width, plan.height) * max(aspect, 1) + 1e-6
        assert inside([round(v) for v in face], [box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1]), (width, height, face)


def test_extreme_photos_are_trimmed_around_the_face():
    # A panorama: the crop is as high as the photo and twice as wide, centred on the face.
    plan = plan_crop(6000, 1000, (4000, 300, 4200, 540), [], OPTS)
    assert plan.height == 1000 and plan.width == pytest.approx(2000, abs=40)
    assert plan.box[0] < 4000 and plan.box[2] > 4200
    assert abs((plan.box[0] + plan.box[2]) / 2 - 4100) < 40
    # A very tall photo: the feet go first, the head stays.
    plan = plan_crop(800, 4000, (300, 200, 500, 440), [], OPTS)
    assert plan.width == 800 and plan.height == pytest.approx(1600, abs=40) and plan.box[1] == 0
    # Lots of sky above a small face: at most 1.5 face heights of headroom, 12 face heights in all.
    plan = plan_crop(3000, 6000, (1400, 3000, 1600, 3200), [], OPTS)
    assert plan.box[1] == pytest.approx(3000 - 300, abs=2) and plan.height <= 12 * 200 + 1


def test_a_face_beside_the_subject_is_cropped_away():
    subject, other = (700, 300, 900, 540), (1400, 350, 1560, 540)
    plan = plan_crop(2200, 1400, subject, [other], OPTS)
    assert plan.avoided == 1 and plan.blurred == []
    margin = 0.25 * 160
    assert plan.box[2] <= other[0] - margin + 1
    assert inside(subject, plan.box)


def test_a_face_inside_the_head_and_shoulders_is_blurred():
    subject, other = (900, 300, 1100, 540), (1150, 560, 1230, 640)     # on the subject's shoulder
    plan = plan_crop(2000, 1600, subject, [other], OPTS)
    assert plan.avoided == 0
    assert plan.blurred == [list(map(float, other))]
    assert plan_crop(2000, 1600, subject, [other], PrepareOptions(blur_other_faces=False)).blurred == []


def test_blur_faces_destroys_detail_only_there():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    original = image.copy()
    box = (150, 150, 230, 250)
    out = blur_faces(image, [box])
    assert np.array_equal(image, original)
    assert face_sharpness(out, box) < 0.05 * face_sharpness(image, box)
    # Far from the (grown) region nothing changes.
    assert np.array_equal(out[:60], image[:60]) and np.array_equal(out[:, 320:], image[:, 320:])


def test_render_crop_uses_the_upscaler_only_to_enlarge():
    image = np.random.default_rng(2).integers(0, 256, (900, 700, 3), dtype=np.uint8)
    plan = plan_crop(700, 900, (250, 150, 450, 390), [], OPTS)
    calls = []

    def double(rgb):
        calls.append(rgb.shape)
        return np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)

    out = render_crop(image, plan, double)
    assert calls == [(plan.height, plan.width, 3)]
    assert out.shape == (plan.output_size[1], plan.output_size[0], 3) and out.dtype == np.uint8
    big = np.random.default_rng(3).integers(0, 256, (2400, 1800, 3), dtype=np.uint8)
    plan = plan_crop(1800, 2400, (700, 500, 1000, 860), [], OPTS)
    calls.clear()
    out = render_crop(big, plan, double)
    assert calls == [] and out.shape == (plan.output_size[1], plan.output_size[0], 3)
