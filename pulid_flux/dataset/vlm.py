"""Optional captions from a vision-language model behind any OpenAI-compatible chat endpoint.

``VLMClient(url, model)`` posts one chat completion per image: the rules, the geometric facts the
caption must agree with, the subject's reference image and the training image (both as base64 data
URLs). The key comes from ``$PULID_STUDIO_VLM_KEY`` (sent as a bearer token when set). Standard
library only: no SDK to install, and the same code talks to OpenAI, vLLM, llama.cpp's server,
Ollama's ``/v1`` or LM Studio.

The answer is checked before it is used (:func:`check_vlm_caption`): it must start with the trigger
and the first position it states for the subject (on the left / in the center / on the right) must
be the measured one. A caption that fails is replaced by the geometric caption with a warning; an
endpoint that cannot be reached, or refuses the request, is an error (:class:`VLMError`) that stops
the run with one message, since every other image would fail the same way.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np

from ..errors import PulidError
from .scene import POSITION_PHRASES, SceneFacts, angle_phrase, geometric_caption, others_phrase

log = logging.getLogger(__name__)

KEY_ENV = "PULID_STUDIO_VLM_KEY"
#: images are sent with their long side at most this (enough to read a scene, small to upload)
SEND_MAX_SIDE = 768

_POSITION_PATTERNS = (
    ("left", r"\b(?:on|at|to|in) the (?:far |upper |lower )?left\b|\bleft(?:-hand)? side\b"),
    ("right", r"\b(?:on|at|to|in) the (?:far |upper |lower )?right\b|\bright(?:-hand)? side\b"),
    ("center", r"\bin the (?:center|centre|middle)\b|\bcent(?:er|re)d\b|\bat the (?:center|centre)\b"),
)

SYSTEM_PROMPT = (
    "You write training captions for an identity LoRA. The first image shows the subject; the second "
    "image is the training image to caption. Rules: answer with the caption only, one line, "
    "comma-separated phrases; start with the trigger exactly as given; then say where the subject is in "
    "the frame as seen in the image, with exactly one of: 'on the left', 'in the center', 'on the right'; "
    "then mention every other person (how many, where); then the head angle, the framing, the pose, the "
    "setting, the clothing and the lighting. Describe the subject only through the trigger: no name, no "
    "facial features, no age, no ethnicity."
)


class VLMError(PulidError):
    """The VLM endpoint cannot be used (unreachable, refused the request, not a chat endpoint)."""


@dataclass
class CaptionResult:
    text: str
    source: str                        # "geometric" or "vlm"
    warning: str | None = None         # why a VLM caption was replaced
    vlm_answer: str | None = None      # the VLM's own text, when one was asked

    def to_dict(self) -> dict:
        return {"caption": self.text, "source": self.source, "warning": self.warning, "vlm_answer": self.vlm_answer}


def chat_url(url: str) -> str:
    """The chat-completions URL of an OpenAI-compatible base URL (``http://host:port``, ``.../v1`` or
    the full ``.../chat/completions``)."""
    url = str(url).strip().rstrip("/")
    if not re.match(r"^https?://", url):
        raise VLMError(f"--vlm-url must be an http(s) URL, got {url!r}")
    if url.endswith("/chat/completions"):
        return url
    if re.search(r"/v\d+$", url):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


def image_data_url(image: np.ndarray, max_side: int = SEND_MAX_SIDE) -> str:
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image))
    if max(picture.size) > max_side:
        scale = max_side / max(picture.size)
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                 Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def stated_position(caption: str) -> str | None:
    """The first subject position a caption states ('left' / 'center' / 'right'), or None."""
    text = caption.lower()
    hits = []
    for name, pattern in _POSITION_PATTERNS:
        match = re.search(pattern, text)
        if match:
            hits.append((match.start(), name))
    return min(hits)[1] if hits else None


def normalize_answer(text: str) -> str:
    """The caption line of a model's answer: first non-empty line, quotes and a final period removed."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    line = lines[0] if lines else ""
    line = re.sub(r"^(?:caption\s*:\s*)", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("\"'`").strip().rstrip(".").strip("\"'`")
    return " ".join(line.split())


def check_vlm_caption(caption: str, trigger: str, facts: SceneFacts) -> str | None:
    """Why ``caption`` cannot be used (None when it can): see the module docstring."""
    if not caption:
        return "the answer is empty"
    if not (caption == trigger or caption.startswith(trigger + ",") or caption.startswith(trigger + " ")):
        return f"it does not start with the trigger {trigger!r}"
    position = stated_position(caption[len(trigger):])
    if position is None:
        return f"it does not say where the subject is (expected {POSITION_PHRASES[facts.position]!r})"
    if position != facts.position:
        return (f"it puts the subject {POSITION_PHRASES[position]}, but the face is "
                f"{POSITION_PHRASES[facts.position]}")
    return None


class VLMClient:
    """One OpenAI-compatible chat endpoint and model (see the module docstring)."""

    def __init__(self, url: str, model: str, *, api_key: str | None = None, timeout: float = 120.0,
                 max_tokens: int = 160):
        if not model:
            raise VLMError("--vlm-model is required with --vlm-url (the model name the endpoint serves)")
        self.url = chat_url(url)
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get(KEY_ENV) or None
        self.timeout = timeout
        self.max_tokens = max_tokens

    def _messages(self, trigger: str, facts: SceneFacts, image: np.ndarray, reference: np.ndarray | None) -> list:
        facts_text = [f"Trigger: {trigger}",
                      f"Measured: the subject's face is {POSITION_PHRASES[facts.position]} of the frame"]
        if facts.others:
            facts_text.append(f"Other people: {others_phrase(facts.others).removeprefix('with ')}")
        else:
            facts_text.append("Other people: none")
        if facts.yaw is not None:
            facts_text.append(f"Head angle: {angle_phrase(facts.yaw, facts.pitch)}")
        if facts.framing:
            facts_text.append(f"Framing: {facts.framing}")
        content = [{"type": "text", "text": "\n".join(facts_text)}]
        if reference is not None:
            content.append({"type": "image_url", "image_url": {"url": image_data_url(reference)}})
        content.append({"type": "image_url", "image_url": {"url": image_data_url(image)}})
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]

    def ask(self, trigger: str, facts: SceneFacts, image: np.ndarray, reference: np.ndarray | None = None) -> str:
        """The model's raw answer text; VLMError when the endpoint cannot be used."""
        body = json.dumps({"model": self.model, "messages": self._messages(trigger, facts, image, reference),
                           "max_tokens": self.max_tokens, "temperature": 0.2}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(400).decode("utf-8", "replace").strip()
            raise VLMError(f"the VLM endpoint {self.url} refused the request: HTTP {exc.code} {exc.reason}"
                           + (f" ({detail})" if detail else "")
                           + ("; is the key in $" + KEY_ENV + " right?" if exc.code in (401, 403) else "")) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise VLMError(f"cannot reach the VLM endpoint {self.url}: {reason}. Check --vlm-url "
                           "(an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1)") from None
        try:
            answer = json.loads(payload)
            return str(answer["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError):
            raise VLMError(f"{self.url} did not answer like an OpenAI chat-completions endpoint "
                           f"(got {payload[:200]!r})") from None


def caption_image(trigger: str, facts: SceneFacts, text: str = "", *, image: np.ndarray | None = None,
                  vlm: VLMClient | None = None, reference: np.ndarray | None = None,
                  name: str = "image") -> CaptionResult:
    """The geometric caption, or the VLM's when one is given and its answer passes the checks."""
    geometric = geometric_caption(trigger, facts, text)
    if vlm is None:
        return CaptionResult(geometric, "geometric")
    if image is None:
        raise ValueError("a VLM caption needs the image")
    answer = vlm.ask(trigger, facts, image, reference)
    caption = normalize_answer(answer)
    problem = check_vlm_caption(caption, trigger, facts)
    if problem is None:
        return CaptionResult(caption, "vlm", vlm_answer=answer)
    warning = f"{name}: the VLM caption was replaced by the geometric one: {problem} (answer: {answer[:160]!r})"
    log.warning("%s", warning)
    return CaptionResult(geometric, "geometric", warning=warning, vlm_answer=answer)
