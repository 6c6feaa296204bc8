"""From generated images on disk to the training set: filter, caption, write, report.

The generation itself (ComfyUI jobs) is the run engine's; this module starts from its files.
Output folder layout (``OUT``)::

    candidates/<view>/<view>_s<seed>.png   every generated candidate (the run engine writes them)
    grounding/reg_NNNN.png                 every generated grounding image (the run engine)
    train/<view>_s<seed>.png + .txt        kept (or, unverified, written-anyway) views with captions
    reg/reg_NNNN.png + .txt                grounding images that are not the subject, trigger-free captions
    ai-toolkit.yaml                        train/ + reg/ (is_reg: true), save_every, sample prompts
    coverage.csv, report.md, report.html, contact_sheet.jpg, synthesis.json (every decision)

``train/`` and ``reg/`` belong to this tool: a re-run replaces what ``synthesis.json`` says it wrote
there, and stops if anything else is in them.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..dataset.aitoolkit import TrainingConfig, build_config, write_config
from ..dataset.analysis import THUMBNAIL_SIDE, detect_faces, downscale
from ..dataset.caption import check_trigger
from ..dataset.scene import SceneFacts, describe_scene
from ..dataset.subject import Subject, subject_from_faces
from ..dataset.vlm import caption_image
from ..errors import NoFaceError, PulidError
from ..face import FaceEngine
from ..images import ImageReadError, load_rgb
from .grounding import GroundingImage, check_not_subject
from .keep_filter import KEPT, UNVERIFIED, Candidate, FilterSettings, filter_candidates, identity_threshold
from .report import (coverage_rows, engine_notes, summary_line, write_contact_sheet, write_coverage_csv,
                     write_report_md)
from .report_html import REPORT_HTML, write_report_html
from .views import View

log = logging.getLogger(__name__)

CANDIDATES_DIR, GROUNDING_DIR, TRAIN_DIR, REG_DIR = "candidates", "grounding", "train", "reg"
COVERAGE_CSV, REPORT_MD, CONTACT_SHEET = "coverage.csv", "report.md", "contact_sheet.jpg"
RECORD_JSON, CONFIG_YAML = "synthesis.json", "ai-toolkit.yaml"
CAPTION_SUFFIX = ".txt"

Progress = Callable[[int, int, str], None]


def candidate_file(view: View, seed: int) -> str:
    """Where the run engine writes a candidate, relative to the output folder."""
    return f"{CANDIDATES_DIR}/{view.name}/{view.name}_s{seed}.png"


def grounding_file(name: str) -> str:
    return f"{GROUNDING_DIR}/{name}.png"


def plan_candidates(views: Sequence[View], seeds: Sequence[int]) -> list[Candidate]:
    """N candidates (one per seed) of every view."""
    if not views:
        raise ValueError("the view plan is empty")
    if not seeds:
        raise ValueError("at least one candidate per view is needed")
    return [Candidate(name=f"{v.name}_s{s}", view=v, seed=int(s), path=candidate_file(v, s))
            for v in views for s in seeds]


def portrait_subject(portrait: np.ndarray, engine: FaceEngine, *, name: str, required: bool,
                     detect_max_side: int = 1024) -> Subject | None:
    """The subject as the portrait's largest face; NoFaceError when ``required`` and there is none."""
    return references_subject([(name, portrait)], engine, required=required, detect_max_side=detect_max_side)


def references_subject(images: Sequence[tuple[str, np.ndarray]], engine: FaceEngine, *, required: bool,
                       detect_max_side: int = 1024) -> Subject | None:
    """The subject as the centroid of the largest face of each (name, RGB image): the portrait and any
    further photos. A photo without a face is an error when ``required`` (else a warning), and None
    is returned when no photo has one."""
    named = []
    for name, image in images:
        faces = detect_faces(engine, image, detect_max_side)
        if faces:
            named.append((name, faces[0]))
            continue
        message = f"{name}: no face found by {engine.name}"
        if required:
            raise NoFaceError(message + "; give a photo where the face is clearly visible")
        log.warning("%s; it is left out of the identity check", message)
    if not named:
        return None
    return subject_from_faces(named, identity_threshold(engine.name, View("frontal")), engine.name)


