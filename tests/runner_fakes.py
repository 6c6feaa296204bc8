"""Test doubles for the runner: a fake ComfyUI queue (scheduler backend), jobs and a recording sink."""

from __future__ import annotations

from dataclasses import dataclass, field

from api_client.runner.execution.scheduler import Finished, JobRejected, ServerGone


@dataclass(frozen=True)
class FakeJob:
    job_id: str
    block: int
    order: int
    config: str = "c"
    params: tuple = ()

    @property
    def label(self) -> str:
        return f"{self.config}/{self.job_id}"


def make_jobs(blocks: int, per_block: int) -> list[FakeJob]:
    jobs, order = [], 0
    for b in range(1, blocks + 1):
        for k in range(per_block):
            jobs.append(FakeJob(job_id=f"b{b}j{k}", block=b, order=order, config=f"cfg{k}"))
            order += 1
    return jobs


@dataclass
class FakeServer:
    """A server queue: each ``poll`` finishes the running prompt after ``ticks`` polls.

    ``die_after``: the server disappears after finishing that many prompts (every later call raises
    ServerGone); ``reject``: job ids it refuses (validation error); ``fail``: job ids whose
    execution errors.
    """

    name: str
    ticks: int = 1
    die_after: int | None = None
    reject: frozenset = frozenset()
    fail: frozenset = frozenset()
    interrupt_on_poll: int | None = None      # raise KeyboardInterrupt at this poll call
    queue: list = field(default_factory=list)
    submitted: list = field(default_factory=list)
    executed: list = field(default_factory=list)
    cancelled: list = field(default_factory=list)
    max_queued: int = 0
    polls: int = 0
    closed: bool = False
    _progress: int = 0

    @property
    def dead(self) -> bool:
        return self.die_after is not None and len(self.executed) >= self.die_after

    def submit(self, job) -> str:
        if self.dead:
            raise ServerGone(f"{self.name} refused the connection")
        if job.job_id in self.reject:
            raise JobRejected(f"{job.job_id}: value_not_in_list")
        prompt_id = f"{self.name}-{len(self.submitted)}"
        self.submitted.append(job.job_id)
        self.queue.append((prompt_id, job))
        self.max_queued = max(self.max_queued, len(self.queue))
        return prompt_id

    def poll(self, timeout: float) -> list[Finished]:
        self.polls += 1
        if self.interrupt_on_poll is not None and self.polls >= self.interrupt_on_poll:
            raise KeyboardInterrupt
        if self.dead:
            raise ServerGone(f"{self.name} connection reset")
        if not self.queue:
            return []
        self._progress += 1
        if self._progress < self.ticks:
            return []
        self._progress = 0
        prompt_id, job = self.queue.pop(0)
        self.executed.append(job.job_id)
        status = "error" if job.job_id in self.fail else "success"
        error = {"node_id": "11", "exception_type": "RuntimeError", "exception_message": "boom"} if status == "error" else None
        return [Finished(prompt_id=prompt_id, status=status, error=error, started_at=1.0, finished_at=2.0,
                         executed=["4", "11"], cached=[])]

    def collect(self, job, finished) -> list[bytes]:
        if self.dead:
            raise ServerGone(f"{self.name} connection reset")
        return [f"png:{job.job_id}".encode()]

    def cancel(self, prompt_ids) -> None:
        self.cancelled.extend(prompt_ids)
        self.queue = [(p, j) for p, j in self.queue if p not in prompt_ids]

    def close(self) -> None:
        self.closed = True


@dataclass
class RecordingSink:
    done_ids: list = field(default_factory=list)
    failed_ids: list = field(default_factory=list)
    interrupted_ids: list = field(default_factory=list)
    servers: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    def done(self, job, attempt, finished, images) -> None:
        assert images, "done without images"
        self.done_ids.append(job.job_id)
        self.servers[job.job_id] = attempt.server

    def failed(self, job, attempt, error, finished=None) -> None:
        self.failed_ids.append(job.job_id)
        self.errors[job.job_id] = error

    def interrupted(self, job, attempt) -> None:
        self.interrupted_ids.append(job.job_id)


def png_bytes(seed: int, size: int = 48) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class _AnyNodeInfo(dict):
    """An /object_info that knows every node class and declares no combo (so preflight passes)."""

    def get(self, key, default=None):
        return {"input": {}}


class _FakeHTTP:
    def get_json(self, path):
        assert path == "/models/insightface", path
        return ["models/antelopev2/glintr100.onnx", "models/antelopev2/scrfd_10g_bnkps.onnx"]


class FakeClient:
    def __init__(self, server: FakeServer):
        self.server = server
        self.uploads = []
        self.http = _FakeHTTP()

    def upload_image(self, data, *, filename, subfolder="", overwrite=True, **_):
        self.uploads.append((filename, subfolder, len(data)))
        return {"name": filename, "subfolder": subfolder, "type": "input"}

    def object_info(self, refresh=False):
        return _AnyNodeInfo()


class FakeComfyBackends:
    """Stands in for ``ComfyBackend(url)`` in the commands: one FakeServer per URL, recorded."""

    def __init__(self, face_configs=(), **server_options):
        self.server_options = server_options
        self.face_configs = tuple(face_configs)
        self.created: dict[str, FakeServer] = {}
        self.backend_options: dict[str, dict] = {}

    def __call__(self, url, **backend_options):
        server = FakeServer(url, **self.server_options)
        self.created[url] = server
        self.backend_options[url] = backend_options
        return _FakeBackend(server, self.face_configs)


def face_png(size: int = 256) -> bytes:
    """An image the synthetic tiny insightface pack sees one face in."""
    import io

    from PIL import Image

    from pulid_flux.tiny.insightface_pack import paint_faces

    buffer = io.BytesIO()
    Image.fromarray(paint_faces(size, size, [(9, 8)])).save(buffer, format="PNG")
    return buffer.getvalue()


class _FakeBackend:
    def __init__(self, server: FakeServer, face_configs=()):
        self.server = server
        self.name = server.name
        self.client = FakeClient(server)
        self.face_configs = face_configs

    def open(self):
        return self

    def submit(self, job):
        return self.server.submit(job)

    def poll(self, timeout):
        return self.server.poll(timeout)

    def collect(self, job, finished):
        self.server.collect(job, finished)
        if job.config in self.face_configs:
            return [face_png()]
        return [png_bytes(int(job.job_id[:8], 16))]

    def cancel(self, prompt_ids):
        self.server.cancel(prompt_ids)

    def close(self):
        self.server.close()
