"""One runner per output folder at a time: two would run the same jobs twice."""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..errors import RunnerError

LOCK_FILE = ".runner.lock"


@contextlib.contextmanager
def exclusive(out: Path):
    """Hold ``OUT/.runner.lock``. ``filelock`` takes an OS lock on Windows and POSIX alike, which the
    OS drops when a killed run's process ends."""
    from filelock import FileLock, Timeout

    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunnerError(f"another run is writing to {out} (lock {out / LOCK_FILE}); wait for it "
                          "or use another --out") from None
    try:
        yield
    finally:
        lock.release()
