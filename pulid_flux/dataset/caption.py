"""Captions: ``<trigger>, <shot type>[, <user text>]``, trigger first.

ai-toolkit prepends the trigger itself when a caption lacks it; writing it first keeps it in place
when ``keep_tokens`` / ``shuffle_tokens`` are used (tokens are split on commas).
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


def build_caption(trigger: str, shot: str, text: str = "") -> str:
    parts = [check_trigger(trigger), shot]
    extra = " ".join(str(text or "").split()).strip(" ,")
    if extra:
        parts.append(extra)
    return ", ".join(parts)
