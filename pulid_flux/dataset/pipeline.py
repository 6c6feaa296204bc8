"""The whole preparation: folder of photos -> ai-toolkit dataset, config and report.

Two passes keep memory flat however large the folder is: the first reads each photo once (faces,
sharpness, hash, thumbnail) and drops the pixels; the second re-reads only the accepted photos to
crop and write them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import FaceRegionError, NoFaceError, PulidError
from ..face import Face, FaceEngine
from ..face.region import FaceRegion, list_photos, read_sidecar
from ..face.region_locate import embed_region
from ..images import ImageReadError, content_hash, load_rgb
from ..progress import ProgressCallback
from .aitoolkit import TrainingConfig, build_config, write_config
from .analysis import analyze, detect_faces
from .caption import check_trigger
from .export import (CONFIG_YAML, REPORT_HTML, REPORT_JSON, build_report, prepare_output_dir, write_item,
                     write_report)
from .items import DatasetItem
from .judge import drop_duplicates, judge
from .options import PrepareOptions, default_similarity_threshold
from .quality import file_sha256
from .report_html import write_contact_sheet
from .subject import Subject, find_subject, subject_from_faces, subject_summary

log = logging.getLogger(__name__)

#: progress(done, total, stage) after each photo of a stage ("analyse", "export")
Progress = ProgressCallback


@dataclass
class PrepareResult:
    output_dir: Path
    dataset_dir: Path
    config_path: Path
    report_path: Path
    html_path: Path
    items: list[DatasetItem]
    subject: Subject | None
    report: dict
    seconds: float

    @property
    def accepted(self) -> list[DatasetItem]:
        return [i for i in self.items if i.accepted]


def reference_faces(images: Sequence[tuple[str, np.ndarray]], engine: FaceEngine,
                    detect_max_side: int = 1024, regions: dict[str, FaceRegion | None] | None = None,
                    ) -> list[tuple[str, Face]]:
    """The largest face of each reference photo, or the face of its region (``regions``: name ->
    FaceRegion); NoFaceError naming a photo without one."""
    chosen = []
    for name, image in images:
        region = (regions or {}).get(name)
        if region is not None:
            chosen.append((name, embed_region(image, region, engine)[0].face))
            continue
        faces = detect_faces(engine, image, detect_max_side)
        if not faces:
            raise NoFaceError(f"{name}: no face found in this reference photo; give a photo where the subject's "
                              "face is clearly visible")
        if len(faces) > 1:
            log.info("reference %s holds %d faces; using the largest", name, len(faces))
        chosen.append((name, faces[0]))
    return chosen


def load_reference_files(paths: Sequence, engine: FaceEngine, detect_max_side: int = 1024) -> list[tuple[str, Face]]:
    """The reference photos' faces; a ``<photo stem>.face.json`` sidecar says which face is the subject."""
    images, regions = [], {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"reference photo {path} does not exist")
        images.append((str(path), load_rgb(path)))     # ImageReadError names the file
        regions[str(path)] = read_sidecar(path)
    return reference_faces(images, engine, detect_max_side, regions)


def mark_exact_duplicate(item: DatasetItem, seen: dict[str, DatasetItem]) -> bool:
    """Reject ``item`` if its digest was seen on a readable photo (recording it otherwise)."""
    twin = seen.get(item.digest)
    if twin is not None and twin.readable:
        item.reject("duplicate", f"byte-identical to {twin.name}", duplicate_of=twin.name)
        item.width, item.height, item.thumbnail, item.phash = twin.width, twin.height, twin.thumbnail, twin.phash
        return True
    seen.setdefault(item.digest, item)
    return False


def select_subject(items: Sequence[DatasetItem], engine: FaceEngine, threshold: float,
                   references: Sequence[tuple[str, Face]] = ()) -> Subject | None:
    """Subject from the references, else the dominant identity; None when no photo holds a face."""
    if references:
        return subject_from_faces(references, threshold, engine.name)
    candidates = [i for i in items if i.status is None and i.readable]
    try:
        return find_subject(candidates, threshold, engine.name)
    except NoFaceError as exc:
        log.warning("%s", exc)
        return None


def decide(items: Sequence[DatasetItem], subject: Subject | None, options: PrepareOptions) -> None:
    """Accept or reject every undecided item, then drop near-duplicates among the accepted."""
    for item in items:
        if item.status is not None:
            continue
        if subject is None:
            item.reject("no_face", "no face detected")
        else:
            judge(item, subject, options)
    drop_duplicates(items, options.duplicate_distance)


