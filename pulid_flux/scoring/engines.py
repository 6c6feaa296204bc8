"""Scoring engines: which face engine makes a similarity column, under which key and default threshold.

Engine specs (the CLI's ``--engine`` values and the library's ``engines=`` entries):

* ``dlib``: dlib HOG detection + 128-d descriptor (CPU, no model download beyond the pip package).
* ``insightface``: an insightface pack (``EngineOptions.pack``, default antelopev2: SCRFD +
  glintr100; buffalo_l: SCRFD + w600k_r50) found under the insightface root.
  ``insightface:<pack>`` names the pack in the spec itself (key ``insightface_<pack>``).
* ``arcface:<file.onnx>`` (or just a path ending in ``.onnx``): any ArcFace-style recognizer with a
  112x112 (or 112/128-multiple) input, run on the aligned crops of faces found by
  ``EngineOptions.recognizer_detector`` (key ``arcface_<file stem>``).

Default thresholds (cosine similarity of normalised embeddings, face vs. reference centroid):

* ArcFace-style recognizers (insightface packs, ``arcface:``): **0.30**, the usual decision boundary
  for ArcFace R50/R100 (DeepFace's ArcFace cutoff is 0.32; insightface's GUI uses 0.40). It could
  not be calibrated here: no real ArcFace weights are available offline. Calibrate yours with
  :func:`pulid_flux.scoring.calibrate.calibrate_photos` (CLI: ``--calibrate DIR``).
* dlib: **0.918**, calibrated on the real photos of ``shared/faces`` with
  :func:`pulid_flux.scoring.calibrate.calibrate_photos` (20 single-identity photos of 9 people; 40
  same-person and 150 different-person pairs; largest face per photo; cosine similarity of
  normalised dlib descriptors; engine defaults: HOG, upsample 1, detection at <= 1024 px):

  ====================  =====  =====  =====  ==========================================
  pairs                 min    mean   max    extreme pair
  ====================  =====  =====  =====  ==========================================
  same person (40)      0.934  0.971  0.998  alex_lacamoire_01 / _02 (lowest)
  different (150)       0.706  0.810  0.902  lin_manuel_miranda_01 / obama_09 (highest)
  ====================  =====  =====  =====  ==========================================

  Every threshold in (0.902, 0.934) separates them; 0.918 is the middle of that gap. With
  upsample 0 the gap is (0.902, 0.935). Against the centroid of obama_01 + obama_02 the other
  Obama photos (and the Obama face in both group photos) score 0.967-0.992, the other people
  0.764-0.893. For comparison, dlib's own rule (Euclidean distance 0.6 between raw descriptors,
  whose norm is about 1.4 here) corresponds to a cosine of about 0.91. The gap is narrow (0.03):
  treat dlib pass rates as coarse. dlib similarities are much higher than ArcFace ones for everyone:
  never compare scores across engines.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..face import load_engine
from ..face.faces import FaceEngine

log = logging.getLogger(__name__)

ARCFACE_THRESHOLD = 0.30
DLIB_THRESHOLD = 0.918
#: engine family -> (default threshold, where it comes from)
DEFAULT_THRESHOLDS = {
    "dlib": (DLIB_THRESHOLD, "calibrated on shared/faces: same person >= 0.934, different people <= 0.902 (gap midpoint)"),
    "insightface": (ARCFACE_THRESHOLD, "ArcFace rule of thumb (DeepFace 0.32, insightface GUI 0.40); not calibrated here"),
    "arcface": (ARCFACE_THRESHOLD, "ArcFace rule of thumb (DeepFace 0.32, insightface GUI 0.40); not calibrated here"),
}
DEFAULT_PACK = "antelopev2"


@dataclass
class EngineOptions:
    """Options shared by every engine of a run (the CLI's engine flags)."""

    insightface_root: str | os.PathLike | None = None   # holds models/<pack>/*.onnx (ComfyUI: models/insightface)
    models_dir: str | os.PathLike | None = None         # a ComfyUI models folder; root = <models_dir>/insightface
    pack: str = DEFAULT_PACK
    device: str = "auto"
    det_size: int = 640
    recognizer_detector: str = "auto"                   # detector for arcface:<file>: auto | dlib | insightface
    dlib: dict = field(default_factory=dict)            # DlibEngine options (upsample, detector, ...)

    def resolved_insightface_root(self) -> Path:
        """--insightface-root, else <models-dir>/insightface, else $COMFYUI_PATH/models/insightface, else ~/.insightface."""
        if self.insightface_root:
            return Path(self.insightface_root)
        if self.models_dir:
            return Path(self.models_dir) / "insightface"
        if os.environ.get("COMFYUI_PATH"):
            return Path(os.environ["COMFYUI_PATH"]) / "models" / "insightface"
        return Path.home() / ".insightface"

    def has_insightface_root(self) -> bool:
        return bool(self.insightface_root or self.models_dir)


@dataclass
class ScoringEngine:
    """A face engine plus the column key and default threshold it scores under."""

    key: str                   # CSV column suffix and summary key: similarity_<key>
    engine: FaceEngine
    family: str                # dlib | insightface | arcface
    spec: str = ""

    @property
    def default_threshold(self) -> float:
        return DEFAULT_THRESHOLDS[self.family][0]

    @property
    def threshold_source(self) -> str:
        return DEFAULT_THRESHOLDS[self.family][1]

    @property
    def model(self) -> str:
        return self.engine.name


def column_key(text: str) -> str:
    key = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    if not key:
        raise ValueError(f"cannot make a column name from engine spec {text!r}")
    return key


def parse_spec(spec: str) -> tuple[str, str | None]:
    """(family, argument) of an engine spec; ValueError naming the accepted forms otherwise."""
    spec = str(spec).strip()
    if spec == "dlib":
        return "dlib", None
    if spec == "insightface":
        return "insightface", None
    if spec.startswith("insightface:") and spec.split(":", 1)[1]:
        return "insightface", spec.split(":", 1)[1]
    if spec.startswith("arcface:") and spec.split(":", 1)[1]:
        return "arcface", spec.split(":", 1)[1]
    if spec.lower().endswith(".onnx"):
        return "arcface", spec
    raise ValueError(f"unknown scoring engine {spec!r}; use dlib, insightface, insightface:<pack> or "
                     "arcface:<recognizer.onnx>")


def spec_key(spec: str) -> str:
    family, arg = parse_spec(spec)
    if family == "arcface":
        return column_key(f"arcface_{Path(arg).stem}")
    return column_key(family if arg is None else f"{family}_{arg}")


def _insightface(options: EngineOptions, pack: str | None) -> FaceEngine:
    return load_engine("insightface", root=options.resolved_insightface_root(), pack=pack or options.pack,
                       device=options.device, det_size=options.det_size)


def _recognizer_detector(options: EngineOptions) -> FaceEngine:
    choice = options.recognizer_detector
    if choice not in ("auto", "dlib", "insightface"):
        raise ValueError(f"recognizer detector must be auto, dlib or insightface, got {choice!r}")
    if choice == "auto":
        # Without a configured insightface folder, dlib is the detector that needs no download.
        choice = "insightface" if options.has_insightface_root() else "dlib"
    log.info("ONNX recognizer faces come from the %s detector", choice)
    return _insightface(options, None) if choice == "insightface" else load_engine("dlib", **options.dlib)


def load_scoring_engine(spec: str, options: EngineOptions | None = None) -> ScoringEngine:
    """Build the engine named by ``spec`` (see the module docstring)."""
    from .onnx_recognizer import OnnxRecognizerEngine

    options = options or EngineOptions()
    family, arg = parse_spec(spec)
    if family == "dlib":
        engine = load_engine("dlib", **options.dlib)
    elif family == "insightface":
        engine = _insightface(options, arg)
    else:
        engine = OnnxRecognizerEngine(arg, _recognizer_detector(options), device=options.device)
    return ScoringEngine(key=spec_key(spec), engine=engine, family=family, spec=str(spec))


def wrap_engine(engine: FaceEngine, key: str | None = None) -> ScoringEngine:
    """A ScoringEngine for an already-loaded face engine (e.g. one that came in on a node wire)."""
    family = getattr(engine, "family", "") or "insightface"
    if family not in DEFAULT_THRESHOLDS:
        family = "arcface"  # an unknown recognizer family: treat it as ArcFace-like
    return ScoringEngine(key=column_key(key or family), engine=engine, family=family, spec=engine.name)


def load_scoring_engines(specs, options: EngineOptions | None = None) -> list[ScoringEngine]:
    """Engines for ``specs`` (strings or ready ScoringEngines), with distinct keys, in the given order."""
    engines = [s if isinstance(s, ScoringEngine) else load_scoring_engine(s, options) for s in specs]
    if not engines:
        raise ValueError("no scoring engine given")
    keys = [e.key for e in engines]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"two engines would write the same column similarity_{duplicates[0]}; give each engine once")
    return engines


def resolve_thresholds(engines, thresholds=None) -> dict[str, float]:
    """{key: threshold}: ``thresholds`` may be None (defaults), one number for every engine, or a
    {key: number} dict overriding some engines."""
    result = {e.key: e.default_threshold for e in engines}
    if thresholds is None:
        return result
    if isinstance(thresholds, (int, float)):
        return {k: float(thresholds) for k in result}
    unknown = sorted(set(thresholds) - set(result))
    if unknown:
        raise ValueError(f"threshold given for unknown engine(s) {', '.join(unknown)}; engines in this run: "
                         f"{', '.join(result)}")
    result.update({k: float(v) for k, v in thresholds.items()})
    return result
