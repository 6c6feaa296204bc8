"""Command line: ``dataset prepare INPUT_DIR OUTPUT_DIR --trigger "ohwx man" [--engine dlib|insightface]
[--reference IMG ...]``.

``add_parser(subparsers)`` adds the ``dataset`` command (with its ``prepare`` sub-command) to a
larger CLI (``pulid-studio``, api_client.cli, which reports the errors ``run`` raises); ``run(args)``
executes parsed arguments and returns the exit status.

Exit status (the ``pulid-studio`` convention): 0 when at least one photo was accepted, 1 when none
was (the report says why for each), 2 for bad arguments or input (the message names the file and
what to change).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger("pulid_flux.dataset")

ENGINE_CHOICES = ("dlib", "insightface")
OTHERS_CHOICES = ("crop", "keep", "reject")      # = options.OTHERS_CHOICES (not imported: argparse stays light)
EXIT_NOTHING_ACCEPTED = 1  # "ran, but not all of the work succeeded" in the pulid-studio convention
DLIB_DETECT_SIDE = 768


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_prepare_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("input_dir", metavar="INPUT_DIR", help="folder of photos (jpg, png, webp)")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR",
                        help="where dataset/, ai-toolkit.yaml, report.json and report.html are written")
    parser.add_argument("--trigger", required=True, help='trigger word(s) every caption starts with, e.g. "ohwx man"')
    parser.add_argument("--engine", choices=ENGINE_CHOICES, default="dlib",
                        help="face engine (default dlib: CPU, no licence restriction; insightface needs a model "
                             "pack, non-commercial weights)")
    parser.add_argument("--reference", nargs="+", action="extend", default=[], metavar="IMG",
                        help="photo(s) of the subject; without them the identity seen in the most photos is used. "
                             "A <photo stem>.face.json sidecar beside any photo boxes its subject's face "
                             "(docs/face_region.md)")
    parser.add_argument("--caption", default="", metavar="TEXT", help="text appended to every caption")
    parser.add_argument("--others", choices=OTHERS_CHOICES, default=None,
                        help="photos with other people: crop (default: frame the subject, blur faces left in the "
                             "crop, reject photos where another face is as prominent), keep (the whole photo; the "
                             "caption says where the subject is and who else is there), reject (any other face)")
    add_vlm_arguments(parser)

    engine = parser.add_argument_group("face engine")
    engine.add_argument("--insightface-root", default=os.environ.get("PULID_INSIGHTFACE_ROOT"),
                        help="ComfyUI's models/insightface folder (or $PULID_INSIGHTFACE_ROOT)")
    engine.add_argument("--insightface-pack", default="antelopev2", help="model pack name (default antelopev2)")
    engine.add_argument("--insightface-pack-dir", help="the pack folder itself (instead of root + pack)")
    engine.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="insightface device")
    engine.add_argument("--dlib-detector", default="hog", choices=("hog", "cnn"), help="dlib detector (default hog)")

    rules = parser.add_argument_group("accept / reject thresholds")
    rules.add_argument("--similarity-threshold", type=float, default=None,
                       help="cosine similarity to the subject that counts as the subject "
                            "(default: dlib 0.92, insightface 0.40)")
    rules.add_argument("--competing-face-ratio", type=float, default=None,
                       help="another face this large relative to the subject's rejects the photo as multiple_faces; "
                            "smaller ones are cropped away or blurred (default 0.6)")
    rules.add_argument("--min-face-px", type=_positive_int, default=None,
                       help="subject face height below this -> face_too_small (default 64)")
    rules.add_argument("--min-face-share", type=float, default=None,
                       help="subject face size / image size below this -> face_too_small (default 0.05)")
    rules.add_argument("--min-face-inside", type=float, default=None,
                       help="share of the face box that must be inside the photo, else face_too_small (default 0.9)")
    rules.add_argument("--min-source-side", type=_positive_int, default=None,
                       help="smallest short side (source pixels) of the crop around the subject, else low_resolution "
                            "(default 384)")
    rules.add_argument("--blur-threshold", type=float, default=None,
                       help="smallest variance of the Laplacian of the face at 128 px, else blurry (default 30)")
    rules.add_argument("--duplicate-distance", type=int, default=None,
                       help="perceptual-hash distance (of 63 bits) counted as a duplicate (default 10)")

    out = parser.add_argument_group("crop and output")
    out.add_argument("--min-aspect", type=float, default=None, help="narrowest crop, width/height (default 0.5)")
    out.add_argument("--max-aspect", type=float, default=None, help="widest crop, width/height (default 2.0)")
    out.add_argument("--min-side", type=_positive_int, default=None,
                     help="output short side at least this, Lanczos upscaling (default 1024)")
    out.add_argument("--max-side", type=_positive_int, default=None,
                     help="output long side at most this (default 2048)")
    out.add_argument("--format", dest="image_format", choices=("jpg", "png"), default=None,
                     help="output image format (default jpg, quality 95)")
    out.add_argument("--no-blur", dest="blur_other_faces", action="store_false",
                     help="leave other people's faces inside crops as they are")
    out.add_argument("--detect-max-side", type=_positive_int, default=None,
                     help="faces are detected on a copy at most this large, for speed (default 1024)")

    train = parser.add_argument_group("ai-toolkit config")
    train.add_argument("--name", default=None, help="LoRA name (default: from the trigger)")
    train.add_argument("--steps", type=_positive_int, default=2500)
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--batch-size", type=_positive_int, default=2)
    train.add_argument("--rank", type=_positive_int, default=32)
    train.add_argument("--base-model", default="black-forest-labs/FLUX.1-dev")

    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.set_defaults(dataset_command="prepare", func=run)
    return parser


def add_vlm_arguments(parser: argparse.ArgumentParser) -> None:
    vlm = parser.add_argument_group("VLM captions (optional)")
    vlm.add_argument("--vlm-url", default=None, metavar="URL",
                     help="an OpenAI-compatible chat endpoint (e.g. http://127.0.0.1:8000/v1) that writes the captions; "
                          "each answer is checked (trigger first, the subject's side as measured) and replaced by "
                          "the geometric caption when it fails. Key: $PULID_STUDIO_VLM_KEY")
    vlm.add_argument("--vlm-model", default=None, metavar="NAME", help="model name for --vlm-url")


def build_vlm(args):
    """The VLM client the arguments ask for, or None."""
    if not getattr(args, "vlm_url", None):
        if getattr(args, "vlm_model", None):
            raise ValueError("--vlm-model needs --vlm-url (the endpoint serving it)")
        return None
    from .vlm import VLMClient

    return VLMClient(args.vlm_url, args.vlm_model)


def add_parser(subparsers, extra_commands=()) -> argparse.ArgumentParser:
    """Add ``dataset`` (with ``prepare``) to a parent CLI's sub-parsers; each of ``extra_commands`` is
    called with the ``dataset`` sub-parsers to add its own (the client adds ``synthesize`` and
    ``canonicalize``, which drive ComfyUI servers)."""
    parser = subparsers.add_parser("dataset", help="prepare identity-LoRA datasets",
                                   description="Face-aware dataset preparation for identity LoRA training.")
    commands = parser.add_subparsers(dest="dataset_command", required=True, metavar="COMMAND")
    add_prepare_arguments(commands.add_parser(
        "prepare", help="photos -> ai-toolkit dataset, config and report",
        description="Scan INPUT_DIR, keep the photos of the subject, crop, resize and caption them, and write "
                    "OUTPUT_DIR/dataset/, OUTPUT_DIR/ai-toolkit.yaml, report.json and report.html."))
    for register in extra_commands:
        register(commands)
    return parser


def build_engine(args):
    from ..face import load_engine

    if args.engine == "dlib":
        # HOG cost grows with the pixel count; at 768 px (doubled once inside) it still finds faces of
        # ~5 % of the long side, below the face_too_small limit, in about half the time of 1024.
        return load_engine("dlib", detector=args.dlib_detector, detect_max_side=DLIB_DETECT_SIDE)
    if args.insightface_pack_dir:
        return load_engine("insightface", pack_dir=args.insightface_pack_dir, device=args.device)
    if not args.insightface_root:
        raise ValueError("--engine insightface needs --insightface-root (ComfyUI's models/insightface folder, "
                         "or set PULID_INSIGHTFACE_ROOT) or --insightface-pack-dir")
    return load_engine("insightface", root=args.insightface_root, pack=args.insightface_pack, device=args.device)


def _configure_logging(quiet: bool) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(levelname)s %(message)s" if quiet else "%(message)s", stream=sys.stderr)
    logging.getLogger("pulid_flux").setLevel(logging.WARNING if quiet else logging.INFO)


# argparse leaves these None when not given; PrepareOptions then keeps its own default (so building
# the parser imports nothing heavy).
_OPTION_ARGS = ("similarity_threshold", "competing_face_ratio", "min_face_px", "min_face_share", "min_face_inside",
                "min_source_side", "blur_threshold", "duplicate_distance", "min_aspect", "max_aspect", "min_side",
                "max_side", "image_format", "detect_max_side", "others")


def run(args) -> int:
    """Run ``dataset prepare`` from parsed arguments; returns the exit status. Errors are raised for
    ``pulid-studio`` to report (one line naming the file)."""
    _configure_logging(getattr(args, "quiet", False))
    from .aitoolkit import TrainingConfig
    from .options import PrepareOptions
    from .pipeline import prepare_dataset

    given = {name: getattr(args, name) for name in _OPTION_ARGS if getattr(args, name) is not None}
    options = PrepareOptions(**given, caption_text=args.caption, blur_other_faces=args.blur_other_faces)
    training = TrainingConfig(name=args.name, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                              rank=args.rank, alpha=args.rank, base_model=args.base_model)
    engine = build_engine(args)
    vlm = build_vlm(args)

    from ..progress import PROGRESS_LINE

    live = getattr(args, "progress", None)   # a live bar from pulid-studio on a terminal (api_client.cli)

    def progress(done, total, stage):
        if stage == "analyse" and (done == total or done % 10 == 0):
            log.info("analysed %d/%d photos", done, total, extra=PROGRESS_LINE)
        if live is not None:
            live(done, total, stage)

    result = prepare_dataset(args.input_dir, args.output_dir, args.trigger, engine, references=args.reference,
                             options=options, training=training, progress=progress, vlm=vlm)
    summary = result.report["summary"]
    reasons = ", ".join(f"{k} {v}" for k, v in summary["reasons"].items()) or "none"
    log.info("accepted %d of %d (rejected: %s)", summary["accepted"], summary["inputs"], reasons)
    if summary.get("vlm_captions_replaced"):
        log.warning("%d VLM caption(s) failed the checks and were replaced by the geometric caption (see %s)",
                    summary["vlm_captions_replaced"], result.report_path)
    log.info("dataset: %s\nconfig:  %s\nreport:  %s", result.dataset_dir, result.config_path, result.html_path)
    if not result.accepted:
        log.warning("no photo was accepted; see %s for the reason of each", result.report_path)
        return EXIT_NOTHING_ACCEPTED
    return 0
