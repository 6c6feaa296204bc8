"""The run's records on disk: ``manifest.jsonl`` (append-only), atomic files, the gallery manifest.

``OUT/manifest.jsonl`` gets one JSON line per finished attempt of a job: ``status`` is ``done``,
``failed`` or ``interrupted``. A line is written with a single ``write`` on a file opened in
append mode and flushed to disk, after the job's image was written atomically (temporary file +
rename), so a killed client leaves at worst a truncated last line, which the reader skips.

A job counts as finished when its last ``done`` line exists AND every file that line lists exists;
anything else (no line, a failed or interrupted line, a deleted image) runs again on resume.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..files import write_json_atomic
from ..plan import GALLERY, GALLERY_MANIFEST, MANIFEST

log = logging.getLogger(__name__)

DONE, FAILED, INTERRUPTED = "done", "failed", "interrupted"


class RunManifest:
    """``OUT/manifest.jsonl``: read it (tolerating a torn last line) and append records."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST

    def records(self) -> list[dict]:
        if not self.path.is_file():
            return []
        records = []
        with open(self.path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                line = raw.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    log.warning("%s line %d is incomplete (a run was killed while writing it); ignored", self.path, number)
                    continue
                if isinstance(record, dict) and record.get("job_id"):
                    records.append(record)
                else:
                    log.warning("%s line %d is not a job record; ignored", self.path, number)
        return records

    def append(self, record: Mapping[str, Any]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps(dict(record), ensure_ascii=False, default=str, sort_keys=False) + "\n"
        with open(self.path, "ab") as fh:
            # A torn last line from a killed run must not swallow this record.
            if fh.tell() > 0 and not _ends_with_newline(self.path):
                fh.write(b"\n")
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())

    def finished(self) -> dict[str, dict]:
        """{job id: its last ``done`` record} for jobs whose files all exist."""
        last_done: dict[str, dict] = {}
        for record in self.records():
            if record.get("status") == DONE:
                last_done[record["job_id"]] = record
        return {job_id: record for job_id, record in last_done.items() if self.files_exist(record)}

    def files_exist(self, record: Mapping[str, Any]) -> bool:
        files = record.get("files") or []
        return bool(files) and all(_nonempty(self.out_dir / f) for f in files)


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def now() -> float:
    return round(time.time(), 3)


def gallery_rows(jobs: Iterable, finished: Mapping[str, Mapping[str, Any]]) -> list[dict]:
    """Rows of ``gallery/manifest.json`` (what the scorer reads) for the finished jobs."""
    rows = []
    for job in jobs:
        record = finished.get(job.job_id)
        if record is None:
            continue
        for index, file in enumerate(record.get("files") or []):
            relative = file.split("/", 1)[1] if file.startswith("gallery/") else file
            rows.append({"file": relative, "prompt": job.prompt.tag, "seed": job.seed, "index": job.prompt.index,
                         "config": job.config, "params": dict(job.params), "job_id": job.job_id,
                         "composition": job.pose, "text": job.prompt.text, "image": index})
    return rows


def write_gallery_manifest(out_dir: str | Path, jobs: Iterable, finished: Mapping[str, Mapping[str, Any]]) -> Path:
    return write_json_atomic(Path(out_dir) / GALLERY / GALLERY_MANIFEST, gallery_rows(jobs, finished))
