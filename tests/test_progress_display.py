"""The progress display: live bars in a pseudo-terminal, log lines everywhere else.

tests/progress_driver.py runs the real Scheduler with fake servers (which report ``started`` and
one sampler ``step`` per poll, like ComfyBackend does from ComfyUI's websocket) under
``open_display``. In a pseudo-terminal its output is fed to a terminal emulator (pyte) and every
screen it showed is checked; through a pipe the log lines are checked.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api_client.progress import JobProgress, Stage, format_duration, live_wanted, open_display
from api_client.progress.lines import LogJobProgress

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "progress_driver.py"
COLUMNS, ROWS = 100, 30


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Job:
    def __init__(self, job_id: str):
        self.job_id = job_id
        self.label = f"cfg/{job_id}"


# ----------------------------------------------------------------------------- state (no terminal)


def test_eta_moves_with_sampler_steps_before_any_job_ends():
    clock = FakeClock()
    progress = JobProgress(4, ["http://a:1", "http://b:1"], clock=clock)
    board = progress.board
    assert board.eta_seconds() is None                      # nothing moved yet
    progress.update("submitted", Job("j1"), "http://a:1", inflight={"http://a:1": 1})
    progress.update("started", Job("j1"), "http://a:1", inflight={"http://a:1": 1})
    clock.now = 10.0
    progress.update("step", Job("j1"), "http://a:1", inflight={"http://a:1": 1}, value=5, maximum=10, node="3")
    # half a job in 10 s: 3.5 jobs' worth left at 20 s each
    assert board.eta_seconds() == pytest.approx(70.0)
    _, lines = board.snapshot()
    assert (lines[0].job, lines[0].step, lines[0].steps, lines[0].queued) == ("cfg/j1", 5, 10, 0)
    clock.now = 20.0
    progress.update("done", Job("j1"), "http://a:1", inflight={"http://a:1": 0}, seconds=20.0)
    assert board.eta_seconds() == pytest.approx(60.0)       # 3 jobs left at 20 s each
    assert (lines[0].done, board.snapshot()[1][0].done, board.snapshot()[1][0].job) == (0, 1, None)
    progress.update("failed", Job("j2"), "http://b:1", inflight={"http://b:1": 0})
    overall, lines = board.snapshot()
    assert (overall["finished"], overall["failed"], lines[1].failed) == (2, 1, 1)
    progress.server_gone("http://b:1")
    assert board.snapshot()[1][1].gone
    with pytest.raises(ValueError, match="unknown progress event"):
        progress.update("exploded", Job("j3"), "http://a:1", inflight={})


def test_a_step_never_counts_as_a_whole_job():
    clock = FakeClock()
    board = JobProgress(1, ["s"], clock=clock).board
    clock.now = 5.0
    board.step(Job("j"), "s", 10, 10)
    assert board.running_fraction() == pytest.approx(0.99)
    assert board.eta_seconds() > 0


def test_the_sampler_sets_the_share_done_not_a_one_image_node():
    clock = FakeClock()
    board = JobProgress(2, ["s"], clock=clock).board
    clock.now = 4.0
    board.step(Job("j"), "s", 1, 1, node="12")          # a single-image bar: no information
    assert board.running_fraction() == 0 and board.snapshot()[1][0].steps is None
    board.step(Job("j"), "s", 5, 25, node="3")          # the sampler
    board.step(Job("j"), "s", 2, 3, node="8")           # a short node after it shows, but does not reset the share
    _, lines = board.snapshot()
    assert (lines[0].step, lines[0].steps, lines[0].node) == (2, 3, "8")
    assert board.running_fraction() == pytest.approx(0.2)
    assert board.eta_seconds() == pytest.approx((2 - 0.2) * 4.0 / 0.2)


def test_log_lines_keep_their_format():
    clock = FakeClock()
    progress = LogJobProgress(3, ["http://a:1", "http://b:1"], already_done=1, clock=clock)
    records = []

    class Keep(__import__("logging").Handler):
        def emit(self, record):
            records.append(record)

    logger = __import__("logging").getLogger("api_client.runner.progress")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel("INFO")
    try:
        clock.now = 30.0
        progress.update("step", Job("j1"), "http://a:1", inflight={"http://a:1": 1}, value=1, maximum=2)
        assert records == []                                  # steps are not logged
        progress.update("done", Job("j1"), "http://a:1", inflight={"http://a:1": 1, "http://b:1": 2}, seconds=24.13)
        progress.server_gone("http://b:1")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert records[0].getMessage() == ("[2/3] done cfg/j1 on a:1 in 24.1s | a:1: 1 done, 1 queued; "
                                       "b:1: 0 done, 2 queued | ETA 0m30s")
    assert records[0].progress_line is True
    assert records[1].getMessage() == "server b:1 dropped out; ETA 0m30s"


def test_stage_and_callback_count():
    clock = FakeClock()
    display = open_display(quiet=True)
    display.clock = clock
    with display:
        stage = display.stage("score", 4, unit="image")
        clock.now = 2.0
        stage.advance(item="a.png")
        assert stage.eta_seconds() == pytest.approx(6.0)
        callback = display.callback(unit="photo", names={"analyse": "analysing"})
        callback(3, 10, "analyse")
        callback(4, 10, "analyse")
    assert not display.live
    assert stage.snapshot()["item"] == "a.png"
    assert format_duration(None) == "?" and format_duration(3725.4) == "62m05s"


def test_live_only_on_a_terminal(monkeypatch):
    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.delenv("PULID_STUDIO_PROGRESS", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert live_wanted(Stream(True)) and not live_wanted(Stream(False))
    assert not live_wanted(Stream(True), quiet=True)
    monkeypatch.setenv("PULID_STUDIO_PROGRESS", "lines")
    assert not live_wanted(Stream(True))
    monkeypatch.delenv("PULID_STUDIO_PROGRESS")
    monkeypatch.setenv("TERM", "dumb")
    assert not live_wanted(Stream(True))


# ----------------------------------------------------------------------------- in a pseudo-terminal


def _driver(*args) -> list[str]:
    return [sys.executable, str(DRIVER), *args]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PULID_STUDIO_PROGRESS", "NO_COLOR")}
    return {**env, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(ROWS), "PYTHONUNBUFFERED": "1"}


class Terminal:
    """A program in a pseudo-terminal, its output drawn by pyte; ``frames``: every screen it showed."""

    def __init__(self, argv: list[str]):
        pty = pytest.importorskip("pty", reason="pseudo-terminals (pty) exist only on POSIX systems, not Windows")
        import fcntl
        import struct
        import termios

        import pyte

        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.frames: list[list[str]] = []
        self.raw = b""
        env = _env()
        pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its controlling terminal, so ^C is a real SIGINT
            os.chdir(HERE.parent)
            os.execve(argv[0], argv, env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.status: int | None = None

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def pump(self, timeout: float = 0.2) -> bool:
        """Read what is there; False once the program closed the terminal."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:            # EIO: the child exited and the pty closed
            return False
        if not data:
            return False
        self.raw += data
        self.stream.feed(data)
        self.frames.append(self.lines())
        return True

    def run_until(self, predicate, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pump():
                return False
            if predicate(self.frames[-1] if self.frames else []):
                return True
        raise AssertionError("timed out; screen:\n" + "\n".join(self.lines()))

    def finish(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.pump() and time.monotonic() < deadline:
            pass
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        self.status = os.waitstatus_to_exitcode(status)
        return self.status


def _matching(frames, pattern):
    regex = re.compile(pattern)
    return [m for frame in frames for line in frame for m in [regex.search(line)] if m]


@pytest.mark.timeout(120)
def test_live_bars_in_a_terminal():
    term = Terminal(_driver("jobs", "--jobs", "8", "--servers", "2", "--ticks", "5", "--delay", "0.08",
                            "--fail", "b2j1"))
    assert term.finish() == 1                                      # one job failed
    assert b"\x1b[?25l" in term.raw                                # the live display was drawn (cursor hidden)
    frames = term.frames
    # the overall bar counts up through intermediate states
    counts = {int(m.group(1)) for m in _matching(frames, r"^run .* (\d)/8 jobs")}
    assert {0, 8} <= counts and len(counts - {0, 8}) >= 3, counts
    # before any job ended, the sampler steps already gave an ETA
    assert _matching(frames, r"^run .* 0/8 jobs · elapsed \dm\d\ds · ETA \dm\d\ds"), "no step-based ETA"
    # one line per server under the column headings, with the running job and its sampler step
    assert _matching(frames, r"^  server +job +step +queued +done +failed$")
    steps = _matching(frames, r"^  gpu-[ab]:8188 +cfg\d/b\dj\d +\S+ +([1-4])/5 +\d +\d +\d$")
    assert len({m.group(1) for m in steps}) >= 3, "sampler steps not shown"
    assert _matching(frames, r"^  gpu-a:8188 ") and _matching(frames, r"^  gpu-b:8188 ")
    # the final frame stays: all done, one failure, per-server counts adding up
    final = term.lines()
    assert any(re.search(r"^run .* 8/8 jobs · 1 failed · elapsed \dm\d\ds · finished$", line) for line in final)
    rows = [re.match(r"^  gpu-[ab]:8188 +idle +(\d) +(\d) +(\d)$", line) for line in final]
    rows = [m for m in rows if m]
    assert len(rows) == 2 and sum(int(m.group(2)) for m in rows) == 7 and sum(int(m.group(3)) for m in rows) == 1
    # log records print above the bars; the per-job progress lines are left to the bars
    text = "\n".join(final)
    assert "ERROR api_client.runner.execution.scheduler: cfg1/b2j1 failed on http://gpu-b:8188" in text
    assert "INFO api_client.runner: finished: 7 done, 1 failed" in text
    assert "[1/8]" not in term.raw.decode("utf-8", "replace")
    assert not term.screen.cursor.hidden


@pytest.mark.timeout(120)
def test_ctrl_c_leaves_the_terminal_clean():
    term = Terminal(_driver("jobs", "--jobs", "8", "--servers", "2", "--ticks", "200", "--delay", "0.05"))
    term.run_until(lambda frame: any(re.search(r" ([3-9]|\d\d)/200 ", line) for line in frame))
    os.write(term.fd, b"\x03")                                     # Ctrl-C, through the terminal
    assert term.finish() == 130
    final = term.lines()
    assert not term.screen.cursor.hidden
    assert term.screen.cursor.x == 0                               # the prompt would start on a fresh line
    heads = [line for line in final if re.match(r"^run .*/8 jobs", line)]
    assert len(heads) == 1, final                                  # the last frame, drawn once, not torn
    assert "WARNING api_client.runner: interrupted: 4 job(s) cancelled" in "\n".join(final)
    assert final.index(heads[0]) < max(i for i, line in enumerate(final) if "interrupted" in line)


@pytest.mark.timeout(120)
def test_stage_bar_counts_items_as_they_go():
    term = Terminal(_driver("stage", "--items", "20", "--delay", "0.08"))
    assert term.finish() == 0
    counts = {int(m.group(1)) for m in _matching(term.frames, r"^score .* (\d+)/20 images")}
    assert len(counts - {0, 20}) >= 5 and 20 in counts, counts
    assert _matching(term.frames, r"^  photo_\d\d\.jpg$")
    assert not re.search(r"\[\d+/20\]", term.raw.decode("utf-8", "replace"))   # per-item log lines: the bar's
    assert "INFO api_client.runner: scored 20 images" in "\n".join(term.lines())


# ----------------------------------------------------------------------------- not a terminal


def test_a_pipe_gets_the_log_lines():
    proc = subprocess.run(_driver("jobs", "--jobs", "8", "--servers", "2", "--ticks", "2", "--delay", "0.01",
                                  "--fail", "b2j1"), cwd=HERE.parent, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "\x1b" not in proc.stderr and proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.startswith("INFO api_client.runner.progress:")]
    pattern = re.compile(r"^INFO api_client\.runner\.progress: \[(\d)/8\] (done|failed) cfg\d/b\dj\d on gpu-[ab]:8188"
                         r"( in \d+\.\ds)? \| gpu-a:8188: \d done, \d queued(, \d failed)?; "
                         r"gpu-b:8188: \d done, \d queued(, \d failed)? \| (ETA \dm\d\ds|finished)$")
    assert [int(pattern.match(line).group(1)) for line in lines] == list(range(1, 9)), lines
    assert lines[-1].endswith("| finished") and sum(" failed cfg" in line for line in lines) == 1


def test_quiet_and_pipe_draw_nothing():
    term = Terminal(_driver("jobs", "--jobs", "4", "--servers", "1", "--ticks", "2", "--delay", "0.01", "--quiet"))
    assert term.finish() == 0
    assert b"\x1b" not in term.raw and "run " not in "\n".join(term.lines())
    proc = subprocess.run(_driver("stage", "--items", "5", "--delay", "0"), cwd=HERE.parent, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert [line for line in proc.stderr.splitlines() if "scored" in line][:5] == [
        f"INFO api_client.runner: [{i}/5] photo_{i - 1:02d}.jpg scored" for i in range(1, 6)]
    assert "\x1b" not in proc.stderr


def test_stage_is_a_pulid_flux_progress_callback():
    with open_display(quiet=True) as display:
        bars: list[Stage] = []
        display._add = lambda part: bars.append(part) or part
        callback = display.callback(unit="photo")
        for done in range(1, 4):
            callback(done, 3, "analyse")
        callback(1, 1, "export")
    assert [(b.name, b.done, b.total) for b in bars] == [("analyse", 3, 3), ("export", 1, 1)]


# ----------------------------------------------------------------------------- pulid-studio score


@pytest.fixture(scope="module")
def twenty_photos(faces_dir, tmp_path_factory):
    import shutil

    folder = tmp_path_factory.mktemp("photos")
    photos = sorted(p for p in (faces_dir / "photos").iterdir() if not p.name.startswith("group"))[:20]
    assert len(photos) == 20
    for photo in photos:
        shutil.copy(photo, folder / photo.name)
    return folder, faces_dir / "photos" / "biden_01.jpg"


def _score(folder: Path, reference: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "api_client.cli", "score", "--images", str(folder), "--reference", str(reference),
            "--engine", "dlib", "--dlib-upsample", "0", "--out", str(out)]


@pytest.mark.timeout(300)
def test_scoring_20_photos_shows_progress_as_it_goes(twenty_photos, tmp_path):
    folder, reference = twenty_photos
    term = Terminal(_score(folder, reference, tmp_path / "out"))
    assert term.finish(timeout=240) == 0, "\n".join(term.lines())
    counts = [int(m.group(1)) for m in _matching(term.frames, r"^score .* (\d+)/20 images · elapsed")]
    assert len(set(counts) - {0, 20}) >= 5, counts                 # the bar moved photo by photo
    assert counts == sorted(counts)
    assert any(re.search(r"^score .* 20/20 images · elapsed \dm\d\ds · finished$", line) for line in term.lines())
    assert not re.search(r"\[\d+/20\]", term.raw.decode("utf-8", "replace"))
    assert (tmp_path / "out" / "report.html").is_file() and not term.screen.cursor.hidden


@pytest.mark.timeout(300)
def test_scoring_20_photos_logs_each_one_off_a_terminal(twenty_photos, tmp_path):
    folder, reference = twenty_photos
    proc = subprocess.Popen(_score(folder, reference, tmp_path / "out"), cwd=HERE.parent, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen, running_at_first = [], None
    for line in proc.stderr:
        match = re.match(r"^INFO pulid_flux\.scoring\.folder: \[(\d+)/20\] \S+: dlib (no face|[01]\.\d+)$", line)
        if match:
            if running_at_first is None:
                running_at_first = proc.poll() is None
            seen.append(int(match.group(1)))
    assert proc.wait(timeout=240) == 0
    assert seen == list(range(1, 21)) and running_at_first       # line by line while it worked
    assert "\x1b" not in proc.stdout.read()


# ----------------------------------------------------------------------------- the runner's command line


@pytest.mark.timeout(180)
def test_run_command_draws_the_bars(tmp_path):
    """``run`` of the shipped spec (8 jobs) on two fake servers, through the runner's own CLI."""
    term = Terminal(_driver("cli", "--out", str(tmp_path / "out"), "--ticks", "5", "--delay", "0.08"))
    assert term.finish() == 0, "\n".join(term.lines())
    label = r"0\d_[a-z0-9_]+/0\d_[a-z-]+_s\d+\.png"
    assert _matching(term.frames, rf"^  gpu-[ab]:8188 +{label} +\S+ +[1-4]/5 +\d +\d +0$"), "no step on a job line"
    assert len({m.group(1) for m in _matching(term.frames, r"^run .* (\d)/8 jobs")}) >= 4
    final = term.lines()
    assert any(re.search(r"^run .* 8/8 jobs · elapsed \dm\d\ds · finished$", line) for line in final)
    # the closing summary comes after the bars, which stay as the last frame drew them
    closing = next(i for i, line in enumerate(final) if "finished in" in line)
    assert closing > next(i for i, line in enumerate(final) if line.startswith("run "))
    assert "[1/8]" not in term.raw.decode("utf-8", "replace") and not term.screen.cursor.hidden


def test_run_command_off_a_terminal_logs_each_job(tmp_path):
    proc = subprocess.run(_driver("cli", "--out", str(tmp_path / "out"), "--ticks", "1", "--delay", "0"),
                          cwd=HERE.parent, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    numbers = re.findall(r"api_client\.runner\.progress: \[(\d)/8\] done ", proc.stderr)
    assert numbers == [str(i) for i in range(1, 9)] and "\x1b" not in proc.stderr
