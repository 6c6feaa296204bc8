"""The preparation as separate in-memory stages (filter -> crop -> caption -> save), for the ComfyUI nodes.

Each stage returns a new :class:`DatasetBatch` and leaves its input untouched: ComfyUI caches node
outputs and hands the same object to every consumer.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..face import FaceEngine
from .aitoolkit import TrainingConfig, build_config, write_config
from .caption import check_trigger
from .crop import plan_subject_crop, render_crop
from .export import (CONFIG_YAML, REPORT_HTML, REPORT_JSON, build_report, caption_item, prepare_output_dir,
                     save_pair, write_report)
from .items import DatasetItem
from .options import PrepareOptions, default_similarity_threshold
from .pipeline import Progress, analyse_images, decide, reference_faces, select_subject
from .report_html import write_contact_sheet
from .subject import subject_summary

log = logging.getLogger(__name__)


@dataclass
class DatasetBatch:
    items: list[DatasetItem]
    subject: dict                        # Subject.summary() (+ "found")
    options: PrepareOptions
    trigger: str | None = None

    @property
    def accepted(self) -> list[DatasetItem]:
        return [i for i in self.items if i.accepted]

    def copy(self, **changes) -> DatasetBatch:
        return dataclasses.replace(self, items=[dataclasses.replace(i) for i in self.items], **changes)


@dataclass
class SavedBatch:
    output_dir: Path
    dataset_dir: Path
    config_path: Path
    report_path: Path
    html_path: Path
    report: dict


def filter_images(images: Sequence[np.ndarray], engine: FaceEngine, *, names: Sequence[str] | None = None,
                  references: Sequence[np.ndarray] = (), options: PrepareOptions | None = None,
                  progress: Progress | None = None) -> DatasetBatch:
    """Analyse RGB uint8 photos, find the subject and accept or reject each (crops are planned too)."""
    options = options or PrepareOptions()
    if not len(images):
        raise ValueError("no images to filter")
    names = list(names) if names is not None else [f"image_{n:04d}" for n in range(1, len(images) + 1)]
    if len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images")
    threshold = (options.similarity_threshold if options.similarity_threshold is not None
                 else default_similarity_threshold(engine))
    refs = reference_faces([(f"reference_{n}", img) for n, img in enumerate(references, 1)], engine,
                           options.detect_max_side) if len(references) else []
    items = [DatasetItem(name=name, image=image) for name, image in zip(names, images)]
    analyse_images(items, engine, options, progress)
    subject = select_subject(items, engine, threshold, refs)
    decide(items, subject, options)
    summary = subject_summary(subject, engine_name=engine.name, threshold=threshold,
                              method="reference" if refs else "auto")
    return DatasetBatch(items=items, subject=summary, options=options)


def crop_batch(batch: DatasetBatch, options: PrepareOptions | None = None,
               upscaler: Callable[[np.ndarray], np.ndarray] | None = None,
               progress: Progress | None = None) -> DatasetBatch:
    """Crop and resize every accepted item (``options``: new crop/output settings, else the batch's)."""
    options = options or batch.options
    out = batch.copy(options=options)
    accepted = out.accepted
    for n, item in enumerate(accepted, 1):
        if item.image is None:
            raise ValueError(f"{item.name}: the pixels are not in memory (this batch came from a folder run)")
        face = item.subject_face
        others = [f.bbox for i, f in enumerate(item.faces) if i != item.subject_index]
        item.crop = plan_subject_crop(item.width, item.height, face.bbox, others, options)
        if min(item.crop.width, item.crop.height) < options.min_source_side:
            log.warning("%s: with these crop settings the crop is only %dx%d source pixels", item.name,
                        item.crop.width, item.crop.height)
        item.rendered = render_crop(item.image, item.crop, upscaler)
        item.caption = None
        if progress:
            progress(n, len(accepted), "crop")
    return out


def caption_batch(batch: DatasetBatch, trigger: str, text: str = "") -> DatasetBatch:
    """The geometric caption (trigger, position, other people, head angle, framing, text) of every
    cropped item."""
    trigger = check_trigger(trigger)
    out = batch.copy(trigger=trigger)
    for item in out.accepted:
        if item.crop is None or item.rendered is None:
            raise ValueError(f"{item.name}: not cropped yet; crop the dataset before captioning it")
        caption_item(item, item.rendered, trigger, text)
    return out


def save_batch(batch: DatasetBatch, output_dir, training: TrainingConfig | None = None,
               progress: Progress | None = None) -> SavedBatch:
    """Write ``dataset/`` (image + caption pairs), ``ai-toolkit.yaml``, ``report.json`` and ``report.html``."""
    if not batch.trigger:
        raise ValueError("the dataset has no captions yet; caption it (with the trigger word) before saving")
    accepted = batch.accepted
    if not accepted:
        raise ValueError("no image was accepted; nothing to save (see the filter's report for the reasons)")
    missing = [i.name for i in accepted if i.rendered is None or not i.caption]
    if missing:
        raise ValueError(f"not cropped and captioned: {', '.join(missing[:5])}")
    output_dir = Path(output_dir)
    dataset_dir = prepare_output_dir(output_dir)
    saved = batch.copy()
    used: set[str] = set()
    for n, item in enumerate(saved.accepted, 1):
        save_pair(item, item.rendered, dataset_dir, saved.options, used)
        if progress:
            progress(n, len(accepted), "save")
    config_path = write_config(output_dir / CONFIG_YAML, build_config(dataset_dir, saved.trigger, training))
    report = build_report(saved.items, saved.subject, trigger=saved.trigger, options=saved.options,
                          extra={"output_dir": str(output_dir.resolve()),
                                 "training": (training or TrainingConfig()).to_dict()})
    report_path = write_report(output_dir / REPORT_JSON, report)
    html_path = write_contact_sheet(output_dir / REPORT_HTML, saved.items, report)
    return SavedBatch(output_dir=output_dir, dataset_dir=dataset_dir, config_path=config_path,
                      report_path=report_path, html_path=html_path, report=report)
