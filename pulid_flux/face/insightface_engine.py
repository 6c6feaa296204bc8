"""The ``insightface`` engine: an insightface model pack (antelopev2, buffalo_l) run by onnxruntime.

Only the pack's detector (SCRFD with keypoints) and recognizer (ArcFace) are loaded; the landmark
and gender/age models are recognised from their ONNX signatures and left on disk. The ``insightface``
Python package itself is not needed (its 0.7.3 and 2.x releases differ in detection defaults; this
follows the single-size 640 detection of the official PuLID code).

LICENSE: insightface's pretrained models (antelopev2, buffalo_l, ...) are released for
non-commercial research purposes only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import PulidWeightsError
from .align import norm_crop
from .arcface import ArcFaceRecognizer
from .choice import sort_faces
from .faces import Face, FaceEngine, as_rgb_uint8
from .onnx_signature import OnnxSignature, read_signature
from .scrfd import ScrfdDetector

log = logging.getLogger(__name__)

LICENSE_NOTE = ("insightface's pretrained models (antelopev2, buffalo_l) are for non-commercial research "
                "purposes only")
DEFAULT_PACK = "antelopev2"


def classify_model(sig: OnnxSignature) -> str | None:
    """insightface ``model_zoo`` routing by signature: the task a model file performs, or None."""
    shape = sig.inputs[0].shape
    side = shape[2] if len(shape) == 4 and isinstance(shape[2], int) and shape[2] == shape[3] else None
    if len(sig.outputs) >= 5:
        return "detection"
    if side == 192:
        return "landmark"
    if side == 96:
        return "genderage"
    if len(sig.inputs) == 2 and side == 128:
        return "inswapper"
    if side is not None and side >= 112 and side % 16 == 0 and len(sig.outputs) == 1:
        return "recognition"
    return None


def find_pack_dir(root, pack: str = DEFAULT_PACK) -> Path:
    """The folder holding ``pack``'s ONNX files under an insightface root.

    ``root`` is ComfyUI's ``models/insightface`` (files in ``models/<pack>``), or any folder holding
    ``<pack>``, or the pack folder itself (then named ``<pack>``). The antelopev2 zip unpacks to ``antelopev2/antelopev2/``;
    that nested folder is accepted too.
    """
    root = Path(root)
    tried = []
    bases = [root / "models" / pack, root / pack] + ([root] if root.name == pack else [])
    for base in bases:
        for candidate in (base, base / pack):
            tried.append(candidate)
            if candidate.is_dir() and any(candidate.glob("*.onnx")):
                return candidate
    raise PulidWeightsError(
        root / "models" / pack,
        f"no insightface model pack {pack!r} found (looked for *.onnx in: {', '.join(str(t) for t in tried)}). "
        f"Download {pack} and unzip it to {root / 'models' / pack}")


def route_pack(pack_dir) -> tuple[dict[str, Path], dict[Path, str | None]]:
    """({task: file} for detection/recognition, {file: task} for every ONNX file seen).

    Files are visited in name order and the first model of each task wins, as in insightface.
    """
    pack_dir = Path(pack_dir)
    chosen: dict[str, Path] = {}
    seen: dict[Path, str | None] = {}
    signatures: dict[Path, OnnxSignature] = {}
    for path in sorted(pack_dir.glob("*.onnx")):
        sig = read_signature(path)
        task = classify_model(sig)
        seen[path] = task
        signatures[path] = sig
        if task in ("detection", "recognition") and task not in chosen:
            chosen[task] = path
    missing = [t for t in ("detection", "recognition") if t not in chosen]
    if missing:
        found = ", ".join(f"{p.name}={t or 'unrecognised'}" for p, t in seen.items()) or "no .onnx files"
        raise PulidWeightsError(pack_dir, f"the model pack has no {' and no '.join(missing)} model "
                                          f"(found: {found}); is the download complete?")
    return chosen, seen


def select_providers(device: str = "auto") -> list[str]:
    """onnxruntime providers: CUDA first when available (and not refused), always CPU last."""
    import onnxruntime

    if device not in ("auto", "cuda", "cpu"):
        raise ValueError(f"device must be 'auto', 'cuda' or 'cpu', got {device!r}")
    available = onnxruntime.get_available_providers()
    if device != "cpu" and "CUDAExecutionProvider" in available:
        log.info("insightface models run on CUDA (onnxruntime CUDAExecutionProvider)")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cpu":
        log.info("insightface models run on CPU (device='cpu')")
    else:
        log.log(logging.WARNING if device == "cuda" else logging.INFO,
                "insightface models run on CPU: this onnxruntime has no CUDAExecutionProvider "
                "(available: %s); install onnxruntime-gpu for GPU inference", ", ".join(available))
    return ["CPUExecutionProvider"]


def _session(path: Path, providers: list[str]):
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise PulidWeightsError(path, f"onnxruntime could not load it ({exc.__class__.__name__}: {exc})") from exc


class InsightFaceEngine(FaceEngine):
    """SCRFD detection + ArcFace recognition from one insightface model pack.

    Note: insightface's pretrained models are licensed for non-commercial research only.
    """

    family = "insightface"
    license_note = LICENSE_NOTE

    def __init__(self, pack_dir, *, det_size=640, det_thresh: float = 0.5, nms_thresh: float = 0.4,
                 device: str = "auto", providers: list[str] | None = None):
        self.pack_dir = Path(pack_dir)
        self.files, self.seen = route_pack(self.pack_dir)
        self.providers = list(providers) if providers else select_providers(device)
        det_path, rec_path = self.files["detection"], self.files["recognition"]
        self.detector = ScrfdDetector(_session(det_path, self.providers), det_path, det_size=det_size,
                                      det_thresh=det_thresh, nms_thresh=nms_thresh)
        rec_sig = read_signature(rec_path)
        self.recognizer = ArcFaceRecognizer(_session(rec_path, self.providers), rec_path,
                                            [name for name, _ in rec_sig.first_nodes])
        skipped = [p.name for p, t in self.seen.items() if p not in self.files.values()]
        log.info("insightface pack %s: detector %s (%dx%d), recognizer %s (%d-d)%s", self.pack_dir.name,
                 det_path.name, *self.detector.input_size, rec_path.name, self.recognizer.embedding_size,
                 f"; not loaded: {', '.join(skipped)}" if skipped else "")

    @classmethod
    def from_root(cls, root, pack: str = DEFAULT_PACK, **options) -> InsightFaceEngine:
        return cls(find_pack_dir(root, pack), **options)

    @property
    def name(self) -> str:
        return f"insightface:{self.pack_dir.name}"

    @property
    def fingerprint(self) -> str:
        d = self.detector
        return (f"{self.name}|{self.pack_dir.resolve()}|det {d.input_size} thr {d.det_thresh} nms {d.nms_thresh}|"
                f"{self.files['detection'].name}+{self.files['recognition'].name}")

    @property
    def embedding_size(self) -> int:
        return self.recognizer.embedding_size

    def detect(self, image: np.ndarray, *, order: str = "largest", embed: bool = True) -> list[Face]:
        image = as_rgb_uint8(image)
        boxes, scores, kpss = self.detector.detect(image)
        embeddings = [None] * len(scores)
        if embed and len(scores):
            size = self.recognizer.input_size
            crops = [norm_crop(image, kps, size)[0] for kps in kpss]
            embeddings = list(self.recognizer.embed(crops))
        faces = [Face(bbox=b, kps=k, score=s, embedding=e, engine=self.name)
                 for b, k, s, e in zip(boxes, kpss, scores, embeddings)]
        return sort_faces(faces, order)

    def embed_aligned(self, crop: np.ndarray) -> np.ndarray:
        return self.recognizer.embed([as_rgb_uint8(crop, "aligned face crop")])[0]


__all__ = [
    "LICENSE_NOTE",
    "InsightFaceEngine",
    "classify_model",
    "find_pack_dir",
    "route_pack",
    "select_providers",
]
