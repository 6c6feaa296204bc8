"""Prompt tag and seed of a gallery image: from its file name, or from a manifest.

File names: ``<NN>_<tag>[_<params>].<ext>``, e.g. ``03_beach.png``, ``03_red_dress_seed42.png``,
``03_red_dress_s42_cfg3.5.png``.

* ``NN``: the prompt's number (orders the grid rows).
* ``tag``: the underscore-joined tokens after ``NN`` up to the first parameter token (the first
  token after ``NN`` always belongs to the tag).
* parameters: tokens of the form ``<letters><number>`` (``seed42``, ``s42``, ``cfg3.5``, ``w0.9``,
  ``seed-42``, ``seed=42``) or a bare number. The seed is the ``seed<N>``/``s<N>`` token, or else the
  first bare integer.

A name that does not follow this layout gets its whole stem as the tag and no seed, with a warning.

Manifest (``manifest.json`` or ``manifest.csv`` in the gallery folder, or passed explicitly): rows
with ``file`` (relative to the gallery folder, e.g. ``cfg_a/01_beach.png``, or a bare file name)
and any of ``prompt`` (or ``tag``), ``seed``, ``index``. JSON may be a list of such objects, an
object ``{"images": [...]}``, or an object mapping file -> {prompt, seed, index}. Manifest values
win over the file name.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST_NAMES = ("manifest.json", "manifest.csv")
_NAME = re.compile(r"^(\d+)_(.+)$")
_PARAM = re.compile(r"^(?:[A-Za-z]+[-=]?)?-?\d+(?:\.\d+)?$")
_SEED = re.compile(r"^(?:seed|s)[-=]?(\d+)$", re.IGNORECASE)
_INT = re.compile(r"^\d+$")


@dataclass(frozen=True)
class ImageMeta:
    prompt: str
    seed: int | None = None
    index: int | None = None
    params: tuple[str, ...] = ()


def parse_gallery_name(filename, *, warn: bool = True) -> ImageMeta:
    """Prompt tag, seed and prompt number from a ``<NN>_<tag>[_<params>]`` file name."""
    stem = Path(str(filename)).stem
    match = _NAME.match(stem)
    tokens = match.group(2).split("_") if match else []
    if not match or not tokens[0]:
        if warn:
            log.warning("%s: not a <NN>_<tag>[_<params>] gallery name; its prompt tag is the whole name",
                        filename)
        return ImageMeta(prompt=stem)
    tag = [tokens[0]]
    rest = tokens[1:]
    while rest and not _PARAM.match(rest[0]):
        tag.append(rest.pop(0))
    seed = next((int(m.group(1)) for m in map(_SEED.match, rest) if m), None)
    if seed is None:
        seed = next((int(t) for t in rest if _INT.match(t)), None)
    return ImageMeta(prompt="_".join(tag), seed=seed, index=int(match.group(1)), params=tuple(rest))


def _int_or_none(value, where: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected an integer, got {value!r}") from None


def read_manifest(path) -> dict[str, dict]:
    """{file as written in the manifest: {"prompt", "seed", "index"} (present keys only)}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            records = list(csv.DictReader(fh))
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if isinstance(data, dict) and "images" in data:
            data = data["images"]
        if isinstance(data, dict):
            records = [{"file": k, **(v if isinstance(v, dict) else {"prompt": v})} for k, v in data.items()]
        elif isinstance(data, list):
            records = data
        else:
            raise ValueError(f"{path}: a manifest is a list of {{file, prompt, seed}} objects")
    else:
        raise ValueError(f"{path}: a manifest is a .json or .csv file")
    result = {}
    for i, record in enumerate(records):
        where = f"{path} entry {i + 1}"
        if not isinstance(record, dict):
            # A malformed file is bad input (ValueError), not a programming error (TypeError).
            raise ValueError(f"{where}: expected an object with file, prompt, seed")  # noqa: TRY004
        file = record.get("file") or record.get("path") or record.get("image")
        if not file:
            raise ValueError(f"{where}: has no 'file'")
        meta = {}
        prompt = record.get("prompt", record.get("tag", record.get("prompt_tag")))
        if prompt not in (None, ""):
            meta["prompt"] = str(prompt)
        for key in ("seed", "index"):
            value = _int_or_none(record.get(key), f"{where} {key}")
            if value is not None:
                meta[key] = value
        result[Path(str(file)).as_posix()] = meta
    return result


def find_manifest(folder) -> Path | None:
    for name in MANIFEST_NAMES:
        candidate = Path(folder) / name
        if candidate.is_file():
            return candidate
    return None


def image_meta(relative: str, manifest: dict[str, dict] | None = None) -> ImageMeta:
    """Metadata of the gallery image at ``relative`` (``<config>/<file>``): manifest entry over name."""
    entry = None
    if manifest:
        entry = manifest.get(Path(relative).as_posix())
        if entry is None:
            entry = manifest.get(Path(relative).name)
    parsed = parse_gallery_name(relative, warn=not (entry and "prompt" in entry))
    if not entry:
        return parsed
    return ImageMeta(prompt=entry.get("prompt", parsed.prompt), seed=entry.get("seed", parsed.seed),
                     index=entry.get("index", parsed.index), params=parsed.params)
