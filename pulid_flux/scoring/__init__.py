"""Identity scoring: how closely generated faces match reference photos.

A reference is the centroid of the reference photos' largest-face embeddings (normalised, averaged,
re-normalised). Each scored image contributes its best-matching face (cosine similarity), its face
count and the face size (sqrt of the bbox area, px). Sets are summarised by count, mean, median,
population std, min, max over images with a face, the no-face rate, and the pass rate at a threshold
over ALL images (no face = fail). Engines: ``dlib``, ``insightface[:pack]``, ``arcface:<file.onnx>``;
their default thresholds are documented (and dlib's calibration measured) in :mod:`.engines`.

Entry points: :func:`score_folder` (CLI ``pulid-studio score --images``), :func:`score_gallery`
(``gallery/<config>/<NN>_<tag>[_<params>].png`` -> CSVs, summaries, grids, plot), :func:`score_batch`
(the ComfyUI node), :func:`calibrate_photos`.
"""

from .batch import BatchResult, score_batch
from .calibrate import Calibration, calibrate, calibrate_photos, suggest_threshold
from .engines import (
                      ARCFACE_THRESHOLD,
                      DEFAULT_THRESHOLDS,
                      DLIB_THRESHOLD,
                      EngineOptions,
                      ScoringEngine,
                      load_scoring_engine,
                      load_scoring_engines,
                      resolve_thresholds,
                      wrap_engine,
)
from .folder import FolderResult, score_folder
from .gallery import GalleryResult, discover_gallery, score_gallery
from .grid import GridLayout, Tile, render_grid
from .naming import ImageMeta, parse_gallery_name, read_manifest
from .reference import Reference, build_reference, centroid
from .run import ScoringRun
from .score import EngineScore, ScoredImage, score_faces, score_image
from .stats import SUMMARY_KEYS, summarize

__all__ = [
                      "ARCFACE_THRESHOLD",
                      "DEFAULT_THRESHOLDS",
                      "DLIB_THRESHOLD",
                      "SUMMARY_KEYS",
                      "BatchResult",
                      "Calibration",
                      "EngineOptions",
                      "EngineScore",
                      "FolderResult",
                      "GalleryResult",
                      "GridLayout",
                      "ImageMeta",
                      "Reference",
                      "ScoredImage",
                      "ScoringEngine",
                      "ScoringRun",
                      "Tile",
                      "build_reference",
                      "calibrate",
                      "calibrate_photos",
                      "centroid",
                      "discover_gallery",
                      "load_scoring_engine",
                      "load_scoring_engines",
                      "parse_gallery_name",
                      "read_manifest",
                      "render_grid",
                      "resolve_thresholds",
                      "score_batch",
                      "score_faces",
                      "score_folder",
                      "score_gallery",
                      "score_image",
                      "suggest_threshold",
                      "summarize",
                      "wrap_engine",
]
