"""Make the POSIX-only modules unimportable, as they are on Windows (for tests/test_no_posix_modules.py).

``install(ours=None)`` blocks every import of them; ``install(ours=("pkg", ...))`` blocks only the
imports made by modules whose name starts with one of those prefixes, so that third-party packages
which pick their Linux backend at import time (psutil imports ``resource`` on Linux and never on
Windows) still load. Install it first thing in a fresh interpreter: a module imported earlier keeps
its reference.
"""

from __future__ import annotations

import sys

BLOCKED = ("fcntl", "termios", "pwd", "grp", "resource")
_IMPORT_MACHINERY = ("importlib", "_frozen_importlib")


def _importer() -> str:
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_IMPORT_MACHINERY):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


class PosixBlocker:
    def __init__(self, ours: tuple[str, ...] | None = None):
        self.ours = ours
        self.refused: list[tuple[str, str]] = []     # (module, importer) of every refused import

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in BLOCKED:
            return None
        importer = _importer()
        if self.ours is not None and not importer.startswith(self.ours):
            return None
        self.refused.append((name, importer))
        raise ModuleNotFoundError(f"No module named {name!r} (POSIX-only: absent on Windows)", name=name)


def install(ours: tuple[str, ...] | None = None) -> PosixBlocker:
    loaded = [name for name in BLOCKED if name in sys.modules]
    if loaded:
        raise RuntimeError(f"already imported before the blocker was installed: {loaded}")
    blocker = PosixBlocker(ours)
    sys.meta_path.insert(0, blocker)
    return blocker