def _analyse_files(files: Sequence[Path], engine: FaceEngine, options: PrepareOptions,
                   progress: Progress | None) -> list[DatasetItem]:
    items, seen = [], {}
    for n, path in enumerate(files, 1):
        item = DatasetItem(name=path.name, path=path)
        items.append(item)
        try:
            item.digest = file_sha256(path)
        except OSError as exc:
            item.reject("unreadable", f"cannot read the file ({exc.__class__.__name__}: {exc})")
        if item.status is None and not mark_exact_duplicate(item, seen):
            try:
                image = load_rgb(path)
            except ImageReadError as exc:
                item.reject("unreadable", str(exc).split(": ", 1)[-1])
                log.warning("%s", exc)
            except Image.DecompressionBombError as exc:      # Pillow refuses images over ~179 megapixels
                item.reject("unreadable", f"too many pixels to read safely ({exc})")
                log.warning("%s: %s", path, exc)
            else:
                try:
                    analyze(item, image, engine, options.detect_max_side, read_sidecar(path))
                except FaceRegionError as exc:
                    item.reject("bad_region", str(exc))
                    log.warning("%s", exc)
        if progress:
            progress(n, len(files), "analyse")
    return items


def prepare_dataset(input_dir, output_dir, trigger: str, engine: FaceEngine, *, references: Sequence = (),
                    options: PrepareOptions | None = None, training: TrainingConfig | None = None,
                    progress: Progress | None = None, vlm=None) -> PrepareResult:
    """Prepare an identity-LoRA dataset from the photos in ``input_dir`` (see :mod:`.export` for the layout).

    ``references``: photo paths of the subject; without them the identity seen in the most photos
    is the subject. Rejections never raise: every input ends up in the report with its reason.
    ``vlm``: a :class:`~.vlm.VLMClient` to caption with (checked, see :mod:`.vlm`); it is shown the
    first reference photo, else the accepted photo most like the subject.
    """
    start = time.perf_counter()
    trigger = check_trigger(trigger)
    options = options or PrepareOptions()
    threshold = (options.similarity_threshold if options.similarity_threshold is not None
                 else default_similarity_threshold(engine))
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    files = list_photos(input_dir)          # mask PNGs named by .face.json sidecars are not photos
    if not files:
        raise PulidError(f"{input_dir}: no .jpg, .jpeg, .png or .webp photos in this folder")
    if output_dir.resolve() == input_dir.resolve():
        raise PulidError(f"the output folder must differ from the input folder ({input_dir})")
    # References first: a bad one stops the run before anything in the output folder changes.
    ref_faces = load_reference_files(references, engine, options.detect_max_side) if references else []
    dataset_dir = prepare_output_dir(output_dir)

    items = _analyse_files(files, engine, options, progress)
    subject = select_subject(items, engine, threshold, ref_faces)
    decide(items, subject, options)
    for item in items:
        sim = "" if item.similarity is None else f", similarity {item.similarity:.3f}"
        if item.accepted:
            log.info("%s: accepted%s", item.name, sim)
        else:
            log.info("%s: rejected, %s%s (%s)", item.name, item.reason, sim, item.detail)

    used: set[str] = set()
    accepted = [i for i in items if i.accepted]
    vlm_reference = _vlm_reference(references, accepted) if vlm is not None else None
    for n, item in enumerate(accepted, 1):
        write_item(item, load_rgb(item.path), dataset_dir, trigger, options, used, vlm=vlm, reference=vlm_reference)
        if progress:
            progress(n, len(accepted), "export")

    config_path = write_config(output_dir / CONFIG_YAML, build_config(dataset_dir, trigger, training))
    summary = subject_summary(subject, engine_name=engine.name, threshold=threshold,
                              method="reference" if references else "auto")
    seconds = time.perf_counter() - start
    report = build_report(items, summary, trigger=trigger, options=options,
                          extra={"input_dir": str(input_dir.resolve()), "output_dir": str(output_dir.resolve()),
                                 "references": [str(Path(r).resolve()) for r in references],
                                 "training": (training or TrainingConfig()).to_dict(),
                                 "seconds": round(seconds, 2)})
    report_path = write_report(output_dir / REPORT_JSON, report)
    html_path = write_contact_sheet(output_dir / REPORT_HTML, items, report)
    log.info("%d of %d photos accepted into %s (%.1f s)", len(accepted), len(items), dataset_dir, seconds)
    return PrepareResult(output_dir=output_dir, dataset_dir=dataset_dir, config_path=config_path,
                         report_path=report_path, html_path=html_path, items=items, subject=subject,
                         report=report, seconds=seconds)


def _vlm_reference(references: Sequence, accepted: Sequence[DatasetItem]) -> np.ndarray | None:
    """The subject's picture a VLM is shown: the first reference photo, else the best accepted photo."""
    if references:
        return load_rgb(references[0])
    if not accepted:
        return None
    return load_rgb(max(accepted, key=lambda i: i.similarity or 0.0).path)


def analyse_images(items: Sequence[DatasetItem], engine: FaceEngine, options: PrepareOptions,
                   progress: Progress | None = None) -> None:
    """In-memory variant of the first pass (ComfyUI IMAGE frames): ``item.image`` must be set."""
    seen: dict[str, DatasetItem] = {}
    for n, item in enumerate(items, 1):
        item.digest = content_hash(item.image)
        if not mark_exact_duplicate(item, seen):
            analyze(item, item.image, engine, options.detect_max_side)
        if progress:
            progress(n, len(items), "analyse")
