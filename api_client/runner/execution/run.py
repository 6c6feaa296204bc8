"""Running a plan: resume from the manifest, keep the gallery clean, record the run, then the jobs.

The caller holds :func:`.lock.exclusive` on the output folder. Nothing here knows which plan source
built the plan: it sees jobs, a reference and the :class:`~..plan.RunInfo` to record.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import RunnerError
from ..files import write_json_atomic
from ..plan import GALLERY, GALLERY_MANIFEST, RUN_INFO, Job, RunInfo, RunPlan
from .manifest import RunManifest, write_gallery_manifest
from .servers import ServerOptions, run_jobs

log = logging.getLogger("api_client.runner")


@dataclass(frozen=True)
class RunResult:
    finished: dict                       # {job id: its done record}, every job of the folder
    missing: tuple[Job, ...]             # jobs of the plan not done (failed, interrupted, not run)
    interrupted: bool


def finished_jobs(out: Path) -> dict[str, dict]:
    """{job id: done record} of the jobs finished in ``out`` (nothing when it holds no run)."""
    manifest = RunManifest(out)
    return manifest.finished() if manifest.path.is_file() else {}


def run_plan(plan: RunPlan, servers: ServerOptions) -> RunResult:
    manifest = RunManifest(plan.out)
    finished = manifest.finished()
    todo = [j for j in plan.jobs if j.job_id not in finished]
    log.info("%d job(s) in %s: %d already done, %d to run", len(plan.jobs), plan.info.spec,
             len(plan.jobs) - len(todo), len(todo))
    move_strays(plan)
    write_json_atomic(plan.out / RUN_INFO, plan.info.to_json())
    interrupted = False
    try:
        if todo:
            interrupted = run_jobs(plan, manifest, todo, servers)
    finally:
        finished = manifest.finished()
        write_gallery_manifest(plan.out, plan.all_jobs, finished)
    return RunResult(finished, tuple(j for j in plan.jobs if j.job_id not in finished), interrupted)


def move_strays(plan: RunPlan) -> None:
    """Images in the gallery that no job of this plan produces (an older spec's) would skew the
    scores: they are moved to OUT/stale/."""
    gallery = plan.out / GALLERY
    if not gallery.is_dir():
        return
    known = {j.file for j in plan.all_jobs}
    known_stems = {f[:-len(".png")] for f in known}
    moved = 0
    for path in gallery.glob("*/*"):
        relative = path.relative_to(plan.out).as_posix()
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            path.unlink()  # a half-written image of a killed run (never renamed into place)
            continue
        if path.name.startswith(".") or not path.is_file() or relative in known or path.name == GALLERY_MANIFEST:
            continue
        if relative.rsplit("_i", 1)[0] in known_stems:
            continue  # extra image of a batch
        target = plan.out / "stale" / path.relative_to(gallery)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
        moved += 1
    if moved:
        log.warning("moved %d image(s) that this plan does not produce to %s", moved, plan.out / "stale")


def read_run_info(out: Path) -> RunInfo:
    """``OUT/run.json``, as the run that made ``out`` recorded it."""
    try:
        return RunInfo.from_json(json.loads((out / RUN_INFO).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise RunnerError(f"{out / RUN_INFO} is missing or unreadable ({exc}); is {out} the --out of a run?") from None


def gallery_records(out: Path) -> list[dict]:
    """The done records of the images ``gallery/manifest.json`` lists (what ``report`` scores again)."""
    path = out / GALLERY / GALLERY_MANIFEST
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunnerError(f"{path} is missing or unreadable ({exc})") from None
    finished = RunManifest(out).finished()
    return [finished[r["job_id"]] for r in rows if r.get("job_id") in finished]
