"""The ComfyUI backend's event bookkeeping (several prompts on one websocket) and the model preflight."""

import pytest
from runner_fakes import FakeJob

from api_client.errors import ComfyConnectionError, WorkflowValidationError
from api_client.events import Event
from api_client.runner.execution.comfy_backend import ComfyBackend
from api_client.runner.execution.preflight import (
    PreflightError,
    check_face_packs,
    check_graphs,
    combo_options,
    format_problems,
)
from api_client.runner.execution.scheduler import JobRejected, ServerGone


class Stream:
    def __init__(self, events):
        self.events = list(events)

    def connect(self):
        pass

    def receive(self, timeout):
        if not self.events:
            return None
        event = self.events.pop(0)
        if isinstance(event, Exception):
            raise event
        return event

    def close(self):
        pass


class Client:
    base_url = "http://fake:1"

    def __init__(self, events=(), history=None, reject=False, down=False):
        self.stream = Stream(events)
        self._history = history or {}
        self.reject = reject
        self.down = down
        self.queued, self.views, self.deleted, self.interrupted = [], [], [], []

    def system_stats(self):
        if self.down:
            raise ComfyConnectionError("refused")
        return {}

    def events(self):
        return self.stream

    def queue_prompt(self, prompt, *, prompt_id):
        if self.down:
            raise ComfyConnectionError("refused")
        if self.reject:
            raise WorkflowValidationError({"type": "prompt_outputs_failed_validation", "message": "bad"}, {}, prompt)
        self.queued.append(prompt_id)
        return prompt_id

    def history(self, prompt_id):
        return {prompt_id: self._history[prompt_id]} if prompt_id in self._history else {}

    def view(self, filename, subfolder, folder_type):
        self.views.append((filename, subfolder, folder_type))
        return f"bytes:{filename}".encode()

    def delete_from_queue(self, ids):
        self.deleted.extend(ids)

    def interrupt(self, prompt_id=None):
        self.interrupted.append(prompt_id)

    def close(self):
        pass


def job(job_id="j", save_node="13"):
    j = FakeJob(job_id, 1, 0)
    object.__setattr__(j, "graph", {"13": {"class_type": "SaveImage", "inputs": {}}})
    object.__setattr__(j, "save_node", save_node)
    return j


def ev(kind, **data):
    return Event(kind, data)


def test_two_queued_prompts_are_followed_on_one_socket():
    client = Client()
    backend = ComfyBackend("http://fake:1", client=client).open()
    first, second = backend.submit(job("a")), backend.submit(job("b"))
    client.stream.events = [
        ev("status", status={}), ev("execution_start", prompt_id=first), ev("execution_cached", prompt_id=first, nodes=["1"]),
        ev("executing", prompt_id=first, node="4"), ev("executing", prompt_id=first, node="11"),
        ev("executing", prompt_id="someone-else", node="4"), ev("execution_success", prompt_id=first),
        ev("executing", prompt_id=first, node=None),
        ev("execution_start", prompt_id=second), ev("execution_cached", prompt_id=second, nodes=["1", "4"]),
        ev("executing", prompt_id=second, node="11"),
        ev("execution_error", prompt_id=second, node_id="11", exception_message="boom"),
    ]
    done = backend.poll(1.0)
    assert [(f.prompt_id, f.status, f.executed, f.cached) for f in done] == [(first, "success", ["4", "11"], ["1"])]
    assert done[0].started_at is not None and done[0].finished_at >= done[0].started_at
    failed = backend.poll(1.0)
    assert [(f.prompt_id, f.status, f.executed) for f in failed] == [(second, "error", ["11"])]
    assert failed[0].error["exception_message"] == "boom"
    assert backend.poll(0.01) == []


def test_missed_events_are_recovered_from_history():
    client = Client()
    backend = ComfyBackend("http://fake:1", client=client, history_check=0.0).open()
    prompt_id = backend.submit(job())
    client.stream.events = [Event("reconnected", {"reconnects": 1})]
    assert backend.poll(0.05) == []                      # not in history yet
    client._history[prompt_id] = {
        "status": {"status_str": "success", "completed": True,
                   "messages": [["execution_cached", {"nodes": ["1", "2"]}]]},
        "outputs": {"13": {"images": [{"filename": "x.png", "subfolder": "s", "type": "output"}]},
                    "41": {"images": [{"filename": "pose.png", "subfolder": "", "type": "temp"}]}},
    }
    done = backend.poll(0.05)
    assert [(f.status, f.executed, f.cached) for f in done] == [("success", None, ["1", "2"])]
    assert backend.collect(job(), done[0]) == [b"bytes:x.png"]
    assert client.views == [("x.png", "s", "output")]    # the pose preview (temp) is not a result


