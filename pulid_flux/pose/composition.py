"""Pick a pose-bank entry from a prompt's shot words, so one workflow serves mixed prompts.

Rules, in order:
1. An explicit ``tag`` wins: a bank name (built-in or user file) or one of the shot words below.
2. Otherwise the prompt's shot words decide (case-insensitive, whole words; "close-up", "close up"
   and "closeup" are the same). Specific framings (close-up, medium, full body) beat the generic
   "portrait"; among specific ones the first in the prompt wins ("close-up portrait" -> headshot,
   "full body portrait" -> full_body).
3. A raised-arm phrase ("arm raised", "waving", "hand up", ...) turns a full-body (or unframed)
   choice into ``full_body_arm_up``.
4. No shot word at all gives ``default`` ("portrait").
"""

import re

from .bank import BUILTIN_POSES, UnknownPoseError

_SPECIFIC = {
    "headshot": ("headshot", "head shot", "close up", "extreme close up", "face shot", "face close up",
                 "passport photo", "mugshot", "tight shot"),
    "medium": ("medium shot", "medium close up", "mid shot", "midshot", "waist up", "half body",
               "upper body", "cowboy shot", "three quarter shot", "knee up", "thigh up"),
    "full_body": ("full body", "full length", "whole body", "head to toe", "head to toes", "full figure",
                  "wide shot", "long shot", "full shot", "standing figure", "entire body"),
}
_GENERIC = {"portrait": ("portrait", "bust", "head and shoulders", "shoulders up", "chest up", "bust shot")}
_ARM_UP = ("arm raised", "arms raised", "raised arm", "raised hand", "raising arm", "raising her arm",
           "raising his arm", "raising their arm", "raising a hand", "raising her hand", "raising his hand",
           "hand raised", "hand up", "arm up", "arms up", "waving", "waves", "reaching up", "hand in the air",
           "fist in the air", "arm in the air")
DEFAULT_COMPOSITION = "portrait"


def _normalise(text: str) -> str:
    text = text.lower()
    text = re.sub(r"close[\s_-]*up", "close up", text)
    text = re.sub(r"[-_/]", " ", text)
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    return " " + re.sub(r"\s+", " ", text).strip() + " "


def _first_hit(text: str, phrases) -> int | None:
    hits = [text.find(f" {p} ") for p in phrases]
    hits = [h for h in hits if h >= 0]
    return min(hits) if hits else None


def _tag_to_name(tag: str, available) -> str:
    if tag in available:
        return tag
    text = _normalise(tag)
    for name, phrases in {**_SPECIFIC, **_GENERIC}.items():
        if text.strip() == name.replace("_", " ") or _first_hit(text, phrases) is not None:
            return name
    if _first_hit(text, _ARM_UP) is not None:
        return "full_body_arm_up"
    raise UnknownPoseError(f"unknown composition tag {tag!r}: use one of {', '.join(available)} "
                           f"or a shot word such as 'close-up', 'medium shot', 'full body'")


def choose_composition(prompt: str, tag: str | None = None, *, available=BUILTIN_POSES,
                       default: str = DEFAULT_COMPOSITION) -> str:
    """The pose-bank entry for ``prompt`` (see the module docstring for the rules)."""
    available = list(available)
    if tag is not None and tag.strip():
        return _tag_to_name(tag.strip(), available)
    text = _normalise(prompt or "")
    specific = {name: _first_hit(text, phrases) for name, phrases in _SPECIFIC.items()}
    specific = {k: v for k, v in specific.items() if v is not None}
    if specific:
        name = min(specific, key=specific.get)
    elif _first_hit(text, _GENERIC["portrait"]) is not None:
        name = "portrait"
    else:
        name = None
    if _first_hit(text, _ARM_UP) is not None and name in (None, "full_body"):
        name = "full_body_arm_up"
    name = name or default
    if name not in available:
        raise UnknownPoseError(f"composition {name!r} is not among the available poses {', '.join(available)}")
    return name
