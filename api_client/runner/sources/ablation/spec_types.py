"""The typed ablation spec: what :mod:`.spec` builds from the file and the job expansion reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ....errors import ComfyClientError, OverrideError
from ....loras import LoraEntry
from ....overrides import Override, resolve_node
from ...plan import Prompt


class SpecError(ComfyClientError):
    """The spec file is invalid; the message names the file, the key and what was expected."""

    def __init__(self, file: str | Path, key: str, problem: str):
        self.file = str(file)
        self.key = key
        self.problem = problem
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")


@dataclass(frozen=True)
class InputRef:
    """``<node>.<input>``: a node title (or id) and one of its inputs."""

    node: str
    input: str

    def __str__(self) -> str:
        return f"{self.node}.{self.input}"


@dataclass(frozen=True)
class Param:
    key: str          # "PuLID.weight" as written in the spec
    target: InputRef
    alias: str        # file-name token prefix: w0.4
    values: tuple


@dataclass(frozen=True)
class Sweep:
    name: str
    mode: str
    params: tuple[Param, ...]
    enabled: bool = True


@dataclass(frozen=True)
class Rule:
    only_for: tuple[str, ...]
    otherwise: str                                   # skip | bypass | run
    bypass: Mapping[str, Mapping[int, str]] = field(default_factory=dict)


@dataclass
class Config:
    name: str
    workflow: Path
    graph: dict                                      # the API prompt as loaded
    overrides: tuple[Override, ...] = ()
    rule: Rule | None = None
    sweeps: tuple[Sweep, ...] = ()
    index: int = 0
    loras: tuple[LoraEntry, ...] = ()                # a LoRA stack from the inputs.lora node on


@dataclass
class Spec:
    path: Path
    name: str
    configs: list[Config]
    prompts: list[Prompt]
    seeds: list[int]
    inputs: dict[str, InputRef]
    full_body: tuple[str, ...]
    reference: list[Path]
    description: str = ""
    reference_region: Any = None         # pulid_flux.face.region.FaceRegion of reference[0], or None

    def config(self, name: str) -> Config:
        for config in self.configs:
            if config.name == name:
                return config
        raise KeyError(name)

    @property
    def sweep_names(self) -> list[str]:
        return sorted({s.name for c in self.configs for s in c.sweeps})


def has_node(graph: Mapping, node: str) -> bool:
    try:
        resolve_node(graph, node)
    except OverrideError:
        return False
    return True
