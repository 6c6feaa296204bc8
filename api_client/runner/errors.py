"""The runner's own error: a problem with the command line or the environment."""

from ..errors import ComfyClientError


class RunnerError(ComfyClientError):
    """A problem with the command line or the environment (no server, no reference, a busy --out, ...)."""
