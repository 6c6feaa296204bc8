"""The checkpoint sweep (``pulid-studio sweep CHECKPOINT_DIR``) as a plan source.

:mod:`.jobs` (columns = checkpoints or style strengths, their LoRA chains, the cache order) and
:mod:`.source` (arguments, checkpoint discovery, the servers' LoRA names, the :class:`RunPlan`).
Its report is ``reporting.sweep``.
"""

from .. import PlanSource
from .source import add_arguments, build_plan

SWEEP = PlanSource(
    command="sweep", help="render every checkpoint of an identity-LoRA training, score them, recommend one",
    description="Find the trainer's checkpoints in CHECKPOINT_DIR, render every checkpoint x prompt x seed "
                "(resumable, over one or more servers, each LoRA loaded once per server), score identity, prompt "
                "adherence and memorization, and write OUT/sweep.csv, curve.png, strips/ and report.md with the "
                "recommended checkpoint.",
    add_arguments=add_arguments, build=build_plan, report=True, report_kind="sweep", several_references=True)

__all__ = ["SWEEP", "build_plan"]
