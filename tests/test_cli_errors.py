"""``pulid-studio``'s error convention: one line "pulid-studio: error: ...", one exit code per kind of
failure, the same for every sub-command; unreachable servers fail fast and name the URL; an error
before any work leaves no output folder.

No traffic leaves loopback: "refused" is a loopback port nobody listens on, the unknown host's name
lookup and the unroutable host's connect are patched (the real requests/urllib3 stack runs above them).
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest
import urllib3.util.connection

from api_client.cli import main
from api_client.cli_errors import (
    EXIT_CODES_HELP,
    EXIT_INPUT,
    EXIT_SERVER,
    PREFIX,
    CliArgumentParser,
    exit_code,
    one_line,
)
from api_client.errors import ComfyConnectionError, ComfyHTTPError, ConversionError
from api_client.transport import DEFAULT_CONNECT_TIMEOUT

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "workflows" / "ablation.yaml"
WORKFLOW = ROOT / "workflows" / "01_base.json"
SUBCOMMANDS = (["convert"], ["run"], ["ablate"], ["report"], ["dataset", "prepare"], ["score"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def reference(tmp_path) -> Path:
    from runner_fakes import png_bytes

    path = tmp_path / "me.png"
    path.write_bytes(png_bytes(1, 64))
    return path


def cli(capsys, *argv) -> tuple[int, str, float]:
    """(exit status, stderr, seconds) of ``pulid-studio ARGV`` run in-process."""
    capsys.readouterr()
    started = time.monotonic()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:              # argparse's exits (help, usage errors)
        code = exc.code
    return code, capsys.readouterr().err, time.monotonic() - started


def assert_one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1 and err.endswith(lines[0] + "\n"), err     # the error is the last, single line
    return lines[0]


def server_commands(url: str, out: Path, reference: Path) -> dict[str, list]:
    return {
        "convert": ["convert", WORKFLOW, "--server", url],
        "run": ["run", SPEC, "--out", out / "run", "--server", url, "--reference", reference],
        "ablate": ["ablate", SPEC, "--out", out / "ablate", "--server", url, "--reference", reference],
    }


# ----------------------------------------------------------------------------- the convention itself


def test_exit_codes_by_kind_and_one_line():
    assert exit_code(ComfyConnectionError("x")) == exit_code(ComfyHTTPError("GET", "u", 502, "")) == EXIT_SERVER
    assert exit_code(ConversionError("x")) == exit_code(ValueError("x")) == exit_code(OSError("x")) == EXIT_INPUT
    assert exit_code(KeyboardInterrupt()) == 130
    assert one_line("ComfyUI rejected the prompt: x\n  node 1 'A': bad\n\n  node 2 'B':   worse") == \
        "ComfyUI rejected the prompt: x; node 1 'A': bad; node 2 'B': worse"
    assert one_line("server cannot run these jobs:\nunknown node classes:\n  A\n  B") == \
        "server cannot run these jobs: unknown node classes: A; B"


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=lambda c: " ".join(c))
def test_help_documents_the_convention(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(EXIT_CODES_HELP.rstrip())
    for status in ("0 ", "1 ", "2 ", "3 ", "130 "):
        assert f"\n  {status}" in out


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=lambda c: " ".join(c))
def test_usage_errors_are_one_line_with_exit_2(command, capsys):
    code, err, _ = cli(capsys, *command)
    assert code == EXIT_INPUT
    line = assert_one_error_line(err)
    assert "the following arguments are required" in line and f"`pulid-studio {' '.join(command)} --help`" in line
    assert "usage:" not in err


def test_parsers_of_sub_commands_inherit_the_convention():
    parser = CliArgumentParser(prog="p")
    sub = parser.add_subparsers().add_parser("x")
    assert isinstance(sub, CliArgumentParser)


def test_input_errors_of_every_kind_exit_2(tmp_path, reference, capsys):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{nope")
    cases = [
        (["convert", tmp_path / "missing.json", "--object-info", bad_json], "missing.json"),
        (["convert", WORKFLOW, "--object-info", bad_json], "bad.json is not valid JSON"),
        (["run", tmp_path / "nospec.yaml", "--out", tmp_path / "o1", "--server", "http://127.0.0.1:1"],
         "nospec.yaml"),
        (["run", SPEC, "--out", tmp_path / "o2", "--reference", reference], "no server"),
        (["run", SPEC, "--out", tmp_path / "o3", "--launch", tmp_path, "--reference", reference],
         "not a ComfyUI folder"),
        (["report", tmp_path / "o4"], "run.json"),
        (["score", "--images", tmp_path, "--reference", tmp_path / "nobody.png", "--out", tmp_path / "o5"],
         "nobody.png"),
    ]
    for argv, expected in cases:
        code, err, _ = cli(capsys, *argv)
        assert code == EXIT_INPUT, (argv, err)
        assert expected in assert_one_error_line(err)
    assert not any((tmp_path / f"o{n}").exists() for n in range(1, 6))


# ----------------------------------------------------------------------------- unreachable servers


@pytest.mark.parametrize("command", ["convert", "run", "ablate"])
def test_refused_connection_fails_within_2s_naming_the_url(command, tmp_path, reference, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, err, seconds = cli(capsys, *server_commands(url, tmp_path, reference)[command])
    assert code == EXIT_SERVER
    line = assert_one_error_line(err)
    assert url in line and "connection refused" in line and "ComfyUI is running" in line
    assert seconds < 2.0
    assert not (tmp_path / command).exists()          # no half-created --out


@pytest.fixture
def unknown_host(monkeypatch):
    """Name lookups of *.invalid fail as a resolver answers them (RFC 2606: never resolvable)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    return "http://nonexistent.invalid:8188"


