"""Exceptions raised by the PuLID-Flux library.

Each carries the file or input it is about, so that a ComfyUI node error or a CLI message tells the
user exactly what to fix.
"""


class PulidError(Exception):
    """Base class of every error raised by ``pulid_flux``."""


class PulidWeightsError(PulidError):
    """A weights file is missing, unreadable, or not the model it was expected to be."""

    def __init__(self, path, problem, *, missing=(), unexpected=()):
        self.path = str(path)
        self.problem = problem
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        parts = [f"{self.path}: {problem}"]
        if self.missing:
            parts.append("missing keys: " + _preview(self.missing))
        if self.unexpected:
            parts.append("unexpected keys: " + _preview(self.unexpected))
        super().__init__("; ".join(parts))


class NoFaceError(PulidError):
    """No face was found in any of the given images.

    ``images``: what the caller learnt about each image on the way (e.g. identity encoding's
    per-image statuses), so a user interface can still show the photos to draw a face region on.
    """

    def __init__(self, message: str = "", *, images=()):
        super().__init__(message)
        self.images = list(images)


class FaceRegionError(PulidError):
    """A user-given face region (box, mask, widget value or ``.face.json`` sidecar) is unusable."""


class IdentityFormatError(PulidError):
    """An identity file (``.pulidembd``) is malformed."""


def _preview(keys, limit=8):
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    if len(keys) > limit:
        shown += f", … ({len(keys) - limit} more)"
    return shown
