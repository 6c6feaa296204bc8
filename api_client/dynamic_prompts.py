"""The frontend's dynamic prompts: ``//`` and ``/* */`` comments removed, ``{a|b|c}`` resolved.

Applied to STRING widgets whose input declares ``dynamicPrompts: true`` (CLIPTextEncode's text,
for one) when a workflow is converted, exactly like ComfyUI frontend's ``processDynamicPrompt``.
"""

from __future__ import annotations

import random
import re
from typing import Any


def process_dynamic_prompt(text: str, rng: Any = None) -> str:
    """The frontend's ``processDynamicPrompt``: strip ``//`` and ``/* */`` comments, pick ``{a|b}``.

    Exactly like the frontend, ``//`` starts a comment anywhere (also inside ``http://``).
    """
    rng = rng if rng is not None else random.Random()
    text = re.sub(r"/\*[\s\S]*?\*/|//.*", "", text)
    return _expand_choices(text, rng)


def _expand_choices(text: str, rng: Any) -> str:
    pos = 0
    out: list[str] = []

    def choice_block() -> str:
        nonlocal pos
        options: list[str] = []
        current = ""
        depth = 0
        while pos < len(text):
            char = text[pos]
            pos += 1
            if char == "\\":
                current += "\\" + (text[pos] if pos < len(text) else "")
                pos += 1
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                if not depth:
                    break
                depth -= 1
            elif char == "|" and not depth:
                options.append(current)
                current = ""
                continue
            current += char
        options.append(current)
        return process_dynamic_prompt(options[int(rng.random() * len(options))], rng)

    while pos < len(text):
        char = text[pos]
        pos += 1
        if char == "\\":
            out.append("\\" + (text[pos] if pos < len(text) else ""))
            pos += 1
        elif char == "{":
            out.append(choice_block())
        else:
            out.append(char)
    return re.sub(r"\\([{}|])", r"\1", "".join(out))
