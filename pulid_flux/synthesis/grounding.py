"""Grounding (regularization) images: other people, so the trigger comes to mean one person.

A LoRA trained only on its subject learns "a man" = the subject ("everyone is now me"). The cure is
to train, beside the subject's images, images of other people from the base model (no LoRA, no
PuLID) whose captions do not carry the trigger. Their prompts are the training set's captions with
the trigger replaced by a class phrase ("a man"), so they cover the same views, framings and
settings. Each one is checked NOT to be the subject: an image whose face is as similar to the
portrait as the subject's own frontal threshold is dropped (the base model can produce a look-alike).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..dataset.analysis import detect_faces
from ..dataset.caption import check_trigger
from ..dataset.subject import Subject
from ..face import FaceEngine
from .keep_filter import IDENTITY_THRESHOLDS, engine_family

log = logging.getLogger(__name__)

#: the trigger's last word -> the class phrase that replaces the trigger
CLASS_NOUNS = {"man": "a man", "woman": "a woman", "person": "a person", "boy": "a boy", "girl": "a girl",
               "guy": "a man", "lady": "a woman", "child": "a child", "kid": "a child"}
KEPT, DROPPED = "kept", "dropped"


def class_phrase(trigger: str, given: str | None = None) -> str:
    """The class phrase: ``given``, else from the trigger's last word ('ohwx man' -> 'a man')."""
    if given:
        phrase = " ".join(str(given).split())
        if "," in phrase:
            raise ValueError(f"the class phrase {phrase!r} contains a comma (captions are split on commas)")
        return phrase
    word = check_trigger(trigger).split()[-1].lower()
    if word not in CLASS_NOUNS:
        raise ValueError(f"cannot tell the class of {trigger!r} from its last word; pass the class phrase "
                         f"(--class-phrase 'a man'); known words: {', '.join(CLASS_NOUNS)}")
    return CLASS_NOUNS[word]


def without_trigger(caption: str, trigger: str, phrase: str) -> str:
    """``caption`` with its leading trigger replaced by ``phrase`` (every other occurrence too)."""
    caption = " ".join(caption.split())
    if trigger not in caption:
        raise ValueError(f"caption {caption!r} does not contain the trigger {trigger!r}")
    return caption.replace(trigger, phrase)


@dataclass
class GroundingImage:
    name: str
    prompt: str
    caption: str
    seed: int
    path: str | None = None          # the generated image, relative to the output folder
    output: str | None = None        # the written reg/ image
    faces: int = 0
    similarity: float | None = None  # the most subject-like face's similarity to the portrait
    threshold: float | None = None
    status: str | None = None
    detail: str = ""

    def record(self) -> dict:
        return {"name": self.name, "prompt": self.prompt, "caption": self.caption, "seed": self.seed,
                "file": self.path, "output": self.output, "faces": self.faces,
                "similarity": None if self.similarity is None else round(self.similarity, 4),
                "threshold": self.threshold, "status": self.status, "detail": self.detail}


def grounding_plan(captions: Sequence[str], count: int, trigger: str, phrase: str, *, first_seed: int = 100_000,
                   prefix: str = "photo of ") -> list[GroundingImage]:
    """``count`` grounding images whose prompts cycle through ``captions`` (trigger -> ``phrase``)."""
    if count < 0:
        raise ValueError(f"the number of grounding images must be >= 0, got {count}")
    if count and not captions:
        raise ValueError("grounding images need at least one training caption to take their prompts from")
    plan = []
    for i in range(count):
        caption = without_trigger(captions[i % len(captions)], trigger, phrase)
        plan.append(GroundingImage(name=f"reg_{i + 1:04d}", prompt=prefix + caption, caption=caption,
                                   seed=first_seed + i))
    return plan


def not_subject_threshold(engine_name: str) -> float:
    """The similarity at which a grounding image counts as the subject: the frontal threshold."""
    family = engine_family(engine_name)
    if family not in IDENTITY_THRESHOLDS:
        raise ValueError(f"no identity threshold for engine {engine_name!r}")
    return IDENTITY_THRESHOLDS[family]["frontal"]


def check_not_subject(item: GroundingImage, image: np.ndarray, engine: FaceEngine, subject: Subject | None,
                      threshold: float | None = None, detect_max_side: int = 1024) -> bool:
    """Record on ``item`` whether ``image`` shows the subject; True when it does NOT (it may be kept)."""
    item.threshold = not_subject_threshold(engine.name) if threshold is None else float(threshold)
    faces = detect_faces(engine, image, detect_max_side)
    item.faces = len(faces)
    if not faces:
        item.status, item.detail = KEPT, f"no face found by {engine.name}: cannot be the subject"
        return True
    if subject is None:
        item.status, item.detail = KEPT, "no portrait face to compare with"
        return True
    item.similarity = max(subject.similarities(faces))
    if item.similarity >= item.threshold:
        item.status = DROPPED
        item.detail = (f"a face scores {item.similarity:.3f} >= {item.threshold:.2f} against the portrait: it looks "
                       "like the subject")
        log.warning("grounding image %s dropped: %s", item.name, item.detail)
        return False
    item.status, item.detail = KEPT, f"most similar face {item.similarity:.3f} < {item.threshold:.2f}"
    return True
