"""The headless runner: plans of jobs (from a plan source) run over ComfyUI servers, then reported.

Layers (``docs/architecture.md``): :mod:`.plan` (the typed run plan, the output folder's layout),
:mod:`.sources` (where jobs come from: :mod:`.sources.ablation`, the ablation spec;
:mod:`.sources.sweep`, a LoRA training's checkpoints), :mod:`.execution`
(the engine: lock, resume, scheduler, servers), :mod:`.reporting` (scores and ``report.md``) and
:mod:`.commands` (``pulid-studio run | ablate | sweep | report``). Nothing here imports torch.
"""

from .commands import add_parsers, main
from .execution.scheduler import Finished, JobPool, JobRejected, Scheduler, ServerGone
from .plan import Job, Prompt, RunInfo, RunPlan
from .sources import PlanSource, RunRequest
from .sources.ablation import (
           Selection,
           Spec,
           SpecError,
           expand_jobs,
           load_spec,
           parse_spec,
)

__all__ = ["Finished", "Job", "JobPool", "JobRejected", "PlanSource", "Prompt", "RunInfo", "RunPlan", "RunRequest",
           "Scheduler", "Selection", "ServerGone", "Spec", "SpecError", "add_parsers", "expand_jobs", "load_spec",
           "main", "parse_spec"]
