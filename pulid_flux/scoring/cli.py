"""``pulid-studio score``: identity scores of a folder (or gallery) against reference photos.

    pulid-studio score --reference ref1.jpg ref2.jpg --images DIR --engine dlib [--engine insightface]
                       --out OUTDIR [--threshold T | --threshold ENGINE=T ...]

Writes ``OUTDIR/scores.csv`` (file, face_found, n_faces, similarity_<engine>..., face_px),
``OUTDIR/summary.json`` ({engine: {count, mean, median, std, min, max, no_face_rate, pass_rate,
threshold}}) and ``OUTDIR/run_info.json``. ``--gallery DIR`` scores ``DIR/<config>/*.png`` instead
and also writes per-config CSVs, grids and a plot. ``--calibrate DIR`` measures same/different-person
similarities on labelled photos and suggests a threshold. A photo (reference or scored) with a
``<photo stem>.face.json`` sidecar beside it is judged by the face in that region only.

Run through ``pulid-studio score`` (api_client.cli), which reports errors and exit codes the same
way for every command; the library does not know the client, so it has no entry point of its own.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .engines import ARCFACE_THRESHOLD, DLIB_THRESHOLD

log = logging.getLogger(__name__)

HELP = "score how well generated faces match reference photos (ArcFace / dlib similarity)"


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--reference", nargs="+", metavar="IMG",
                        help="reference photo(s) of the person; the largest face of each is used, or the face "
                             "boxed by its <photo stem>.face.json sidecar (docs/face_region.md)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", metavar="DIR", help="folder of images to score (not recursive)")
    source.add_argument("--gallery", metavar="DIR",
                        help="gallery folder laid out as DIR/<config>/<NN>_<tag>[_<params>].png")
    source.add_argument("--calibrate", metavar="DIR",
                        help="labelled real photos (labels.json or <identity>_<NN> names): measure "
                             "same/different-person similarity and suggest a threshold")
    parser.add_argument("--engine", action="append", metavar="ENGINE",
                        help="dlib, insightface, insightface:<pack> or arcface:<recognizer.onnx>; repeat for one "
                             "similarity column per engine (default: dlib)")
    parser.add_argument("--out", required=True, metavar="OUTDIR", help="output folder (created)")
    parser.add_argument("--threshold", action="append", metavar="T|ENGINE=T",
                        help=f"pass threshold for every engine, or ENGINE=T for one (defaults: dlib {DLIB_THRESHOLD:g}, "
                             f"ArcFace-style {ARCFACE_THRESHOLD:g})")
    group = parser.add_argument_group("insightface / ONNX options")
    group.add_argument("--insightface-root", metavar="DIR",
                       help="folder holding models/<pack>/*.onnx (ComfyUI: models/insightface)")
    group.add_argument("--models-dir", metavar="DIR",
                       help="a ComfyUI models folder; the packs are looked up in DIR/insightface/models/<pack>")
    group.add_argument("--pack", default="antelopev2", help="insightface model pack (default antelopev2; or buffalo_l)")
    group.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    group.add_argument("--det-size", type=int, default=640, help="SCRFD detection size (default 640)")
    group.add_argument("--recognizer-detector", choices=("auto", "dlib", "insightface"), default="auto",
                       help="face detector for arcface:<file> engines (auto: insightface when an insightface "
                            "folder is given, else dlib)")
    group = parser.add_argument_group("dlib options")
    group.add_argument("--dlib-upsample", type=int, default=1,
                       help="times the HOG detector doubles the image (1 finds faces from ~40 px; 0 is faster)")
    group.add_argument("--dlib-detector", choices=("hog", "cnn"), default="hog")
    parser.add_argument("--manifest", metavar="FILE", help="gallery manifest (.json/.csv) with file, prompt, seed")
    return parser


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``score`` sub-command to an argparse ``subparsers`` object."""
    parser = subparsers.add_parser("score", help=HELP, description=HELP)
    configure_parser(parser)
    parser.set_defaults(func=run)
    return parser


def _threshold_key(name: str) -> str:
    """The engine key a ``--threshold NAME=T`` refers to: NAME may be an --engine spec or a column key."""
    from .engines import column_key, spec_key

    try:
        return spec_key(name)
    except ValueError:
        return column_key(name)


def parse_thresholds(values):
    """None, one float for all engines, or {engine key: float}."""
    if not values:
        return None
    single, per_engine = None, {}
    for value in values:
        name, sep, number = value.rpartition("=")
        try:
            threshold = float(number)
        except ValueError:
            raise ValueError(f"--threshold {value!r}: expected a number or ENGINE=number") from None
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"--threshold {value!r}: a cosine similarity threshold lies in [-1, 1]")
        if sep:
            per_engine[_threshold_key(name)] = threshold
        elif single is not None:
            raise ValueError("--threshold without an engine name was given twice")
        else:
            single = threshold
    if single is not None and per_engine:
        raise ValueError("give either one --threshold for every engine or ENGINE=T values, not both")
    return single if single is not None else per_engine


def engine_options(args):
    from .engines import EngineOptions

    return EngineOptions(insightface_root=args.insightface_root, models_dir=args.models_dir, pack=args.pack,
                         device=args.device, det_size=args.det_size, recognizer_detector=args.recognizer_detector,
                         dlib={"upsample": args.dlib_upsample, "detector": args.dlib_detector})


def _calibrate(args, options) -> None:
    from pathlib import Path

    from .calibrate import calibrate_photos
    from .engines import load_scoring_engines
    from .report import write_json

    results = {}
    for engine in load_scoring_engines(args.engine or ["dlib"], options):
        calibration = calibrate_photos(engine.engine, args.calibrate)
        results[engine.key] = calibration.describe()
        d = results[engine.key]
        sys.stdout.write(f"{engine.key} ({engine.model}): same person min {d['same_person']['min']:.4f} "
                         f"mean {d['same_person']['mean']:.4f}; different people max "
                         f"{d['different_people']['max']:.4f} mean {d['different_people']['mean']:.4f}; "
                         f"suggested threshold {calibration.threshold:.4f}"
                         f"{'' if calibration.separable else ' (groups overlap)'}\n")
    path = write_json(Path(args.out) / "calibration.json", results)
    sys.stdout.write(f"written {path}\n")


def run(args) -> int:
    """Run the command for parsed ``args``; returns the exit status. Errors (a missing file, an
    unknown engine, no face in a reference) are raised for ``pulid-studio`` to report."""
    options = engine_options(args)
    if args.calibrate:
        _calibrate(args, options)
        return 0
    if not args.reference:
        raise ValueError("--reference IMG [IMG ...] is required to score images")
    thresholds = parse_thresholds(args.threshold)
    engines = args.engine or ["dlib"]
    from .report import format_table
    if args.gallery:
        from .gallery import score_gallery
        result = score_gallery(args.gallery, args.reference, args.out, engines=engines, options=options,
                               thresholds=thresholds, manifest=args.manifest)
        sys.stdout.write(format_table(result.summaries) + "\n")
    else:
        from .folder import score_folder
        result = score_folder(args.images, args.reference, args.out, engines=engines, options=options,
                              thresholds=thresholds)
        sys.stdout.write(format_table({"images": result.summary}) + "\n")
    sys.stdout.write(f"results written to {args.out}\n")
    return 0
