"""Captions, trigger first.

ai-toolkit prepends the trigger itself when a caption lacks it; writing it first keeps it in place
when ``keep_tokens`` / ``shuffle_tokens`` are used (tokens are split on commas).

``build_caption`` gives the short form ``<trigger>, <shot type>[, <user text>]``; the dataset
preparation writes the geometric caption of :mod:`.scene` (position in the frame, other people,
head angle, framing), which a VLM may replace (:mod:`.vlm`).
"""

from __future__ import annotations


def check_trigger(trigger: str) -> str:
    trigger = " ".join(str(trigger).split())
    if not trigger:
        raise ValueError("the trigger word is empty; give the word(s) the LoRA learns the subject as, e.g. 'ohwx man'")
    if "," in trigger:
        raise ValueError(f"the trigger {trigger!r} contains a comma; ai-toolkit splits captions on commas, so "
                         "the trigger would be cut in two")
    return trigger


def clean_text(text: str) -> str:
    """User text as a caption part: whitespace collapsed, stray commas at the ends removed."""
    return " ".join(str(text or "").split()).strip(" ,")


def build_caption(trigger: str, shot: str, text: str = "") -> str:
    parts = [check_trigger(trigger), shot]
    extra = clean_text(text)
    if extra:
        parts.append(extra)
    return ", ".join(parts)
