"""ComfyUI's progress bar for our loops over images: the canvas shows it on the node, and ComfyUI
sends it to API clients as ``progress`` events (``pulid-studio`` draws them per server).

``comfy.utils.ProgressBar(total)`` with ``update_absolute(value, total)`` is the same in every
ComfyUI we support (0.8.0 to 0.33.0); each update also lets an Interrupt stop the loop.
"""

import comfy.utils


def comfy_progress(total: int):
    """A ``progress(done, total, stage)`` callback (pulid_flux's convention) on a new ProgressBar;
    nothing for a single item (a bar that only jumps to full says nothing, and API clients would
    read it as a job step)."""
    if total <= 1:
        return None
    bar = comfy.utils.ProgressBar(int(total))
    return lambda done, count, stage=None: bar.update_absolute(done, count)