def _read(out: Path, relative: str | None) -> np.ndarray | None:
    if not relative or not (out / relative).is_file():
        return None
    try:
        return load_rgb(out / relative)
    except ImageReadError as exc:
        log.warning("%s", exc)
        return None


def judge_candidates(out, candidates: Sequence[Candidate], engine: FaceEngine, subject: Subject | None,
                     settings: FilterSettings, progress: Progress | None = None) -> None:
    """Read every candidate from ``out``, run the filter (decisions on the candidates), drop the pixels."""
    out = Path(out)
    for c in candidates:
        c.image = _read(out, c.path)
        if c.image is not None:
            c.thumbnail = np.ascontiguousarray(downscale(c.image, THUMBNAIL_SIDE)[0])
    filter_candidates(candidates, engine, subject, settings, progress)
    for c in candidates:
        c.image = None


# ------------------------------------------------------------------------------------------ folders


def _previous_outputs(out: Path) -> set[str]:
    path = out / RECORD_JSON
    if not path.is_file():
        return set()
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return {f for f in record.get("written", []) if isinstance(f, str)}
    except (OSError, ValueError, AttributeError):
        log.warning("%s is unreadable; files written by an earlier run are not cleaned up", path)
        return set()


def reset_owned_folder(out: Path, name: str, ours: set[str] = frozenset()) -> Path:
    """``out/name`` empty, removing only the files the previous run recorded and the file names this
    run writes (``ours``: a run that stopped before its record was written); anything else: error."""
    folder = out / name
    if folder.exists() and not folder.is_dir():
        raise PulidError(f"{folder} exists and is not a folder")
    if folder.is_dir():
        previous = {out / relative for relative in _previous_outputs(out)} | {folder / n for n in ours}
        for path in previous:
            if path.parent.resolve() == folder.resolve() and path.is_file():
                path.unlink()
        leftover = sorted(p.name for p in folder.iterdir())
        if leftover:
            raise PulidError(f"{folder} holds files this tool did not write ({', '.join(leftover[:5])}"
                             f"{', ...' if len(leftover) > 5 else ''}); choose another --out or empty it")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ------------------------------------------------------------------------------------------ writing


def candidate_facts(candidate: Candidate, image_size) -> tuple[SceneFacts, str]:
    """The caption facts of a written candidate and what they rest on: the measured face for a kept
    one, the requested view for an unverified one (no face was measured)."""
    view = candidate.view
    if candidate.status == KEPT and candidate.face_box is not None:
        facts = describe_scene(candidate.face_box, (), image_size=image_size, head_pose=candidate.pose,
                               framing=view.shot)
        return facts, "measured"
    return SceneFacts(position="center", yaw=view.yaw, pitch=view.pitch, framing=view.shot), "requested view"


def view_text(view: View, extra: str = "") -> str:
    """The caption's free text for a view: expression, lighting, background (and the user's text)."""
    parts = [view.expression, view.lighting, view.background, extra]
    return ", ".join(" ".join(p.split()) for p in parts if p and p.strip())


def write_training_images(out, candidates: Sequence[Candidate], trigger: str, *, text: str = "", vlm=None,
                          portrait: np.ndarray | None = None) -> list[str]:
    """Copy the kept / unverified candidates into ``train/`` with their captions; returns the written paths."""
    out = Path(out)
    trigger = check_trigger(trigger)
    folder = reset_owned_folder(out, TRAIN_DIR, {f"{c.name}{ext}" for c in candidates for ext in (".png", CAPTION_SUFFIX)})
    written = []
    for c in sorted(candidates, key=lambda c: (c.view.name, c.seed)):
        if c.status not in (KEPT, UNVERIFIED):
            continue
        image = load_rgb(out / c.path)
        facts, basis = candidate_facts(c, (image.shape[1], image.shape[0]))
        result = caption_image(trigger, facts, view_text(c.view, text), image=image, vlm=vlm, reference=portrait,
                               name=c.name)
        target = folder / f"{c.name}.png"
        shutil.copyfile(out / c.path, target)
        (folder / f"{c.name}{CAPTION_SUFFIX}").write_text(result.text + "\n", encoding="utf-8")
        c.extra.update(output=f"{TRAIN_DIR}/{target.name}", caption=result.text, caption_source=result.source,
                       caption_warning=result.warning, caption_basis=basis, scene=facts.to_dict())
        written += [f"{TRAIN_DIR}/{target.name}", f"{TRAIN_DIR}/{c.name}{CAPTION_SUFFIX}"]
    return written


