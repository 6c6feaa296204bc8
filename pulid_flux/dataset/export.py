"""Writing the result: ``dataset/`` (image + caption pairs only), ``report.json``, the ai-toolkit YAML.

Output folder layout::

    OUTPUT_DIR/
      dataset/          <stem>.jpg + <stem>.txt per accepted photo, nothing else
      ai-toolkit.yaml   ready FLUX.1-dev LoRA config pointing at dataset/ (absolute path)
      report.json       subject + one record per input photo
      report.html       contact sheet of every input with its decision
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import PulidError
from .analysis import face_size, inside_fraction
from .crop import render_crop
from .items import DatasetItem
from .options import REASONS, PrepareOptions
from .scene import describe_item
from .vlm import caption_image

log = logging.getLogger(__name__)

DATASET_DIR = "dataset"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
CONFIG_YAML = "ai-toolkit.yaml"
REPORT_VERSION = 1
CAPTION_SUFFIX = ".txt"
_UNSAFE = re.compile(r"[^\w.\- ]+")


def prepare_output_dir(output_dir) -> Path:
    """Create ``OUTPUT_DIR/dataset`` empty, removing only what a previous run's report says it wrote.

    Anything else in ``dataset/`` is the user's: the run stops rather than mix or delete it.
    """
    output_dir = Path(output_dir)
    dataset = output_dir / DATASET_DIR
    if dataset.exists() and not dataset.is_dir():
        raise PulidError(f"{dataset} exists and is not a folder")
    if dataset.is_dir() and any(dataset.iterdir()):
        for rel in _previous_outputs(output_dir / REPORT_JSON):
            path = (output_dir / rel).resolve()
            if path.parent == dataset.resolve() and path.is_file():
                path.unlink()
        leftover = sorted(p.name for p in dataset.iterdir())
        if leftover:
            shown = ", ".join(leftover[:5]) + (f", … ({len(leftover) - 5} more)" if len(leftover) > 5 else "")
            raise PulidError(f"{dataset} already holds files this tool did not write ({shown}); "
                             "choose an empty output folder or empty it first")
    dataset.mkdir(parents=True, exist_ok=True)
    return dataset


def _previous_outputs(report_path: Path) -> list[str]:
    if not report_path.is_file():
        return []
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        return [p for item in report.get("items", []) for p in (item.get("output"), item.get("caption_file")) if p]
    except (OSError, ValueError, AttributeError):
        log.warning("%s is not a readable report; previous outputs are not cleaned up", report_path)
        return []


def output_stem(name: str, used: set[str]) -> str:
    """A file stem from the input name, unique (case-insensitively) among ``used``."""
    stem = _UNSAFE.sub("_", Path(name).stem).strip(" .") or "image"
    candidate, n = stem, 2
    while candidate.lower() in used:
        candidate, n = f"{stem}_{n}", n + 1
    used.add(candidate.lower())
    return candidate


def save_image(image: np.ndarray, path: Path, image_format: str) -> None:
    from PIL import Image

    if image_format == "png":
        Image.fromarray(image).save(path, format="PNG", compress_level=4)
    else:
        Image.fromarray(image).save(path, format="JPEG", quality=95, subsampling=0)


def save_pair(item: DatasetItem, image: np.ndarray, dataset_dir: Path, options: PrepareOptions,
              used: set[str]) -> None:
    """Write ``image`` and ``item.caption`` as ``<stem>.<ext>`` + ``<stem>.txt``; records the paths on ``item``."""
    if not item.caption:
        raise ValueError(f"{item.name}: no caption to write (caption the dataset before saving it)")
    stem = output_stem(item.name, used)
    image_path = dataset_dir / f"{stem}.{options.image_format}"
    save_image(image, image_path, options.image_format)
    (dataset_dir / f"{stem}{CAPTION_SUFFIX}").write_text(item.caption + "\n", encoding="utf-8")
    item.output = f"{dataset_dir.name}/{image_path.name}"
    item.caption_file = f"{dataset_dir.name}/{stem}{CAPTION_SUFFIX}"


def caption_item(item: DatasetItem, rendered: np.ndarray, trigger: str, text: str = "", *, vlm=None,
                 reference: np.ndarray | None = None) -> None:
    """Caption an accepted, cropped item from its measured scene (position in the frame, other people,
    head angle, framing), or by the VLM when given and its answer passes the checks (see :mod:`.vlm`)."""
    facts = describe_item(item)
    result = caption_image(trigger, facts, text, image=rendered, vlm=vlm, reference=reference, name=item.name)
    item.caption, item.caption_source, item.caption_warning = result.text, result.source, result.warning
    item.scene = facts.to_dict()


def write_item(item: DatasetItem, image: np.ndarray, dataset_dir: Path, trigger: str, options: PrepareOptions,
               used: set[str], upscaler: Callable[[np.ndarray], np.ndarray] | None = None, *, vlm=None,
               reference: np.ndarray | None = None) -> np.ndarray:
    """Crop, caption and write one accepted item (source pixels ``image``); returns the written image."""
    out = render_crop(image, item.crop, upscaler)
    caption_item(item, out, trigger, options.caption_text, vlm=vlm, reference=reference)
    save_pair(item, out, dataset_dir, options, used)
    return out


def _box(box) -> list[float] | None:
    return None if box is None else [round(float(v), 1) for v in box]


def item_record(item: DatasetItem) -> dict:
    face = item.subject_face
    record = {
        "file": item.name,
        "status": item.status,
        "reason": item.reason,
        "detail": item.detail,
        "similarity": None if item.similarity is None else round(item.similarity, 4),
        "output": item.output,
        "caption_file": item.caption_file,
        "caption": item.caption,
        "caption_source": item.caption_source,
        "caption_warning": item.caption_warning,
        "scene": item.scene,
        "duplicate_of": item.duplicate_of,
        "image_size": [item.width, item.height] if item.readable else None,
        "faces": len(item.faces),
        "face_box": _box(face.bbox) if face is not None else None,
        "face_size": None,
        "sharpness": round(item.sharpness[item.subject_index], 1) if face is not None else None,
        "crop_box": list(item.crop.box) if item.crop else None,
        "output_size": list(item.crop.output_size) if item.crop and item.output else None,
        "shot": item.crop.shot if item.crop else None,
        "blurred_faces": [_box(b) for b in item.crop.blurred] if item.crop else [],
        "avoided_faces": item.crop.avoided if item.crop else 0,
        "other_faces": [{"box": _box(f.bbox), "similarity": round(s, 4)}
                        for i, (f, s) in enumerate(zip(item.faces, item.similarities)) if i != item.subject_index],
        "face_region": ({"source": item.region.source, "box": list(item.region.box),
                         "mode": item.faces[0].extra.get("region_mode") if item.faces else None}
                        if item.region is not None else None),
    }
    if face is not None:
        record["face_size"] = {"px": round(face.height, 1),
                               "share": round(face_size(face) / (item.width * item.height) ** 0.5, 4),
                               "inside": round(inside_fraction(face, item.width, item.height), 3)}
    return record


def build_report(items: Sequence[DatasetItem], subject_summary: dict, *, trigger: str, options: PrepareOptions,
                 extra: dict | None = None) -> dict:
    reasons = Counter(i.reason for i in items if not i.accepted)
    return {
        "version": REPORT_VERSION,
        "trigger": trigger,
        **(extra or {}),
        "dataset_dir": DATASET_DIR,
        "config": CONFIG_YAML,
        "subject": subject_summary,
        "summary": {"inputs": len(items), "accepted": sum(i.accepted for i in items),
                    "rejected": sum(not i.accepted for i in items),
                    "reasons": {r: reasons[r] for r in REASONS if reasons[r]},
                    "blurred_faces": sum(len(i.crop.blurred) for i in items if i.accepted and i.crop),
                    "vlm_captions": sum(i.caption_source == "vlm" for i in items),
                    "vlm_captions_replaced": sum(bool(i.caption_warning) for i in items)},
        "options": options.to_dict(),
        "items": [item_record(i) for i in items],
    }


def write_report(path, report: dict) -> Path:
    path = Path(path)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
