"""How library loops report progress, without knowing who shows it.

* A long loop takes ``progress: ProgressCallback | None`` and calls ``progress(done, total,
  stage)`` after each item (``stage`` names the loop: "score", "analyse", "export", ...). The
  ComfyUI nodes pass a ``comfy.utils.ProgressBar``, the command line a live bar
  (``api_client.progress``).
* A log line that only says how far a loop got passes ``extra=PROGRESS_LINE``: a live display
  hides such lines while its bar shows the same; without one they are logged as always.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[int, int, str], None]

PROGRESS_LINE = {"progress_line": True}
