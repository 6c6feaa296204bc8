"""How every ``pulid-studio`` command reports a failure: one line on stderr, one exit code per kind.

    pulid-studio: error: <what failed, naming the file, URL or key, and what to check>

The exit codes are part of the command line's interface (scripts branch on them); they are listed
in ``pulid-studio --help`` (:data:`EXIT_CODES_HELP`) and in the README.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn

from .errors import ComfyServerError

PREFIX = "pulid-studio: error: "

EXIT_OK = 0
EXIT_INCOMPLETE = 1      # the command ran, but not all of its work succeeded
EXIT_INPUT = 2           # bad arguments or input; nothing was done
EXIT_SERVER = 3          # ComfyUI could not be reached or started, or cannot run the workflows
EXIT_INTERRUPTED = 130   # Ctrl-C or SIGTERM (the usual 128 + SIGINT)

EXIT_CODES_HELP = f"""\
errors: every command reports a failure as one line on stderr, "{PREFIX}...",
naming the file, URL or key at fault and what to check. Exit status:
  {EXIT_OK}    done
  {EXIT_INCOMPLETE}    ran, but not all of the work succeeded (jobs not done, no photo accepted)
  {EXIT_INPUT}    bad arguments or input (missing or invalid file, spec, workflow, override); nothing was done
  {EXIT_SERVER}    ComfyUI could not be reached or started, or lacks a node or model the workflows need
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C, SIGTERM); run the same command again to resume
"""


class InputError(Exception):
    """The command's input (a file, an option value) is wrong; the message names it."""


def exit_code(exc: BaseException) -> int:
    """The exit status of the kind of failure ``exc`` is."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ComfyServerError):
        return EXIT_SERVER
    return EXIT_INPUT


def one_line(text: str) -> str:
    """``text`` on one line: multi-line details (a rejected prompt's failing nodes, a list of missing
    models) are joined with "; " so nothing is lost and the line still reads as one message."""
    parts = [re.sub(r"\s+", " ", line).strip() for line in str(text).splitlines()]
    line = ""
    for part in filter(None, parts):
        line += (" " if line.endswith(":") else "; " if line else "") + part
    return line or "unknown error"


def report(exc: BaseException) -> int:
    """Print ``exc`` the convention's way and return its exit status."""
    if isinstance(exc, KeyboardInterrupt):
        sys.stderr.write("pulid-studio: interrupted\n")
    else:
        # An error may carry a shorter ``summary`` for this line (a server's start-up failure: its log).
        sys.stderr.write(PREFIX + one_line(getattr(exc, "summary", None) or str(exc)) + "\n")
    sys.stderr.flush()
    return exit_code(exc)


class CliArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors follow the same convention (one line, exit 2) and
    whose ``--help`` ends with it (:data:`EXIT_CODES_HELP`, kept as written).

    ``add_subparsers`` builds sub-command parsers of the parent's class, so one parser at the top
    covers every sub-command.
    """

    def format_help(self) -> str:
        return super().format_help().rstrip("\n") + "\n\n" + EXIT_CODES_HELP

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"{PREFIX}{one_line(message)} (see `{self.prog} --help`)\n")
