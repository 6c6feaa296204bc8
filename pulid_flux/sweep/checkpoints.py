"""The LoRA checkpoints a trainer saved in one folder, in training-step order.

ostris/ai-toolkit saves ``<name>_<step zero-padded to 9 digits>.safetensors`` every ``save_every``
steps and, at the end, ``<name>.safetensors`` without a step in its name. Its metadata holds
``training_info`` = ``{"step": N}`` (a JSON string), which gives the final file its step; kohya's
``ss_steps`` is read as well. A final file without either is labelled ``final`` and ordered last.

``step_pattern`` reads other trainers' names: a regular expression matched against the whole file
name, with a named group ``step`` (digits) and optionally ``name`` (the training's name, which lets
``<name>.safetensors`` be found as its final file), e.g. ``(?P<name>.+)-step(?P<step>\\d+)\\.safetensors``.

Stdlib only (the safetensors header is JSON): the torch-free client discovers checkpoints too.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

EXTENSION = ".safetensors"
AITOOLKIT_PATTERN = r"(?P<name>.+)_(?P<step>\d+)\.safetensors"
FINAL_LABEL = "final"
# A safetensors header larger than this is not a LoRA's (guards against reading a huge bogus length).
_MAX_HEADER = 100 * 2 ** 20


class CheckpointError(ValueError):
    """The checkpoint folder or the step pattern cannot give an ordered list of checkpoints."""


@dataclass(frozen=True)
class Checkpoint:
    file: str                 # file name inside the folder (what the LoRA loader is given)
    path: Path
    step: int | None          # None: a final file whose metadata names no step
    final: bool = False       # the trainer's final file (<name>.safetensors)
    step_source: str = "name"  # "name", "metadata" or "none"

    @property
    def label(self) -> str:
        """The step as shown on strips, curves and tables ("final" when unknown)."""
        if self.step is None:
            return FINAL_LABEL
        return f"{self.step} (final)" if self.final else str(self.step)

    @property
    def tag(self) -> str:
        """Folder-safe name of this checkpoint (the file name without its extension)."""
        return self.file[: -len(EXTENSION)] if self.file.endswith(EXTENSION) else Path(self.file).stem

    @property
    def sort_key(self) -> tuple:
        return (self.step is None, self.step if self.step is not None else 0, self.final, self.file)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file ({} when it has none or is not readable)."""
    try:
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) != 8:
                return {}
            (length,) = struct.unpack("<Q", prefix)
            if length > _MAX_HEADER:
                return {}
            header = json.loads(fh.read(length))
    except (OSError, ValueError):
        return {}
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}


def step_from_metadata(metadata: dict[str, str]) -> int | None:
    """ai-toolkit's ``training_info.step``, else kohya's ``ss_steps``; None when neither is a number."""
    info = metadata.get("training_info")
    if info:
        try:
            step = json.loads(info).get("step")
        except (ValueError, AttributeError):
            step = None
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
            return step
    steps = metadata.get("ss_steps", "")
    return int(steps) if steps.isdigit() else None


def compile_step_pattern(pattern: str | None) -> re.Pattern:
    """The regular expression for step files; CheckpointError when it is invalid or lacks ``step``."""
    text = AITOOLKIT_PATTERN if pattern is None else pattern
    try:
        compiled = re.compile(text)
    except re.error as exc:
        raise CheckpointError(f"--step-pattern {text!r} is not a valid regular expression ({exc})") from None
    if "step" not in compiled.groupindex:
        raise CheckpointError(f"--step-pattern {text!r} has no named group 'step'; write it like "
                              r"'(?P<name>.+)-(?P<step>\d+)\.safetensors'")
    return compiled


def discover_checkpoints(folder: str | Path, *, step_pattern: str | None = None,
                         name: str | None = None) -> list[Checkpoint]:
    """The checkpoints in ``folder`` in step order (see the module docstring).

    ``name`` picks one training when the folder holds several (their step files differ in name).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist or is not a folder")
    pattern = compile_step_pattern(step_pattern)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(EXTENSION))
    if not files:
        raise CheckpointError(f"{folder} holds no {EXTENSION} file; expected the trainer's checkpoints "
                              f"(ai-toolkit: <name>_000000250.safetensors, ..., <name>.safetensors)")
    stepped: dict[str, list[tuple[Path, int]]] = {}
    for path in files:
        match = pattern.fullmatch(path.name)
        if match:
            stepped.setdefault(match.groupdict().get("name") or "", []).append((path, int(match.group("step"))))
    names = sorted(stepped)
    if name is not None:
        if name not in stepped and not (folder / f"{name}{EXTENSION}").is_file():
            raise CheckpointError(f"{folder} has no checkpoint of a training named {name!r}; it has "
                                  f"{', '.join(repr(n) for n in names) or 'no step files'}")
        names = [name]
    elif len(names) > 1:
        raise CheckpointError(f"{folder} holds the checkpoints of {len(names)} trainings "
                              f"({', '.join(repr(n) for n in names)}); choose one with --name")
    checkpoints = [Checkpoint(file=p.name, path=p, step=step) for n in names for p, step in stepped.get(n, [])]
    used = {c.path for c in checkpoints}
    final = _final_file(folder, names[0] if names else None, files, used)
    if final is not None:
        checkpoints.append(final)
    if not checkpoints:
        raise CheckpointError(f"no file in {folder} matches the step pattern {pattern.pattern!r} "
                              f"(files: {', '.join(p.name for p in files[:8])}); pass --step-pattern")
    ignored = [p.name for p in files if p not in {c.path for c in checkpoints}]
    if ignored:
        log.info("%s: not checkpoints of this training, ignored: %s", folder, ", ".join(ignored))
    checkpoints.sort(key=lambda c: c.sort_key)
    _warn_duplicate_steps(checkpoints)
    return checkpoints


def _final_file(folder: Path, name: str | None, files: list[Path], used: set[Path]) -> Checkpoint | None:
    if name:
        path = folder / f"{name}{EXTENSION}"
        if not path.is_file():
            return None
    else:
        # No step file names the training: a lone file is the final one (a single checkpoint).
        rest = [p for p in files if p not in used]
        if used or len(rest) != 1:
            return None
        path = rest[0]
    step = step_from_metadata(read_metadata(path))
    return Checkpoint(file=path.name, path=path, step=step, final=True,
                      step_source="metadata" if step is not None else "none")


def _warn_duplicate_steps(checkpoints: list[Checkpoint]) -> None:
    seen: dict[int, str] = {}
    for c in checkpoints:
        if c.step is None:
            continue
        if c.step in seen:
            log.warning("%s and %s are both step %d (the final save repeats the last one); both are swept",
                        seen[c.step], c.file, c.step)
        seen.setdefault(c.step, c.file)