def test_rejections_and_dead_servers_are_told_apart():
    backend = ComfyBackend("http://fake:1", client=Client(reject=True)).open()
    with pytest.raises(JobRejected, match="bad"):
        backend.submit(job())
    with pytest.raises(ServerGone):
        ComfyBackend("http://fake:1", client=Client(down=True)).open()
    client = Client()
    backend = ComfyBackend("http://fake:1", client=client).open()
    backend.submit(job())
    client.stream.events = [ComfyConnectionError("reconnect failed")]
    with pytest.raises(ServerGone):
        backend.poll(0.5)


def test_cancel_deletes_and_interrupts():
    client = Client()
    backend = ComfyBackend("http://fake:1", client=client).open()
    ids = [backend.submit(job("a")), backend.submit(job("b"))]
    backend.cancel(ids)
    assert client.deleted == ids and client.interrupted == ids
    assert backend.poll(0.01) == []


V1_INFO = {
    "UNETLoader": {"input": {"required": {"unet_name": [["other.safetensors"]], "weight_dtype": [["default", "fp8"]]}}},
    "KSamplerSelect": {"input": {"required": {"sampler_name": ["COMBO", {"options": ["euler", "heun"]}]}}},
    "PulidStudioLoadPulidFlux": {"input": {"required": {"pulid_file": ["COMBO", {"options": []}],
                                                        "dtype": ["COMBO", {"options": ["auto"]}]}}},
    "CLIPTextEncode": {"input": {"required": {"text": ["STRING", {}], "clip": ["CLIP"]}}},
}


def test_preflight_lists_missing_files_with_their_folders():
    graph = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"},
              "_meta": {"title": "Flux model"}},
        "8": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "eulr"}},
        "31": {"class_type": "PulidStudioLoadPulidFlux", "inputs": {"pulid_file": "pulid_flux_v0.9.1.safetensors",
                                                                     "dtype": "auto"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "hi", "clip": ["2", 0]}},
        "50": {"class_type": "MysteryNode", "inputs": {}},
    }
    problems = check_graphs([("a", graph), ("b", graph)], V1_INFO)
    kinds = sorted((p.kind, p.class_type, p.configs) for p in problems)
    assert kinds == [("bad_value", "KSamplerSelect", ("a", "b")), ("missing_file", "PulidStudioLoadPulidFlux", ("a", "b")),
                     ("missing_file", "UNETLoader", ("a", "b")), ("missing_node", "MysteryNode", ("a", "b"))]
    text = format_problems("http://x", problems)
    assert "diffusion_models/flux1-dev.safetensors" in text and "pulid/pulid_flux_v0.9.1.safetensors" in text
    assert "'Flux model'" in text and "eulr" in text and "euler" in text and "MysteryNode" in text
    assert "missing model files" in str(PreflightError("http://x", problems))
    assert check_graphs([("a", {"8": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "heun"}}})],
                        V1_INFO) == []


def test_combo_shapes():
    assert combo_options([["a", "b"], {}]) == ["a", "b"]
    assert combo_options(["COMBO", {"options": ["x"]}]) == ["x"]
    assert combo_options(["INT", {"default": 1}]) is None
    assert combo_options(["IMAGE"]) is None


def test_missing_insightface_pack_is_found_from_the_folder_listing():
    engine = {"class_type": "PulidStudioLoadFaceEngine", "inputs": {"engine": "insightface", "pack": "antelopev2"}}
    dlib = {"class_type": "PulidStudioLoadFaceEngine", "inputs": {"engine": "dlib", "pack": "antelopev2"}}
    problems = check_face_packs([("03", {"33": engine}), ("x", {"33": dlib})], ["models/buffalo_l/w600k_r50.onnx"])
    assert [(p.folder, p.configs) for p in problems] == [("insightface/models", ("03",))]
    assert "insightface/models/antelopev2/" in format_problems("http://x", problems)
    assert check_face_packs([("03", {"33": engine})], ["models\\antelopev2\\glintr100.onnx"]) == []
