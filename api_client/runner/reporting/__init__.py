"""Report writers: score a run's gallery (``pulid_flux.scoring``) and write ``OUT/report.md``.

They read the run's records and :class:`~..plan.RunInfo`, never the plan source's own format.
"""

from .report import REPORT, write_report
from .scoring import make_report, scoring_engines

__all__ = ["REPORT", "make_report", "scoring_engines", "write_report"]
