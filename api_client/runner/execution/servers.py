"""The servers of a run: a launched local ComfyUI and/or the given URLs, each checked and given the
reference before the scheduler spreads the jobs over them."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import ComfyConnectionError, ComfyHTTPError
from ...progress import Display
from ...transport import DEFAULT_CONNECT_TIMEOUT
from ..errors import RunnerError
from ..plan import UPLOAD_SUBFOLDER, Job, RunPlan
from .manifest import RunManifest

log = logging.getLogger("api_client.runner")


@dataclass(frozen=True)
class ServerOptions:
    urls: tuple[str, ...] = ()             # --server, in order
    launch: Path | None = None             # --launch COMFYUI_PATH: a local server for the run
    depth: int = 2                         # prompts kept queued per server
    quiet: bool = False                    # no progress lines
    lora_dirs: tuple[Path, ...] = ()       # --lora-dir: LoRA folders a launched server also lists
    title: str = "jobs"                    # the progress display's name for the run (the command)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT   # --connect-timeout: seconds to wait for a connection


def launch_model_paths(plan: RunPlan, options: ServerOptions) -> dict[str, list[Path]]:
    """The plan's extra model folders plus ``--lora-dir``, for the launched server's yaml."""
    paths = {folder: list(dirs) for folder, dirs in plan.model_paths.items()}
    for folder in options.lora_dirs:
        if folder not in paths.setdefault("loras", []):
            paths["loras"].append(folder)
    return {k: v for k, v in paths.items() if v}


def check_server_options(options: ServerOptions) -> None:
    """Fail on a missing or wrong server option before anything is started."""
    if not options.urls and not options.launch:
        raise RunnerError("no server: pass --server URL (repeatable) or --launch COMFYUI_PATH")
    if options.launch and not (Path(options.launch) / "main.py").is_file():
        raise RunnerError(f"--launch {options.launch}: not a ComfyUI folder (no main.py in it); pass the folder "
                          "holding ComfyUI's main.py, e.g. ~/ComfyUI or ComfyUI_windows_portable/ComfyUI")


def run_jobs(plan: RunPlan, manifest: RunManifest, todo: Sequence[Job], options: ServerOptions,
             display: Display | None = None) -> bool:
    """Run ``todo`` on the servers; True when the user interrupted it. ``display`` shows the
    progress (default: log lines)."""
    from .comfy_backend import ComfyBackend
    from .results import ResultWriter
    from .scheduler import Scheduler, ServerGone

    urls = list(options.urls)
    check_server_options(options)
    with contextlib.ExitStack() as stack:
        if options.launch:
            server = launch_local(plan, options.launch, launch_model_paths(plan, options))
            stack.callback(server.stop)
            urls.insert(0, server.url)
        backends, gone = [], []
        for url in urls:
            backend = ComfyBackend(url, connect_timeout=options.connect_timeout)
            try:
                backend.open()
            except ServerGone as exc:
                if len(urls) > 1:
                    log.warning("leaving out server %s: %s", url, exc)
                gone.append(exc)
                continue
            stack.callback(backend.close)
            backends.append(backend)
        if not backends:
            if len(gone) == 1:
                raise gone[0]        # names the URL and what to check
            raise ComfyConnectionError(f"none of the {len(urls)} servers answers: " + " | ".join(map(str, gone)))
        backends = prepare_servers(backends, plan, todo)
        progress = None if options.quiet else (display or Display()).jobs(
            len(plan.jobs), [b.name for b in backends], already_done=len(plan.jobs) - len(todo), title=options.title)
        scheduler = Scheduler(backends, ResultWriter(manifest), depth=options.depth, progress=progress)
        outcome = scheduler.run(todo)
        log.info("submitted per server: %s", ", ".join(f"{k}: {v}" for k, v in outcome.submissions.items()))
        if outcome.was_interrupted:
            log.warning("interrupted: %d job(s) cancelled; run the same command again to resume", len(outcome.interrupted))
        return outcome.was_interrupted


def launch_local(plan: RunPlan, comfyui_path: Path, extra_paths: dict | None = None):
    """Start the run's local ComfyUI (``--launch``) on the plan's models (the tiny ones with ``--tiny``)
    and ``extra_paths`` (see :func:`launch_model_paths`), logging to ``OUT/logs``; the caller stops it."""
    from .launch import launch, prepare_tiny_models

    models_dirs = [prepare_tiny_models(plan.tiny_models)] if plan.tiny else [Path(comfyui_path) / "models"]
    logs = plan.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return launch(comfyui_path, models_dirs=models_dirs, single_thread=plan.tiny, tiny=plan.tiny,
                  log_path=logs / f"comfyui-{time.strftime('%Y%m%d-%H%M%S')}.log", extra_paths=extra_paths or None)


def prepare_servers(backends: list, plan: RunPlan, todo: Sequence[Job]) -> list:
    """Upload the reference to each server and check it has every node and model file; servers that
    fail the check are dropped (all failing is an error listing what is missing)."""
    from .preflight import PreflightError, check_face_packs, check_graphs

    usable, errors = [], []
    for backend in backends:
        if plan.reference.data is not None:
            answer = backend.client.upload_image(plan.reference.data, filename=plan.reference.upload_name,
                                                 subfolder=UPLOAD_SUBFOLDER, overwrite=True)
            if answer.get("name") != plan.reference.upload_name:
                raise RunnerError(f"{backend.name} stored the reference as {answer.get('name')!r}, expected "
                                  f"{plan.reference.upload_name!r}")
        object_info = backend.client.object_info(refresh=True)
        problems = check_graphs(((job.config, job.graph) for job in todo), object_info)
        listing = model_listing(backend, "insightface")
        if listing is not None:
            problems += check_face_packs(((job.config, job.graph) for job in todo), listing)
        if problems:
            errors.append(PreflightError(backend.name, problems))
            continue
        usable.append(backend)
    if not usable:
        raise errors[0]
    for error in errors:
        log.error("%s\n(this server is left out)", error)
    return usable


def model_listing(backend, folder: str) -> list[str] | None:
    """``GET /models/<folder>`` (None when the server cannot list it)."""
    try:
        listing = backend.client.http.get_json(f"/models/{folder}")
    except ComfyHTTPError:
        return None
    return [str(f) for f in listing] if isinstance(listing, list) else None
