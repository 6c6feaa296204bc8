"""5-point face alignment: the FFHQ 512 crop PuLID's parser and EVA see, and the ArcFace 112 crop.

Both are similarity transforms (rotation, uniform scale, translation) from the face's five
keypoints onto a template:

* FFHQ 512 (facexlib ``FaceRestoreHelper``, used by PuLID): fitted with
  ``cv2.estimateAffinePartial2D(..., method=cv2.LMEDS)``, border filled with facexlib's gray.
* ArcFace 112 (insightface ``face_align.norm_crop``): least-squares (Umeyama) fit, black border.
  Computed here rather than through scikit-image, whose ``SimilarityTransform.estimate`` insightface
  calls and which is deprecated.

Images are RGB here (facexlib works on BGR), so facexlib's border (135, 133, 132) in BGR is
(132, 133, 135) in RGB: the same pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

#: facexlib's standard 5 landmarks of an FFHQ face at 512x512 (crop_ratio (1, 1))
FFHQ_TEMPLATE_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                              [201.26117, 371.41043], [313.08905, 371.15118]], dtype=np.float32)
#: insightface ``arcface_dst``: where the recognizers expect the 5 points in a 112x112 crop
ARCFACE_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                 [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)
#: facexlib's gray border (135, 133, 132) given in BGR, written here in RGB
FFHQ_BORDER_RGB = (132, 133, 135)


def _check_kps(kps) -> np.ndarray:
    kps = np.asarray(kps, dtype=np.float32)
    if kps.shape != (5, 2):
        raise ValueError(f"alignment needs 5 keypoints as a (5, 2) array, got shape {kps.shape}")
    if not np.isfinite(kps).all():
        raise ValueError("face keypoints contain NaN or infinite values")
    return kps


def ffhq_template(size: int = 512) -> np.ndarray:
    return FFHQ_TEMPLATE_512 * (size / 512.0)


def ffhq_transform(kps, size: int = 512) -> np.ndarray:
    """2x3 matrix mapping image pixels onto the FFHQ template of a ``size`` square (facexlib's fit)."""
    kps = _check_kps(kps)
    matrix, _ = cv2.estimateAffinePartial2D(kps, ffhq_template(size), method=cv2.LMEDS)
    if matrix is None:
        raise ValueError(f"cannot fit a similarity transform to the keypoints {kps.tolist()} (degenerate face)")
    return matrix


def align_ffhq(image: np.ndarray, kps, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The face as PuLID's parser/EVA sees it: a ``size`` square RGB crop, and the 2x3 matrix used."""
    matrix = ffhq_transform(kps, size)
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=FFHQ_BORDER_RGB)
    return crop, matrix


def similarity_lstsq(src, dst) -> np.ndarray:
    """Least-squares similarity transform src -> dst (Umeyama 1991), as a 2x3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    # A reflection would mirror the face; force a proper rotation.
    d = np.array([1.0, 1.0 if np.linalg.det(cov) >= 0 else -1.0])
    rotation = u @ np.diag(d) @ vt
    var = (src_c ** 2).sum(axis=1).mean()
    if var <= 0:
        raise ValueError("cannot fit a similarity transform: all keypoints coincide")
    scale = float(s @ d) / var
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def arcface_template(size: int = 112) -> np.ndarray:
    """insightface's rule: multiples of 112 scale the template; other sizes use the 128 variant."""
    if size % 112 == 0:
        return ARCFACE_TEMPLATE_112 * (size / 112.0)
    if size % 128 == 0:
        ratio = size / 128.0
        template = ARCFACE_TEMPLATE_112 * ratio
        template[:, 0] += 8.0 * ratio
        return template
    raise ValueError(f"ArcFace crops are 112 or 128 multiples, not {size}")


def arcface_transform(kps, size: int = 112) -> np.ndarray:
    return similarity_lstsq(_check_kps(kps), arcface_template(size))


def norm_crop(image: np.ndarray, kps, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """The recognizer's input: the face warped onto the ArcFace template, black border."""
    matrix = arcface_transform(kps, size)
    crop = cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)
    return crop, matrix


def transform_points(points, matrix) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]
