"""The ``dlib`` engine: dlib's HOG (or CNN) detector, landmarks and 128-d face descriptor, on the CPU.

Model files come from the ``face-recognition-models`` package (or any folder holding the same
files). Its ``__init__`` imports ``pkg_resources``, so the folder is located without importing it.

The 5 keypoints match SCRFD's (image-left eye, image-right eye, nose tip, image-left mouth corner,
image-right mouth corner):

* ``landmarks=5`` (default): dlib's 5-point model gives the four eye corners and the base of the
  nose. Eye centres are the mean of their corners; nose tip and mouth corners, which the model
  lacks, are placed by a least-squares similarity fit of a mean face (measured in the FFHQ-512 frame
  on real photos with the 68-point model) to the three measured points. Mouth corners are then off by
  about 0.12 of the eye distance on average (up to ~0.35 on a broad smile or a turned head).
* ``landmarks=68``: exact eye centres (mean of the 6 eye-contour points), nose tip (30) and outer
  mouth corners (48, 54).

LICENSE: dlib (Boost licence), its face detectors, the 5-point landmark model and the face
recognition model are public domain / Creative-Commons-trained and NOT restricted to non-commercial
use, unlike insightface's models. Exception: ``shape_predictor_68_face_landmarks.dat`` was trained
on iBUG 300-W, whose licence excludes commercial use; that is why the 5-point model is the default.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import cv2
import numpy as np

from ..errors import PulidWeightsError
from .align import similarity_lstsq, transform_points
from .choice import sort_faces
from .faces import Face, FaceEngine, as_rgb_uint8

log = logging.getLogger(__name__)

LICENSE_NOTE = ("dlib and its face models are not restricted to non-commercial use (except the optional "
                "68-point landmark model, trained on iBUG 300-W: non-commercial)")

FILES = {
    "hog": None,  # built into dlib
    "cnn": "mmod_human_face_detector.dat",
    5: "shape_predictor_5_face_landmarks.dat",
    68: "shape_predictor_68_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}

# Mean face in the FFHQ-512 frame, measured on 25 real faces (the shared test photos) with the 68-point
# model: where dlib's 5-point eye centres and nose base fall, and where the SCRFD-style keypoints are.
_MEAN_DLIB5 = np.array([[197.43, 244.40], [315.45, 243.67], [257.41, 333.45]])
_MEAN_KPS = np.array([[197.22, 242.47], [315.19, 242.43], [259.22, 307.39], [197.59, 370.53], [316.30, 368.83]])
# Where dlib's HOG box falls in a 112x112 ArcFace-aligned crop (same measurement), for ``embed_aligned``.
_HOG_BOX_IN_ARCFACE_112 = (10.4, 27.8, 99.8, 112.7)


def default_models_dir() -> Path:
    """``face_recognition_models/models`` of the installed package (found without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise PulidWeightsError("face_recognition_models", "the face-recognition-models package is not installed "
                                                           "(pip install face-recognition-models)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def kps_from_dlib5(points: np.ndarray) -> np.ndarray:
    """SCRFD-order keypoints from dlib's 5 points (0-1: image-right eye corners, 2-3: image-left, 4: nose base)."""
    points = np.asarray(points, dtype=np.float64)
    measured = np.array([points[2:4].mean(axis=0), points[0:2].mean(axis=0), points[4]])
    matrix = similarity_lstsq(_MEAN_DLIB5, measured)
    kps = transform_points(_MEAN_KPS, matrix)
    # The eyes were measured: keep them, corrected only by the mean offset between corner-mean and centre.
    kps[:2] = measured[:2] + (transform_points(_MEAN_KPS[:2], matrix) - transform_points(_MEAN_DLIB5[:2], matrix))
    return kps


def kps_from_dlib68(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    return np.array([points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[30], points[48], points[54]])


class DlibEngine(FaceEngine):
    """dlib face detection, 5 keypoints and the 128-d ``dlib_face_recognition_resnet_model_v1`` descriptor.

    ``upsample``: how many times the detector doubles the image (HOG finds faces of about
    80/2**upsample pixels and up). ``detect_max_side``: larger images are shrunk for detection only
    (speed); landmarks and descriptors use the full image. ``num_jitters``: descriptor averaging
    over jittered crops (slower, slightly more stable).
    """

    family = "dlib"
    license_note = LICENSE_NOTE

    def __init__(self, *, detector: str = "hog", landmarks: int = 5, upsample: int = 1,
                 detect_max_side: int | None = 1024, num_jitters: int = 1, models_dir=None):
        import dlib

        if detector not in ("hog", "cnn"):
            raise ValueError(f"dlib detector must be 'hog' or 'cnn', got {detector!r}")
        landmarks = int(landmarks)
        if landmarks not in (5, 68):
            raise ValueError(f"dlib landmarks must be 5 or 68, got {landmarks!r}")
        if int(upsample) < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        self.models_dir = Path(models_dir) if models_dir else default_models_dir()
        self.detector_kind = detector
        self.landmarks = landmarks
        self.upsample = int(upsample)
        self.detect_max_side = int(detect_max_side) if detect_max_side else None
        self.num_jitters = int(num_jitters)
        if detector == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(str(self._file("cnn")))
        else:
            self._hog = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self._file(landmarks)))
        self._recognizer = dlib.face_recognition_model_v1(str(self._file("recognition")))
        self._rectangle = dlib.rectangle
        log.info("dlib engine: %s detector (upsample %d), %d-point landmarks, 128-d descriptor, CPU",
                 detector.upper(), self.upsample, landmarks)

    def _file(self, key) -> Path:
        path = self.models_dir / FILES[key]
        if not path.is_file():
            raise PulidWeightsError(path, "dlib model file missing; install face-recognition-models "
                                          "(pip install face-recognition-models) or pass models_dir")
        return path

    @property
    def name(self) -> str:
        return f"dlib:{self.detector_kind}"

    @property
    def fingerprint(self) -> str:
        return (f"{self.name}|{self.models_dir.resolve()}|{self.landmarks} points|upsample {self.upsample}|"
                f"max side {self.detect_max_side}|jitters {self.num_jitters}")

    @property
    def embedding_size(self) -> int:
        return 128

    # -- detection ----------------------------------------------------------------------------
    def _detect_rects(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """[(bbox x0,y0,x1,y1 in ``image`` pixels, score)], in the detector's order."""
        h, w = image.shape[:2]
        scale = 1.0
        work = image
        if self.detect_max_side and max(h, w) > self.detect_max_side:
            scale = self.detect_max_side / max(h, w)
            work = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                              interpolation=cv2.INTER_AREA)
        if self.detector_kind == "cnn":
            found = [(d.rect, float(d.confidence)) for d in self._cnn(work, self.upsample)]
        else:
            rects, scores, _ = self._hog.run(work, self.upsample, 0.0)
            found = list(zip(rects, (float(s) for s in scores)))
        # dlib rectangles are inclusive; boxes here are [x0, x1) like SCRFD's.
        return [(np.array([r.left(), r.top(), r.right() + 1, r.bottom() + 1], dtype=np.float64) / scale, s)
                for r, s in found]

    def _shape(self, image: np.ndarray, box):
        """(dlib full_object_detection, (N, 2) landmark array) inside ``box``."""
        x0, y0, x1, y1 = np.rint(box).astype(int).tolist()
        shape = self._predictor(image, self._rectangle(x0, y0, x1 - 1, y1 - 1))
        return shape, np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def _kps(self, points: np.ndarray) -> np.ndarray:
        return kps_from_dlib68(points) if self.landmarks == 68 else kps_from_dlib5(points)

    def detect(self, image: np.ndarray, *, order: str = "largest", embed: bool = True) -> list[Face]:
        image = as_rgb_uint8(image)
        faces = []
        for box, score in self._detect_rects(image):
            shape, points = self._shape(image, box)
            embedding = None
            if embed:
                embedding = np.array(self._recognizer.compute_face_descriptor(image, shape, self.num_jitters))
            # The raw landmarks stay with the face: head pose needs the measured points, not the
            # keypoints placed from a mean face (see pulid_flux.face.headpose).
            faces.append(Face(bbox=box, kps=self._kps(points), score=score, embedding=embedding,
                              engine=self.name, extra={"landmarks": points.astype(np.float32),
                                                       "landmark_scheme": f"dlib{self.landmarks}"}))
        return sort_faces(faces, order)

    def embed_aligned(self, crop: np.ndarray) -> np.ndarray:
        """Descriptor of an ArcFace-aligned crop: landmarks are found inside the box where dlib's
        detector would put an aligned face, then dlib makes its own chip from them."""
        crop = as_rgb_uint8(crop, "aligned face crop")
        size = crop.shape[0]
        box = np.array(_HOG_BOX_IN_ARCFACE_112) * (size / 112.0)
        shape, _ = self._shape(crop, box)
        return np.array(self._recognizer.compute_face_descriptor(crop, shape, self.num_jitters), dtype=np.float32)
