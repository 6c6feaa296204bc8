"""5-point alignment onto the FFHQ-512 (facexlib) and ArcFace-112 (insightface) templates."""

import warnings

import cv2
import numpy as np
import pytest

from pulid_flux.face import (
    ARCFACE_TEMPLATE_112,
    FFHQ_BORDER_RGB,
    FFHQ_TEMPLATE_512,
    align_ffhq,
    ffhq_transform,
    norm_crop,
    similarity_lstsq,
    transform_points,
)

DOT_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


def similarity(angle_deg, scale, tx, ty):
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def face_in_photo(template, matrix, shape=(900, 1200)):
    """Keypoints = template placed in a photo by ``matrix``; one coloured dot drawn at each."""
    kps = transform_points(template, matrix)
    image = np.full(shape + (3,), 60, np.uint8)
    for (x, y), colour in zip(kps, DOT_COLOURS):
        cv2.circle(image, (round(float(x)), round(float(y))), 6, colour, -1, lineType=cv2.LINE_8)
    return image, kps


def dot_centres(crop):
    centres = []
    for colour in DOT_COLOURS:
        ys, xs = np.nonzero(np.all(np.abs(crop.astype(int) - colour) < 40, axis=-1))
        assert len(xs), f"dot {colour} missing from the aligned crop"
        centres.append((xs.mean(), ys.mean()))
    return np.array(centres)


@pytest.mark.parametrize("angle,scale,tx,ty", [(0, 1.0, 0, 0), (17, 0.6, 400, 150), (-35, 1.4, 200, 300)])
def test_ffhq_alignment_puts_keypoints_on_the_template(angle, scale, tx, ty):
    image, kps = face_in_photo(FFHQ_TEMPLATE_512, similarity(angle, scale, tx, ty))
    crop, matrix = align_ffhq(image, kps)
    assert crop.shape == (512, 512, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(transform_points(kps, matrix), FFHQ_TEMPLATE_512, atol=0.05)
    # In pixels: the dots drawn at the keypoints land on the template within a pixel or two.
    assert np.abs(dot_centres(crop) - FFHQ_TEMPLATE_512).max() < 2.0


def test_ffhq_alignment_matches_facexlib_conventions():
    rng = np.random.default_rng(0)
    kps = FFHQ_TEMPLATE_512 * 0.2 + 30 + rng.normal(0, 1, (5, 2))
    image = rng.integers(0, 256, (110, 110, 3), dtype=np.uint8)
    crop, _ = align_ffhq(image, kps)
    # facexlib: estimateAffinePartial2D(LMEDS) on BGR, gray border (135, 133, 132) in BGR.
    ref_matrix = cv2.estimateAffinePartial2D(kps.astype(np.float32), FFHQ_TEMPLATE_512, method=cv2.LMEDS)[0]
    ref = cv2.warpAffine(image[..., ::-1].copy(), ref_matrix, (512, 512), borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(135, 133, 132))
    np.testing.assert_array_equal(crop, ref[..., ::-1])
    assert tuple(crop[-1, -1]) == FFHQ_BORDER_RGB == (132, 133, 135)    # the small photo leaves a border


def test_ffhq_fit_ignores_one_outlier_like_facexlib():
    kps = transform_points(FFHQ_TEMPLATE_512, similarity(10, 0.8, 50, 30))
    kps[4] += (25, -10)                          # a badly placed mouth corner
    np.testing.assert_allclose(transform_points(kps[:4], ffhq_transform(kps)), FFHQ_TEMPLATE_512[:4], atol=0.5)


@pytest.mark.parametrize("size", [112, 224, 128])
def test_arcface_norm_crop(size):
    image, kps = face_in_photo(ARCFACE_TEMPLATE_112 * 3, similarity(-20, 1.1, 300, 200))
    crop, matrix = norm_crop(image, kps, size)
    assert crop.shape == (size, size, 3)
    target = ARCFACE_TEMPLATE_112 * (size / 112) if size % 112 == 0 else \
        ARCFACE_TEMPLATE_112 * (size / 128) + [8 * size / 128, 0]
    np.testing.assert_allclose(transform_points(kps, matrix), target, atol=0.01)


def test_norm_crop_matches_insightface():
    face_align = pytest.importorskip("insightface.utils.face_align")
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    kps = (ARCFACE_TEMPLATE_112 * 1.7 + 40 + rng.normal(0, 3, (5, 2))).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # scikit-image's deprecated estimate(), inside insightface
        reference = face_align.norm_crop(image, kps, 112)
    ours, _ = norm_crop(image, kps, 112)
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1


def test_least_squares_similarity_is_exact_and_never_mirrors():
    src = np.random.default_rng(2).normal(0, 30, (5, 2))
    m = similarity(33, 1.7, 12, -5)
    np.testing.assert_allclose(similarity_lstsq(src, transform_points(src, m)), m, atol=1e-9)
    mirrored = src * [-1, 1]
    fit = similarity_lstsq(src, mirrored)
    assert np.linalg.det(fit[:, :2]) > 0


def test_degenerate_keypoints_are_refused():
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        align_ffhq(np.zeros((64, 64, 3), np.uint8), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        norm_crop(np.zeros((64, 64, 3), np.uint8), np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="coincide"):
        norm_crop(np.zeros((64, 64, 3), np.uint8), np.ones((5, 2)))
