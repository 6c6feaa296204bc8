"""The execution engine: any :class:`~..plan.RunPlan`, whatever source built it, run over ComfyUI servers.

:mod:`.lock` (one runner per output folder), :mod:`.output_folder` (no half-created ``--out``),
:mod:`.run` (resume, stray images, ``run.json``, gallery manifest), :mod:`.servers` (launch,
connect, upload the reference, preflight), :mod:`.scheduler` (pipelined, cache-aware dispatch,
failover, Ctrl-C), :mod:`.comfy_backend` (one ComfyUI server), :mod:`.results` (images and manifest
lines of finished jobs, progress), :mod:`.manifest` (the append-only records), :mod:`.preflight`
(missing nodes and models), :mod:`.launch` (a throw-away local ComfyUI, the tiny models).
"""

from .lock import exclusive
from .output_folder import discard_if_nothing_done
from .run import RunResult, finished_jobs, gallery_records, read_run_info, run_plan
from .servers import ServerOptions, check_server_options, launch_local

__all__ = ["RunResult", "ServerOptions", "check_server_options", "discard_if_nothing_done", "exclusive", "finished_jobs",
           "gallery_records", "launch_local", "read_run_info", "run_plan"]
