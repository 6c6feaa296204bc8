"""Node: score how closely a batch of generated faces matches reference photos."""

import logging

import numpy as np
import torch
from comfy_api.v0_0_2 import io, ui

from ..pulid_flux.face import load_engine
from ..pulid_flux.images import to_uint8
from ..pulid_flux.scoring import ScoringRun, score_batch, wrap_engine
from ..pulid_flux.scoring.engines import ARCFACE_THRESHOLD, DLIB_THRESHOLD
from . import paths
from .compat import advanced
from .types import FaceEngineType, category, display_name, node_id

log = logging.getLogger(__name__)

ENGINES = ("dlib", "insightface")


def _frames(batch, what: str) -> list[np.ndarray]:
    if batch is None or batch.ndim != 4 or batch.shape[-1] < 3 or batch.shape[0] == 0:
        shape = None if batch is None else tuple(batch.shape)
        raise ValueError(f"{what}: expected an IMAGE batch (B, H, W, 3), got {shape}")
    return [to_uint8(frame[..., :3]) for frame in batch]


class ScoreIdentity(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("ScoreIdentity"),
            display_name=display_name("Score identity"),
            category=category("Scoring"),
            description="Cosine similarity of each image's best-matching face to the reference photos' identity "
                        "(the centroid of their largest faces), the number of faces and the face size, plus a "
                        "summary (mean, median, population std, no-face rate, pass rate at the threshold over all "
                        "images). Scores from different engines are not comparable.",
            inputs=[
                io.Image.Input("images", tooltip="The generated images to score (a batch)."),
                io.Image.Input("reference_images",
                               tooltip="One or more photos of the person; the largest face of each is used. A "
                                       "reference without a face is an error."),
                io.Combo.Input("engine", options=list(ENGINES), default="dlib",
                               tooltip="dlib: CPU, 128-d, no download, commercial use allowed. insightface: "
                                       "ArcFace (antelopev2 = glintr100, buffalo_l = w600k_r50), non-commercial "
                                       "models. Ignored when face_engine is connected."),
                io.Combo.Input("insightface_pack", options=paths.insightface_packs(), **advanced(io.Combo.Input),
                               tooltip="Model pack in models/insightface/models (for the insightface engine)."),
                io.Float.Input("threshold", default=-1.0, min=-1.0, max=1.0, step=0.005,
                               tooltip=f"Pass threshold on the cosine similarity; -1 = the engine's default "
                                       f"(dlib {DLIB_THRESHOLD}, calibrated on real photos; ArcFace "
                                       f"{ARCFACE_THRESHOLD})."),
                io.Int.Input("columns", default=0, min=0, max=64, **advanced(io.Int.Input),
                             tooltip="Tiles per row in the preview grid (0 = about square)."),
                FaceEngineType.Input("face_engine", optional=True,
                                     tooltip="An already loaded face engine; overrides 'engine'."),
            ],
            outputs=[io.String.Output(display_name="scores", tooltip="Per-image scores and the summary, as text."),
                     io.Image.Output(display_name="grid",
                                     tooltip="Every image with its score: green = pass, red = fail, orange = "
                                             "no face.")],
        )

    @classmethod
    def execute(cls, images, reference_images, engine="dlib", insightface_pack="antelopev2", threshold=-1.0,
                columns=0, face_engine=None) -> io.NodeOutput:
        frames = _frames(images, "images")
        references = _frames(reference_images, "reference_images")
        if face_engine is not None:
            scoring_engine = wrap_engine(face_engine)
        elif engine == "insightface":
            pack_dir = paths.insightface_pack_dir(insightface_pack)
            scoring_engine = wrap_engine(load_engine("insightface", pack_dir=pack_dir), "insightface")
        elif engine == "dlib":
            scoring_engine = wrap_engine(load_engine("dlib"), "dlib")
        else:
            raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        run = ScoringRun.create([(f"reference image {i}", r) for i, r in enumerate(references)], [scoring_engine],
                                thresholds=None if threshold < 0 else float(threshold))
        result = score_batch(frames, run, columns=columns or None)
        grid = torch.from_numpy(np.asarray(result.grid, dtype=np.float32) / 255.0)[None]
        return io.NodeOutput(result.text, grid, ui=ui.PreviewText(result.text))


NODE_LIST = [ScoreIdentity]
