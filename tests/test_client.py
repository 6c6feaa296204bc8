"""ComfyClient against a small fake ComfyUI (aiohttp on loopback): retries, validation errors, runs.

The fake speaks the real server's wire format (routes, 400 bodies, websocket messages, history
entries) as documented in /work/shared/reference/comfyui_conventions.md §3 and observed on a live
0.33 server; it is scripted per test.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid

import pytest

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402

from api_client import (  # noqa: E402
    ComfyConnectionError,
    ComfyHTTPError,
    ComfyTimeoutError,
    ExecutionError,
    ExecutionInterrupted,
    UIFormatError,
    WorkflowValidationError,
)
from api_client.client import ComfyClient, image_reference  # noqa: E402
from api_client.transport import RetryPolicy  # noqa: E402

PROMPT = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
          "_meta": {"title": "Blank"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t"}, "_meta": {"title": "Save"}},
}
PNG = b"\x89PNG\r\n\x1a\nfake-image-bytes"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeComfy:
    """A scripted ComfyUI double running in a background thread."""

    def __init__(self, port: int | None = None):
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[tuple[str, str, object]] = []
        self.failures: dict[str, list[int]] = {}  # path -> statuses to answer before working
        self.prompt_answer = None  # (status, body) overriding the normal acceptance
        self.script = "success"  # what happens after a prompt is queued
        self.history: dict[str, dict] = {}
        self.queued: list[dict] = []
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.ws_connects = 0
        self.uploads: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle
    def start(self) -> "FakeComfy":
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._dispatch)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            self._loop.run_until_complete(site.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10), "fake server did not start"
        return self

    def stop(self) -> None:
        if self._thread is None:
            return

        async def shutdown():
            for ws in list(self.sockets.values()):
                await ws.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    # -- routing
    async def _dispatch(self, request: web.Request):
        path = "/" + request.match_info["tail"]
        if path == "/ws":
            return await self._websocket(request)
        body = None
        if request.method == "POST" and request.content_type == "application/json":
            body = await request.json()
        self.requests.append((request.method, path, body))
        pending = self.failures.get(path)
        if pending:
            return web.Response(status=pending.pop(0), text="temporarily broken")
        handler = {
            ("GET", "/system_stats"): lambda: web.json_response({"system": {"comfyui_version": "0.33.0",
                                                                           "required_frontend_version": "1.49.6"},
                                                                "devices": []}),
            ("GET", "/object_info"): lambda: web.json_response({"EmptyImage": {"input": {"required": {}}}}),
            ("GET", "/queue"): lambda: web.json_response({"queue_running": [], "queue_pending": [
                [0, item["prompt_id"], item["prompt"], {}, []] for item in self.queued if item["prompt_id"] not in self.history]}),
            ("POST", "/prompt"): lambda: self._queue(body),
            ("POST", "/interrupt"): lambda: web.Response(),
            ("POST", "/free"): lambda: web.Response(),
        }.get((request.method, path))
        if handler is not None:
            return handler()
        if request.method == "GET" and path.startswith("/history/"):
            prompt_id = path.split("/", 2)[2]
            return web.json_response({prompt_id: self.history[prompt_id]} if prompt_id in self.history else {})
        if request.method == "GET" and path == "/view":
            if request.query.get("filename") != "t_00001_.png":
                return web.Response(status=404)
            return web.Response(body=PNG, content_type="image/png")
        if request.method == "POST" and path == "/upload/image":
            form = await request.post()
            image = form["image"]
            self.uploads.append({"filename": image.filename, "data": image.file.read(), "subfolder": form.get("subfolder"),
                                 "type": form.get("type"), "overwrite": form.get("overwrite")})
            return web.json_response({"name": image.filename, "subfolder": form.get("subfolder", ""), "type": form.get("type")})
        return web.Response(status=404, text=f"no route {request.method} {path}")

    def _queue(self, body):
        if self.prompt_answer is not None:
            status, answer = self.prompt_answer
            return web.json_response(answer, status=status)
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        self.queued.append({"prompt_id": prompt_id, "prompt": body["prompt"], "client_id": body.get("client_id")})
        asyncio.get_running_loop().create_task(self._execute(prompt_id, body.get("client_id")))
        return web.json_response({"prompt_id": prompt_id, "number": len(self.queued), "node_errors": {}})

    async def _websocket(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client_id = request.query.get("clientId", "anonymous")
        self.sockets[client_id] = ws
        self.ws_connects += 1
        await ws.send_json({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}})
        async for _message in ws:
            pass
        return ws

    async def _send(self, client_id, event_type, data):
        ws = self.sockets.get(client_id)
        if ws is not None and not ws.closed:
            await ws.send_json({"type": event_type, "data": data})

    def _write_history(self, prompt_id, status_str, messages, outputs):
        item = next(i for i in self.queued if i["prompt_id"] == prompt_id)
        self.history[prompt_id] = {
            "prompt": [len(self.queued), prompt_id, item["prompt"], {"client_id": item["client_id"]}, ["2"]],
            "outputs": outputs,
            "status": {"status_str": status_str, "completed": status_str == "success", "messages": messages},
            "meta": {},
        }

    async def _execute(self, prompt_id, client_id):
        await asyncio.sleep(0.05)
        send = lambda t, d: self._send(client_id, t, {**d, "prompt_id": prompt_id})  # noqa: E731
        await send("execution_start", {"timestamp": 1})
        cached = ["1"] if self.script == "cached" else []
        await send("execution_cached", {"nodes": cached, "timestamp": 1})
        # someone else's prompt on the same socket must be ignored
        await self._send(client_id, "executing", {"node": "99", "prompt_id": "someone-else"})
        if not cached:
            await send("executing", {"node": "1", "display_node": "1"})
        if self.script == "drop":
            await self.sockets[client_id].close()
            await asyncio.sleep(0.3)
        if self.script == "hang":
            return
        await send("executing", {"node": "2", "display_node": "2"})
        await send("progress", {"value": 1, "max": 1, "node": "2"})
        await self._send(client_id, "preview", {})  # unknown message types are tolerated
        ws = self.sockets.get(client_id)
        if ws is not None and not ws.closed:
            await ws.send_bytes(b"\x00\x00\x00\x01\x00\x00\x00\x02" + PNG)  # a PNG preview frame
        if self.script == "error":
            error = {"node_id": "2", "node_type": "SaveImage", "executed": ["1"], "exception_message": "disk full",
                     "exception_type": "OSError", "traceback": ["Traceback..."], "current_inputs": {},
                     "current_outputs": {}, "timestamp": 2}
            await send("execution_error", error)
            self._write_history(prompt_id, "error", [["execution_start", {}], ["execution_error", {**error, "prompt_id": prompt_id}]], {})
            await send("executing", {"node": None})
            return
        if self.script == "interrupt":
            info = {"node_id": "2", "node_type": "SaveImage", "executed": ["1"], "timestamp": 2}
            await send("execution_interrupted", info)
            self._write_history(prompt_id, "error", [["execution_interrupted", {**info, "prompt_id": prompt_id}]], {})
            await send("executing", {"node": None})
            return
        output = {"images": [{"filename": "t_00001_.png", "subfolder": "", "type": "output"}]}
        await send("executed", {"node": "2", "display_node": "2", "output": output})
        await send("execution_success", {"timestamp": 3})
        self._write_history(prompt_id, "success", [["execution_start", {}], ["execution_cached", {"nodes": cached}],
                                                    ["execution_success", {}]], {"2": output})
        await send("executing", {"node": None})


@pytest.fixture
def fake():
    server = FakeComfy().start()
    yield server
    server.stop()


def make_client(url, **kwargs) -> ComfyClient:
    kwargs.setdefault("retry", RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02))
    kwargs.setdefault("timeout", 5.0)
    return ComfyClient(url, **kwargs)


def test_frontend_version_is_asked_once_and_sets_the_conversion_rules(fake, monkeypatch):
    client = make_client(fake.url)
    assert client.frontend_version() == "1.49.6" and client.frontend_version() == "1.49.6"
    assert [r[1] for r in fake.requests].count("/system_stats") == 1
    seen = {}
    monkeypatch.setattr("api_client.client.ui_to_api", lambda workflow, info, **kw: seen.update(kw) or {})
    client.convert({"nodes": [], "links": []})
    assert seen["frontend"] == "1.49.6"


def test_rest_calls_and_5xx_retries(fake):
    fake.failures["/system_stats"] = [503, 502]
    client = make_client(fake.url)
    assert client.system_stats()["system"]["comfyui_version"] == "0.33.0"
    assert [r[1] for r in fake.requests].count("/system_stats") == 3
    fake.failures["/queue"] = [500, 500, 500]
    with pytest.raises(ComfyHTTPError) as info:
        client.queue()
    assert info.value.status == 500
    # 4xx is the caller's fault: no retry
    with pytest.raises(ComfyHTTPError) as info:
        client.http.get_json("/no/such/route")
    assert info.value.status == 404
    assert [r[1] for r in fake.requests].count("/no/such/route") == 1


def test_a_server_that_answered_is_retried_through_a_restart():
    first = FakeComfy().start()
    restarted = FakeComfy(port=first.port)
    started = []

    def sleep(seconds):  # the server comes back during the first backoff
        if not started:
            restarted.start()
            started.append(seconds)

    client = make_client(first.url, sleep=sleep)
    try:
        assert client.system_stats()["devices"] == []
        first.stop()
        assert client.system_stats()["devices"] == []
        assert started == [0.01]
    finally:
        first.stop()
        restarted.stop()


def test_a_server_that_never_answered_fails_at_once_in_one_line():
    delays = []
    url = f"http://127.0.0.1:{_free_port()}"
    client = make_client(url, sleep=delays.append, retry=RetryPolicy(attempts=4, backoff=0.5, max_backoff=1.5))
    with pytest.raises(ComfyConnectionError) as info:
        client.object_info()
    assert delays == []                    # a refusal before any answer is not retried
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"cannot reach ComfyUI at {url}: connection refused; check")


def test_connection_errors_after_an_answer_exhaust_retries_with_a_clear_message():
    server = FakeComfy().start()
    delays = []
    client = make_client(server.url, sleep=delays.append, retry=RetryPolicy(attempts=4, backoff=0.5, max_backoff=1.5))
    client.system_stats()
    server.stop()
    with pytest.raises(ComfyConnectionError, match=r"\(4 attempts\): connection refused"):
        client.object_info()
    assert delays == [0.5, 1.0, 1.5]


def test_validation_errors_name_nodes_by_title(fake):
    fake.prompt_answer = (400, {
        "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                  "details": "", "extra_info": {}},
        "node_errors": {"1": {"errors": [{"type": "value_bigger_than_max", "message": "Value 99999 bigger than max of 16384",
                                          "details": "width", "extra_info": {"input_name": "width", "received_value": 99999}}],
                              "dependent_outputs": ["2"], "class_type": "EmptyImage"}},
    })
    client = make_client(fake.url)
    with pytest.raises(WorkflowValidationError) as info:
        client.queue_prompt(PROMPT)
    text = str(info.value)
    assert "node 1 'Blank' (EmptyImage): input 'width': Value 99999 bigger than max of 16384" in text
    assert info.value.type == "prompt_outputs_failed_validation"
    assert info.value.node_errors["1"]["dependent_outputs"] == ["2"]
    fake.prompt_answer = (400, {"error": {"type": "missing_node_type", "message": "Node 'Blank' not found.",
                                          "details": "Node ID '#1'", "extra_info": {"node_id": "1"}}, "node_errors": {}})
    with pytest.raises(WorkflowValidationError, match=r"Node 'Blank' not found. \(Node ID '#1'\)") as info:
        client.queue_prompt(PROMPT)
    assert "[node 1" not in str(info.value)                   # the title is already there
    # ComfyUI 0.8.0 names an unknown node by its class only; the client adds the title from the prompt.
    fake.prompt_answer = (400, {"error": {"type": "invalid_prompt", "details": "Node ID '#1'", "extra_info": {},
                                          "message": "Cannot execute because node EmptyImage does not exist."},
                                "node_errors": {}})
    with pytest.raises(WorkflowValidationError, match=r"does not exist. \(Node ID '#1'\) \[node 1 'Blank'\]"):
        client.queue_prompt(PROMPT)


def test_ui_format_is_refused_before_posting(fake):
    client = make_client(fake.url)
    with pytest.raises(UIFormatError, match="convert"):
        client.queue_prompt({"nodes": [], "links": [], "version": 0.4})
    assert not [r for r in fake.requests if r[1] == "/prompt"]


def test_prompt_post_carries_client_and_prompt_ids(fake):
    client = make_client(fake.url)
    prompt_id = client.queue_prompt(PROMPT, extra_data={"extra_pnginfo": {"workflow": {}}})
    method, path, body = next(r for r in fake.requests if r[1] == "/prompt")
    assert body["client_id"] == client.client_id
    assert body["prompt_id"] == prompt_id and str(uuid.UUID(prompt_id)) == prompt_id
    assert body["extra_data"] == {"extra_pnginfo": {"workflow": {}}}


def test_a_prompt_finishing_while_the_client_looks_is_still_found():
    """The retry check looks at the queue and the history; a prompt that moves from one to the other
    right after the first look must still count as queued (else a retried POST queues it twice)."""
    client = make_client("http://127.0.0.1:1")
    state = {"where": "queue"}

    def look(place, answer):
        def call(*args):
            found = state["where"] == place
            state["where"] = "history"          # the prompt finishes right after the first look
            return answer(found)
        return call

    client.queue = look("queue", lambda found: {"queue_running": [[0, "p1", {}, {}, []]] if found else [],
                                                "queue_pending": []})
    client.history = look("history", lambda found: {"p1": {}} if found else {})
    assert client._server_knows("p1")


def test_retried_prompt_post_is_not_queued_twice(fake):
    client = make_client(fake.url)
    # the first POST reaches the server but its answer is lost (a 502 from a proxy, say)
    original = fake._queue

    def accept_then_fail(body):
        original(body)
        fake._queue = original
        return web.Response(status=502, text="bad gateway")

    fake._queue = accept_then_fail
    prompt_id = client.queue_prompt(PROMPT)
    assert [item["prompt_id"] for item in fake.queued] == [prompt_id]


def test_run_collects_events_outputs_and_counts(fake):
    client = make_client(fake.url)
    seen = []
    result = client.run(PROMPT, timeout=10, on_event=seen.append)
    assert result.status == "success"
    assert result.executing_counts == {"1": 1, "2": 1}
    assert result.executed_counts == {"2": 1}
    assert result.executed_nodes == {"1", "2"}
    assert result.cached_nodes == set()
    assert result.previews == 1
    assert result.progress == {"2": (1, 1)}
    assert "99" not in result.executing_counts  # another prompt's event
    assert [e.type for e in seen][-1] == "executing"
    assert {e.type for e in seen} >= {"execution_start", "execution_cached", "executed", "execution_success"}
    assert result.outputs["2"]["images"][0]["filename"] == "t_00001_.png"
    files = result.files()
    assert [(f.node_id, f.kind, f.filename, f.type) for f in files] == [("2", "images", "t_00001_.png", "output")]
    assert client.view(**{"filename": files[0].filename, "subfolder": "", "folder_type": files[0].type}) == PNG


def test_run_reports_cached_nodes(fake):
    fake.script = "cached"
    result = make_client(fake.url).run(PROMPT, timeout=10)
    assert result.cached_nodes == {"1"}
    assert result.executing_counts == {"2": 1}


def test_run_raises_execution_error_with_the_node_title(fake):
    fake.script = "error"
    with pytest.raises(ExecutionError) as info:
        make_client(fake.url).run(PROMPT, timeout=10)
    err = info.value
    assert "node 2 ('Save') [SaveImage] raised OSError: disk full" in str(err)
    assert err.traceback == ["Traceback..."]
    assert err.result.status == "error" and err.result.executing_counts["1"] == 1
    result = make_client(fake.url).run(PROMPT, timeout=10, raise_on_error=False)
    assert result.status == "error" and result.error["exception_message"] == "disk full"


def test_run_raises_on_interrupt(fake):
    fake.script = "interrupt"
    with pytest.raises(ExecutionInterrupted, match="interrupted at node 2"):
        make_client(fake.url).run(PROMPT, timeout=10)


def test_run_survives_a_websocket_drop(fake):
    fake.script = "drop"
    result = make_client(fake.url).run(PROMPT, timeout=15, poll_interval=0.5)
    assert result.status == "success"
    assert result.reconnects >= 1 and fake.ws_connects >= 2
    assert result.outputs["2"]["images"][0]["filename"] == "t_00001_.png"


def test_run_times_out_and_interrupts(fake):
    fake.script = "hang"
    with pytest.raises(ComfyTimeoutError):
        make_client(fake.url).run(PROMPT, timeout=1.0, poll_interval=0.3)
    interrupts = [body for method, path, body in fake.requests if path == "/interrupt"]
    assert len(interrupts) == 1 and interrupts[0]["prompt_id"] == fake.queued[0]["prompt_id"]


def test_upload_and_download(fake, tmp_path):
    client = make_client(fake.url)
    image = tmp_path / "face.png"
    image.write_bytes(PNG)
    answer = client.upload_image(image, subfolder="pulid")
    assert image_reference(answer) == "pulid/face.png"
    assert fake.uploads == [{"filename": "face.png", "data": PNG, "subfolder": "pulid", "type": "input", "overwrite": "true"}]
    with pytest.raises(FileNotFoundError):
        client.upload_image(tmp_path / "missing.png")
    result = client.run(PROMPT, timeout=10)
    saved = client.download(result, tmp_path / "out")
    assert saved == [tmp_path / "out" / "t_00001_.png"] and saved[0].read_bytes() == PNG


def test_control_endpoints(fake):
    client = make_client(fake.url)
    client.interrupt("abc")
    client.interrupt()
    client.free(unload_models=True)
    posted = [(path, body) for method, path, body in fake.requests if method == "POST"]
    assert posted == [("/interrupt", {"prompt_id": "abc"}), ("/interrupt", {}),
                      ("/free", {"unload_models": True, "free_memory": False})]
