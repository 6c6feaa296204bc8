"""``pulid-studio`` command line.

Each sub-command is registered by a ``_register_<name>(subparsers)`` function listed in
``COMMANDS``; handlers import what they need lazily, so commands that need torch (dataset,
score, ...) cost nothing to the others. Add a command by writing its register function and
appending it to ``COMMANDS``.

Handlers raise; :func:`main` turns every failure into one line and an exit code by its kind
(:mod:`.cli_errors`), the same for every command.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from .cli_errors import CliArgumentParser, InputError, report
from .transport import DEFAULT_CONNECT_TIMEOUT

log = logging.getLogger("pulid_studio")

DEFAULT_SERVER = "http://127.0.0.1:8188"


def _server_default() -> str:
    return os.environ.get("COMFYUI_URL", DEFAULT_SERVER)


def _read_json(path: str) -> object:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from exc


def _write_json(data: object, output: str | None, indent: int | None) -> None:
    text = json.dumps(data, indent=indent, ensure_ascii=False) + "\n"
    if output and output != "-":
        Path(output).write_text(text, encoding="utf-8")
        log.info("wrote %s", output)
    else:
        sys.stdout.write(text)


# ----------------------------------------------------------------------------- convert


def _register_convert(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert a UI workflow to the API prompt format",
        description="Convert an editor (UI) workflow to the API prompt that POST /prompt runs, using the "
                    "server's /object_info (or a saved copy), and print it as JSON.",
    )
    parser.add_argument("workflow", help="UI workflow JSON file ('-' for stdin)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--server", default=None, help=f"ComfyUI URL (default $COMFYUI_URL or {DEFAULT_SERVER})")
    source.add_argument("--object-info", metavar="FILE", help="use a saved /object_info JSON instead of a server")
    parser.add_argument("-o", "--output", help="write the prompt here instead of stdout")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar='NODE.INPUT=VALUE',
                        help='override an input, e.g. --set \'"Positive prompt".text=a fox\' (repeatable)')
    parser.add_argument("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT, metavar="SECONDS",
                        help="give up on a server that does not accept the connection within this time (default "
                             f"{DEFAULT_CONNECT_TIMEOUT:g}; a refused connection or an unknown host fails at once)")
    parser.add_argument("--seed", type=int, default=None, help="seed for {a|b} dynamic-prompt choices")
    parser.add_argument("--indent", type=int, default=2, help="JSON indent (default 2; -1 for compact)")
    parser.set_defaults(func=_cmd_convert)


def _cmd_convert(args: argparse.Namespace) -> int:
    from .convert import is_api_prompt, ui_to_api
    from .overrides import apply_overrides

    workflow = _read_json(args.workflow)
    if is_api_prompt(workflow):
        log.info("%s is already an API prompt; printing it unchanged", args.workflow)
        prompt = dict(workflow)
    else:
        frontend = None                   # a saved /object_info: the current frontend's rules
        if args.object_info:
            object_info = _read_json(args.object_info)
        else:
            from .client import ComfyClient

            with ComfyClient(args.server or _server_default(), connect_timeout=args.connect_timeout) as client:
                object_info = client.object_info()
                frontend = client.frontend_version()
        prompt = ui_to_api(workflow, object_info, seed=args.seed, frontend=frontend)
    if args.overrides:
        prompt = apply_overrides(prompt, args.overrides)
    _write_json(prompt, args.output, None if args.indent < 0 else args.indent)
    return 0


# ----------------------------------------------------------------------------- library commands

#: Commands implemented in ``pulid_flux`` (numpy/OpenCV/dlib): their modules are imported only when
#: the command itself runs, so ``convert``/``run``/``ablate`` stay light on client-only machines.
LIBRARY_COMMANDS = {
    "dataset": ("pulid_flux.dataset.cli", "identity-LoRA datasets: prepare IN OUT, synthesize PORTRAIT, canonicalize PHOTO"),
    "score": ("pulid_flux.scoring.cli", "score identity similarity of images against reference photos"),
}


def _register_library_placeholders(subparsers: argparse._SubParsersAction) -> None:
    # Listed in --help; main() hands these commands to their own parsers before parsing.
    for name, (_module, help_text) in LIBRARY_COMMANDS.items():
        subparsers.add_parser(name, help=help_text, add_help=False)


#: What a library command's live bar counts (its loops call ``progress(done, total, stage)``).
PROGRESS_UNITS = {"dataset": "photo", "score": "image"}


def _library_extensions(name: str) -> dict:
    """Sub-commands the client adds to a library command (they drive ComfyUI servers)."""
    if name == "dataset":
        from .runner.dataset_commands import register
        return {"extra_commands": [register]}
    return {}


def _run_library_command(name: str, rest: Sequence[str]) -> int:
    import importlib

    from .progress import open_display

    module = importlib.import_module(LIBRARY_COMMANDS[name][0])
    parser = CliArgumentParser(prog="pulid-studio")
    module.add_parser(parser.add_subparsers(dest="command", required=True), **_library_extensions(name))
    args = parser.parse_args([name, *rest])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with open_display(quiet=getattr(args, "quiet", False)) as display:
        if display.live:
            args.progress = display.callback(unit=PROGRESS_UNITS.get(name, "item"))
        return _run(args)


def _register_runner(subparsers: argparse._SubParsersAction) -> None:
    from .runner import add_parsers
    add_parsers(subparsers)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _register_convert, _register_runner, _register_library_placeholders]


def build_parser() -> argparse.ArgumentParser:
    parser = CliArgumentParser(prog="pulid-studio", description="PuLID-Flux Studio command line.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIBRARY_COMMANDS:
        return _run_library_command(argv[0], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run a parsed command; a failure of the kinds the user can fix becomes one line (see
    :mod:`.cli_errors`). Anything else is a bug and keeps its traceback."""
    from pulid_flux.errors import PulidError

    from .errors import ComfyClientError

    try:
        return int(args.func(args) or 0)
    except (ComfyClientError, PulidError, InputError, ValueError, OSError, KeyboardInterrupt) as exc:
        log.debug("%s", type(exc).__name__, exc_info=exc)
        return report(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
