"""Several plans, one set of servers: what a command that runs more than one plan needs.

``dataset synthesize`` runs the views, filters them here, then runs the grounding images: two plans
of the same run engine. :class:`Servers` starts the ``--launch``ed ComfyUI once, on the first plan
with work left (a finished run starts none), lets every later plan use it, and keeps one progress
display open across the plans.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from ...progress import open_display
from ..plan import RunPlan
from .run import RunResult, finished_jobs, run_plan
from .servers import ServerOptions, check_server_options, launch_local

log = logging.getLogger("api_client.runner")


class Servers:
    """The servers of a command that runs several plans: ``--launch`` starts one local ComfyUI, on the
    first plan with work left (a finished run starts none), and every plan after it uses it too."""

    def __init__(self, args):
        self.args = args
        self.stack = contextlib.ExitStack()
        self.launched: str | None = None

    def __enter__(self):
        # Live bars on a terminal (per server, with sampler steps), log lines otherwise.
        self.display = self.stack.enter_context(open_display(quiet=self.args.quiet))
        return self

    def __exit__(self, *exc):
        self.stack.close()

    def run(self, plan: RunPlan, what: str) -> RunResult:
        args = self.args
        finished = finished_jobs(plan.out)
        todo = [j for j in plan.jobs if j.job_id not in finished]
        log.info("%s: %d job(s), %d already done, %d to run", what, len(plan.jobs), len(plan.jobs) - len(todo),
                 len(todo))
        if todo:
            check_server_options(self._options(tuple(args.server), Path(args.launch) if args.launch else None))
        if todo and args.launch and self.launched is None:
            server = launch_local(plan, Path(args.launch))
            self.stack.callback(server.stop)
            self.launched = server.url
        urls = ((self.launched,) if self.launched else ()) + tuple(args.server)
        return run_plan(plan, self._options(urls, title=what), self.display)

    def _options(self, urls, launch=None, title: str = "jobs") -> ServerOptions:
        return ServerOptions(urls=urls, launch=launch, depth=self.args.depth, quiet=self.args.quiet,
                             connect_timeout=self.args.connect_timeout, title=title)
