"""Accept or reject each photo, with exactly one reason code (see ``options.REASONS``)."""

from __future__ import annotations

from collections.abc import Sequence

from .analysis import face_size, inside_fraction
from .crop import plan_subject_crop
from .items import DatasetItem
from .options import PrepareOptions
from .quality import hamming
from .subject import Subject


def match_subject(item: DatasetItem, subject: Subject) -> None:
    """Similarity of every face to the subject; the most similar one at or above the threshold is the
    subject's (with a face region, only the region's face may be)."""
    item.similarities = subject.similarities(item.faces)
    item.subject_index = None
    if item.similarities:
        best = 0 if item.region is not None else max(range(len(item.faces)), key=lambda i: item.similarities[i])
        if item.similarities[best] >= subject.threshold:
            item.subject_index = best


def judge(item: DatasetItem, subject: Subject, options: PrepareOptions) -> None:
    """Decide one analysed photo (duplicates between photos are settled later by ``drop_duplicates``)."""
    match_subject(item, subject)
    if not item.faces:
        item.reject("no_face", "no face detected")
        return
    face = item.subject_face
    if face is None and item.region is not None:
        item.reject("not_subject", f"the face in {item.region.source} is not the subject (similarity "
                                   f"{item.similarities[0]:.3f} < {subject.threshold:.3f})")
        return
    if face is None:
        item.reject("not_subject", f"{len(item.faces)} face(s), none the subject (best similarity "
                                   f"{max(item.similarities):.3f} < {subject.threshold:.3f})")
        return
    size = face_size(face)
    others = [f for i, f in enumerate(item.faces) if i != item.subject_index]
    if others and options.others == "reject":
        item.reject("multiple_faces", f"{len(others)} other face(s) in the photo (others: reject)")
        return
    competing = [f for f in others if face_size(f) >= options.competing_face_ratio * size]
    if competing and options.others == "crop":
        largest = max(face_size(f) for f in competing) / size
        item.reject("multiple_faces", f"{len(competing)} other face(s) as prominent as the subject's "
                                      f"(largest {largest:.2f}x its size; limit {options.competing_face_ratio:.2f})")
        return
    item.crop = plan_subject_crop(item.width, item.height, face.bbox, [f.bbox for f in others], options)
    short = min(item.crop.width, item.crop.height)
    if short < options.min_source_side:
        item.reject("low_resolution", f"the crop around the subject is {item.crop.width}x{item.crop.height} px "
                                      f"(short side {short} < {options.min_source_side})")
        return
    share = size / (item.width * item.height) ** 0.5
    inside = inside_fraction(face, item.width, item.height)
    if face.height < options.min_face_px:
        item.reject("face_too_small", f"face {face.height:.0f} px high < {options.min_face_px}")
        return
    if share < options.min_face_share:
        item.reject("face_too_small", f"face is {share:.3f} of the image < {options.min_face_share}")
        return
    if inside < options.min_face_inside:
        item.reject("face_too_small", f"the frame cuts the face: only {inside:.0%} of it is in the photo "
                                      f"(< {options.min_face_inside:.0%})")
        return
    sharpness = item.sharpness[item.subject_index]
    if sharpness < options.blur_threshold:
        item.reject("blurry", f"face sharpness {sharpness:.1f} < {options.blur_threshold}")
        return
    item.accept()
    if item.crop.blurred:
        item.detail = f"{len(item.crop.blurred)} other face(s) inside the crop blurred"


def quality_key(item: DatasetItem) -> tuple[float, float]:
    """Which of two near-identical photos to keep: more visible face pixels, then sharper."""
    face = item.subject_face
    return face.height * inside_fraction(face, item.width, item.height), item.sharpness[item.subject_index]


def drop_duplicates(items: Sequence[DatasetItem], max_distance: int) -> None:
    """Reject accepted photos that are near-identical (perceptual hash) to a better accepted one."""
    kept: list[DatasetItem] = []
    for item in sorted((i for i in items if i.accepted), key=quality_key, reverse=True):
        twin = next((k for k in kept if hamming(k.phash, item.phash) <= max_distance), None)
        if twin is None:
            kept.append(item)
            continue
        item.reject("duplicate", f"near-identical to {twin.name} (hash distance {hamming(twin.phash, item.phash)} "
                                 f"<= {max_distance}); kept the one with more face pixels", duplicate_of=twin.name)
