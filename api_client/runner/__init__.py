"""Ablation runner: a YAML spec of configs x prompts x seeds x sweeps, run over ComfyUI servers.

``pulid-studio run | ablate | report`` (see :mod:`.commands`); the pieces: :mod:`.spec` (the file
format and its validation), :mod:`.jobs` (expansion, ids, file names, order), :mod:`.scheduler`
(pipelined, cache-aware dispatch over servers), :mod:`.comfy_backend` (one ComfyUI server),
:mod:`.manifest` (resume records), :mod:`.preflight` (missing models), :mod:`.launch` (a local
server, ``--tiny``), :mod:`.report` (scores and ``report.md``). Nothing here imports torch.
"""

from .commands import add_parsers, main
from .jobs import Job, Selection, expand_jobs
from .scheduler import Finished, JobPool, JobRejected, Scheduler, ServerGone
from .spec import Spec, SpecError, load_spec, parse_spec

__all__ = ["Finished", "Job", "JobPool", "JobRejected", "Scheduler", "Selection", "ServerGone", "Spec", "SpecError",
           "add_parsers", "expand_jobs", "load_spec", "main", "parse_spec"]