def write_grounding_images(out, items: Sequence[GroundingImage], engine: FaceEngine, subject: Subject | None,
                           *, detect_max_side: int = 1024) -> list[str]:
    """Check every generated grounding image is not the subject and write those into ``reg/``."""
    out = Path(out)
    folder = reset_owned_folder(out, REG_DIR, {f"{g.name}{ext}" for g in items for ext in (".png", CAPTION_SUFFIX)})
    written = []
    for item in items:
        image = _read(out, item.path)
        if image is None:
            item.status, item.detail = "missing", "the image was not generated (see the run's manifest)"
            continue
        if not check_not_subject(item, image, engine, subject, detect_max_side=detect_max_side):
            continue
        target = folder / f"{item.name}.png"
        shutil.copyfile(out / item.path, target)
        (folder / f"{item.name}{CAPTION_SUFFIX}").write_text(item.caption + "\n", encoding="utf-8")
        item.output = f"{REG_DIR}/{target.name}"
        written += [item.output, f"{REG_DIR}/{item.name}{CAPTION_SUFFIX}"]
    return written


@dataclass
class SetSummary:
    """What :func:`finish_set` wrote."""

    out: Path
    kept: int
    unverified: int
    grounding: int
    files: dict = field(default_factory=dict)

    @property
    def trained(self) -> int:
        return self.kept + self.unverified


def finish_set(out, *, trigger: str, views: Sequence[View], candidates: Sequence[Candidate],
               grounding: Sequence[GroundingImage], engine_name: str, settings: FilterSettings, written: list[str],
               training: TrainingConfig | None = None, sample_prompts: Sequence[str] = (),
               title: str = "Synthesized training set", extra_record: dict | None = None,
               notes: Sequence[str] = (), training_config: bool = True) -> SetSummary:
    """The config (unless ``training_config`` is False), coverage table, contact sheet, report and
    record of a written set."""
    out = Path(out)
    reg_dir = out / REG_DIR if any(g.output for g in grounding) else None
    files = {}
    if training_config and any(c.status in (KEPT, UNVERIFIED) for c in candidates):
        config = build_config(out / TRAIN_DIR, trigger, training, reg_dir=reg_dir,
                              sample_prompts=list(sample_prompts) or None)
        write_config(out / CONFIG_YAML, config)
        files[CONFIG_YAML] = "ai-toolkit config: train/" + (" and reg/ (is_reg: true)" if reg_dir else "")
    rows = coverage_rows(candidates, views, settings.per_view)
    write_coverage_csv(out / COVERAGE_CSV, rows)
    write_contact_sheet(out / CONTACT_SHEET, candidates, views)
    if training_config:
        files[TRAIN_DIR + "/"] = "training images with captions"
    files.update({COVERAGE_CSV: "views x kept / tried", CONTACT_SHEET: "every candidate with its decision",
                  RECORD_JSON: "every decision"})
    if reg_dir:
        files[REG_DIR + "/"] = "grounding images with trigger-free captions"
    write_report_md(out / REPORT_MD, title=title, trigger=trigger, engine_name=engine_name, views=views,
                    candidates=candidates, rows=rows, per_view=settings.per_view, verified=settings.verify,
                    grounding=grounding, files=files, notes=notes)
    record = {"version": 1, "trigger": trigger, "engine": engine_name, "verified": settings.verify,
              "per_view": settings.per_view, "views": [v.to_dict() for v in views],
              "candidates": [c.record() for c in candidates], "grounding": [g.record() for g in grounding],
              "coverage": rows, "sample_prompts": list(sample_prompts), "written": written, **(extra_record or {})}
    (out / RECORD_JSON).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    # After the record, so the page links every file it names.
    write_report_html(out / REPORT_HTML, title=title, verified=settings.verify, views=views, candidates=candidates,
                      summary=summary_line(trigger, views, candidates, settings.per_view),
                      engine_lines=engine_notes(engine_name, views), rows=rows, per_view=settings.per_view,
                      grounding=grounding, files=files, notes=notes)
    return SetSummary(out=out, kept=sum(c.status == KEPT for c in candidates),
                      unverified=sum(c.status == UNVERIFIED for c in candidates),
                      grounding=sum(bool(g.output) for g in grounding), files=files)
