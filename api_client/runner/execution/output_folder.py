"""An error before any job ran leaves no half-created ``--out`` behind.

A folder the command itself created is removed again when the command fails before the manifest
holds a single record (no server, a ComfyUI that does not start, a preflight failure, Ctrl-C while
launching). A launched ComfyUI's log is kept in the temp folder and named, since it usually tells
why. A folder that existed before, or that holds results, is never touched.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from pathlib import Path

from .manifest import RunManifest

log = logging.getLogger("api_client.runner")

LOGS = "logs"


@contextlib.contextmanager
def discard_if_nothing_done(out: Path):
    existed = out.exists()
    try:
        yield
    except BaseException as exc:
        if not existed and out.is_dir() and not _holds_results(out):
            moved = _discard(out)
            if getattr(exc, "log_path", None) is not None:     # ComfyStartError names its log
                exc.log_path = moved.get(Path(exc.log_path), exc.log_path)
        raise


def _holds_results(out: Path) -> bool:
    manifest = RunManifest(out).path
    return manifest.is_file() and manifest.stat().st_size > 0


def _discard(out: Path) -> dict[Path, Path]:
    """Remove ``out``; returns {old: new} of the ComfyUI logs moved to the temp folder first."""
    moved = {}
    for path in sorted((out / LOGS).glob("*.log")) if (out / LOGS).is_dir() else []:
        kept = Path(tempfile.gettempdir()) / "pulid-studio-logs" / path.name
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(kept))
        moved[path] = kept
        log.warning("no job ran, so %s is removed again; ComfyUI's log of this run is kept as %s", out, kept)
    shutil.rmtree(out, ignore_errors=True)
    return moved
