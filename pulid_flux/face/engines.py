"""``load_engine(name, **options)``: one entry point for every face engine."""

from __future__ import annotations

from .faces import FaceEngine

#: engine name -> one-line description (for node tooltips and docs)
ENGINES = {
    "insightface": "insightface model pack (antelopev2 for PuLID): SCRFD detection + 512-d ArcFace; "
                   "onnxruntime, CUDA when available. Its pretrained models are for non-commercial research only.",
    "dlib": "dlib HOG/CNN detection + 128-d descriptor, CPU. Its models are not restricted to "
            "non-commercial use (the optional 68-point landmark model is).",
}


def load_engine(name: str, **options) -> FaceEngine:
    """Build a face engine.

    * ``insightface``: ``pack_dir=`` (the folder with the .onnx files), or ``root=`` (ComfyUI's
      ``models/insightface``) with ``pack=`` (default ``antelopev2``); ``det_size`` (640),
      ``det_thresh`` (0.5), ``nms_thresh`` (0.4), ``device`` ('auto' | 'cuda' | 'cpu') or ``providers``.
    * ``dlib``: ``detector`` ('hog' | 'cnn'), ``landmarks`` (5 | 68), ``upsample`` (1),
      ``detect_max_side`` (1024), ``num_jitters`` (1), ``models_dir``.
    """
    if name == "insightface":
        from .insightface_engine import InsightFaceEngine

        if "pack_dir" in options:
            if "root" in options or "pack" in options:
                raise ValueError("give either pack_dir or root/pack to the insightface engine, not both")
            return InsightFaceEngine(options.pop("pack_dir"), **options)
        if "root" not in options:
            raise ValueError("the insightface engine needs root= (the models/insightface folder) or pack_dir=")
        return InsightFaceEngine.from_root(options.pop("root"), options.pop("pack", "antelopev2"), **options)
    if name == "dlib":
        from .dlib_engine import DlibEngine

        return DlibEngine(**options)
    raise ValueError(f"unknown face engine {name!r}; available: {', '.join(ENGINES)}")