@pytest.mark.parametrize("command", ["convert", "run", "ablate"])
def test_unknown_host_fails_within_2s_naming_it(command, unknown_host, tmp_path, reference, capsys):
    code, err, seconds = cli(capsys, *server_commands(unknown_host, tmp_path, reference)[command])
    assert code == EXIT_SERVER
    line = assert_one_error_line(err)
    assert unknown_host in line and "unknown host 'nonexistent.invalid'" in line and "host name" in line
    assert seconds < 2.0
    assert not (tmp_path / command).exists()


@pytest.fixture
def unroutable(monkeypatch):
    """Connecting to 10.255.255.1 never completes: the patched connect waits out its timeout and
    raises what the socket would (no packet is sent). Records the timeouts it was given."""
    given = []
    real = urllib3.util.connection.create_connection

    def create_connection(address, timeout=None, *args, **kwargs):
        if address[0] != "10.255.255.1":
            return real(address, timeout, *args, **kwargs)
        given.append(timeout)
        time.sleep(timeout)
        raise socket.timeout("timed out")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return given


@pytest.mark.parametrize("command", ["convert", "run"])
def test_unroutable_host_fails_after_the_connect_timeout(command, unroutable, tmp_path, reference, capsys):
    url = "http://10.255.255.1:8188"
    argv = server_commands(url, tmp_path, reference)[command]
    code, err, seconds = cli(capsys, *argv, "--connect-timeout", "0.5")
    assert code == EXIT_SERVER
    line = assert_one_error_line(err)
    assert url in line and "within 0.5 s (--connect-timeout)" in line
    assert unroutable == [0.5]                        # tried once, with the timeout given
    assert 0.5 <= seconds < 2.0
    assert not (tmp_path / command).exists()


def test_connect_timeout_default_is_documented_and_used(unroutable, monkeypatch, capsys):
    monkeypatch.setattr(time, "sleep", lambda seconds: None)    # do not wait the real default out
    code, err, _ = cli(capsys, "convert", WORKFLOW, "--server", "http://10.255.255.1:8188")
    assert code == EXIT_SERVER and unroutable == [DEFAULT_CONNECT_TIMEOUT]
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"--connect-timeout SECONDS give up on a server that does not accept the connection within this " \
           f"time (default {DEFAULT_CONNECT_TIMEOUT:g}" in help_text


def test_bad_connect_timeout_is_a_usage_error(capsys):
    code, err, _ = cli(capsys, "run", SPEC, "--out", "o", "--server", "x:1", "--connect-timeout", "0")
    assert code == EXIT_INPUT and "--connect-timeout" in assert_one_error_line(err)


# ----------------------------------------------------------------------------- output folders


def test_a_failing_run_keeps_an_existing_output_folder(tmp_path, reference, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("the user's")
    url = f"http://127.0.0.1:{free_port()}"
    code, _, _ = cli(capsys, "run", SPEC, "--out", out, "--server", url, "--reference", reference)
    assert code == EXIT_SERVER and (out / "mine.txt").read_text() == "the user's"


def test_comfyui_that_cannot_start_is_one_line_with_the_fix(tmp_path, reference, capsys, monkeypatch):
    """A --launch folder whose Python lacks ComfyUI's requirements (the usual first-run failure)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))          # where the kept log goes
    comfy = tmp_path / "ComfyUI"
    comfy.mkdir()
    (comfy / "main.py").write_text("import sqlalchemy_is_not_installed_here\n")
    (comfy / "requirements.txt").write_text("sqlalchemy\n")
    out = tmp_path / "out"
    code, err, _ = cli(capsys, "run", SPEC, "--out", out, "--launch", comfy, "--reference", reference)
    assert code == EXIT_SERVER
    line = assert_one_error_line(err)
    assert "ComfyUI exited with code 1 during start-up" in line
    assert "No module named 'sqlalchemy_is_not_installed_here'" in line
    assert f"-m pip install -r {comfy / 'requirements.txt'}" in line and Path(sys.executable).name in line
    assert not out.exists()                                     # nothing ran: no half-created folder ...
    log_path = Path(line.rsplit("(log: ", 1)[1].rstrip(")"))    # ... but ComfyUI's log is kept and named
    assert log_path.parent == tmp_path / "pulid-studio-logs" and "sqlalchemy_is_not_installed_here" in log_path.read_text()


def test_convert_writes_no_output_file_on_error(tmp_path, capsys):
    out = tmp_path / "api.json"
    url = f"http://127.0.0.1:{free_port()}"
    code, _, _ = cli(capsys, "convert", WORKFLOW, "--server", url, "-o", out)
    assert code == EXIT_SERVER and not out.exists()


def test_module_entry_points_share_the_convention(tmp_path):
    import subprocess

    for module, argv in (("api_client.cli", ["score", "--images", tmp_path, "--reference", tmp_path / "x.png",
                                              "--out", tmp_path / "o"]),
                         ("api_client.runner", ["report", tmp_path / "o"])):
        done = subprocess.run([sys.executable, "-m", module, *map(str, argv)], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        assert done.returncode == EXIT_INPUT, done.stderr
        assert_one_error_line(done.stderr)
