"""The typed run plan: what a plan source builds and the execution engine runs.

A *plan source* (:mod:`.sources`) turns its input (today the ablation spec) into a :class:`RunPlan`:
the :class:`Job` list (one image each, with its final API prompt), the reference photo to upload,
and the :class:`RunInfo` that ``OUT/run.json`` records for the report. The execution engine
(:mod:`.execution`) and the report writers (:mod:`.reporting`) read only these types, never a
source's own format.

The output folder's layout is fixed here too: ``gallery/<config>/<name>.png``, ``manifest.jsonl``
(one line per finished attempt), ``gallery/manifest.json`` (what the scorer reads) and ``run.json``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

GALLERY = "gallery"
MANIFEST = "manifest.jsonl"
GALLERY_MANIFEST = "manifest.json"
RUN_INFO = "run.json"
REFERENCE_DIR = "reference"
# The reference goes to the input folder's top level: LoadImage's choices list only those files.
UPLOAD_SUBFOLDER = ""


@dataclass(frozen=True)
class Prompt:
    index: int          # 1-based position in the source: the NN of the file names
    tag: str
    text: str
    composition: str | None = None


@dataclass(frozen=True)
class Job:
    """One image: a config (a gallery column) x prompt x seed x parameter setting."""

    job_id: str
    config: str
    prompt: Prompt
    seed: int
    params: tuple[tuple[str, Any], ...]     # (parameter key, value) of the swept parameters
    pose: str                               # the prompt's pose-bank entry
    full_body: bool
    rule: str                               # how a per-prompt rule changed the job: "as-is", "bypass", "run"
    graph: dict = field(compare=False, repr=False)
    save_node: str | None = None
    file: str = ""                          # relative to the output folder: gallery/<config>/<name>.png
    block: int = 0                          # jobs of one block share a prompt (scheduling affinity)
    order: int = 0
    config_rank: int = 0

    @property
    def name(self) -> str:
        return self.file.rsplit("/", 1)[-1]

    @property
    def label(self) -> str:
        return f"{self.config}/{self.name}"

    def describe(self) -> dict:
        """The job's fields as written to the run manifest."""
        return {"job_id": self.job_id, "config": self.config, "index": self.prompt.index, "tag": self.prompt.tag,
                "prompt": self.prompt.text, "composition": self.pose, "full_body": self.full_body,
                "rule": self.rule, "seed": self.seed, "params": dict(self.params), "file": self.file,
                "text_nodes": self.text_nodes}

    @property
    def text_nodes(self) -> list[str]:
        """Ids of the graph's text-encode nodes (to count how often the prompt was encoded)."""
        return [n for n, node in self.graph.items() if "TextEncode" in str(node.get("class_type", ""))]


def canonical_graph(graph: Mapping[str, Any], save_node: str | None) -> dict:
    """The graph as hashed: no titles, no output prefix (neither changes the image)."""
    result = {}
    for node_id, node in graph.items():
        inputs = dict(node.get("inputs") or {})
        if node_id == save_node:
            inputs.pop("filename_prefix", None)
        result[str(node_id)] = {"class_type": node["class_type"], "inputs": inputs}
    return result


def job_id_for(config: str, prompt: Prompt, seed: int, params: Sequence[tuple[str, Any]], graph: Mapping,
               save_node: str | None) -> str:
    """Hashes everything that decides the image, so a re-run finds its finished jobs again and any
    change to a workflow, override or prompt makes new jobs."""
    payload = {"config": config, "prompt": [prompt.index, prompt.tag, prompt.text], "seed": seed,
               "params": [[k, v] for k, v in params], "graph": canonical_graph(graph, save_node)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Reference:
    """The person's photo(s): all of them for scoring, the first uploaded for the workflows."""

    files: tuple[Path, ...] = ()
    data: bytes | None = None         # the image the workflows get
    upload_name: str | None = None    # content-addressed name on the servers
    tiny: bool = False
    region: Mapping[str, Any] | None = None   # the first photo's face region (docs/face_region.md), JSON form
    region_value: str | None = None   # that region as Encode identity's face_region value (with the photo's hash)

    @property
    def image_value(self) -> str | None:
        if not self.upload_name:
            return None
        return f"{UPLOAD_SUBFOLDER}/{self.upload_name}" if UPLOAD_SUBFOLDER else self.upload_name


@dataclass(frozen=True)
class RunInfo:
    """What ``OUT/run.json`` records: enough for ``report OUT`` to score the folder again later."""

    source: str                       # the plan source that built the run ("ablation")
    spec: str                         # the source's input file, absolute
    spec_name: str
    tiny: bool = False
    tiny_models: str | None = None
    reference: tuple[str, ...] = ()
    reference_region: Mapping[str, Any] | None = None   # the face region of reference[0], when one was given
    launch: str | None = None
    selection: Mapping[str, Any] = field(default_factory=dict)   # the command line's choices, as given
    configs: tuple[str, ...] = ()     # gallery columns, in report order
    rules: tuple[str, ...] = ()       # notes for the report (per-prompt rules and what they did)
    engines: tuple[str, ...] = ()     # scoring engines asked for on the command line
    details: Mapping[str, Any] = field(default_factory=dict)   # what the source's own report reads (the sweep's)

    def to_json(self) -> dict:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunInfo:
        """Read ``run.json`` (files of earlier versions have no ``source``: they were ablation runs)."""
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        values.setdefault("source", "ablation")
        values.setdefault("spec", "?")
        values.setdefault("spec_name", "?")
        return cls(**values)


@dataclass(frozen=True)
class RunPlan:
    out: Path
    jobs: tuple[Job, ...]             # what this command runs
    all_jobs: tuple[Job, ...]         # everything the gallery may hold (the selection without its limits)
    reference: Reference
    info: RunInfo
    #: model folders a launched server also lists, in place ({"loras": (checkpoint folder,)})
    model_paths: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)

    @property
    def tiny(self) -> bool:
        return self.info.tiny

    @property
    def tiny_models(self) -> Path | None:
        """Where --tiny builds its models (None: not a tiny run)."""
        return Path(self.info.tiny_models) if self.info.tiny and self.info.tiny_models else None
