"""The ablation spec (``workflows/ablation.yaml``): configs x prompts x seeds x sweeps, as a plan source.

:mod:`.schema` (the document's shape, pydantic) -> :mod:`.spec` (the typed spec, checked against
the workflows) -> :mod:`.jobs` (expansion, file names, cache-friendly order) -> :mod:`.source`
(the ``run`` / ``ablate`` commands' arguments and the :class:`~...plan.RunPlan` they build).
"""

from .jobs import Selection, expand_jobs
from .source import ABLATE, RUN, build_plan
from .spec import Spec, SpecError, load_spec, parse_spec

__all__ = ["ABLATE", "RUN", "Selection", "Spec", "SpecError", "build_plan", "expand_jobs", "load_spec", "parse_spec"]
