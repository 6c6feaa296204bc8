"""VLM captions through an OpenAI-compatible chat endpoint: a fake endpoint on loopback (never the
network) answers what each test needs."""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from pulid_flux.dataset.scene import SceneFacts
from pulid_flux.dataset.vlm import (KEY_ENV, VLMClient, VLMError, caption_image, chat_url, check_vlm_caption,
                                    normalize_answer, stated_position)

TRIGGER = "ohwx man"
LEFT = SceneFacts(position="left", others=["right"], yaw=10.0, pitch=0.0, framing="medium shot")


class FakeEndpoint:
    """A chat-completions server: answers with ``self.answer`` (or HTTP ``self.status``), records requests."""

    def __init__(self):
        self.answer = ""
        self.status = 200
        self.requests = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if endpoint.status != 200:
                    payload = json.dumps({"error": {"message": "invalid api key"}}).encode()
                    self.send_response(endpoint.status)
                else:
                    payload = json.dumps({"choices": [{"message": {"role": "assistant",
                                                                   "content": endpoint.answer}}]}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    fake = FakeEndpoint()
    yield fake
    fake.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


IMAGE = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)


def test_a_good_answer_is_used(endpoint, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    endpoint.answer = '"ohwx man, on the left, talking with another man on the right, medium shot, office."\n'
    result = caption_image(TRIGGER, LEFT, image=IMAGE, vlm=VLMClient(endpoint.url, "fake-vl"),
                           reference=IMAGE[:64, :64])
    assert result.source == "vlm" and result.warning is None
    assert result.text == "ohwx man, on the left, talking with another man on the right, medium shot, office"
    request = endpoint.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "fake-vl"
    content = body["messages"][1]["content"]
    images = [c["image_url"]["url"] for c in content if c["type"] == "image_url"]
    assert len(images) == 2 and all(u.startswith("data:image/jpeg;base64,") for u in images)   # reference, image
    assert "on the left" in content[0]["text"] and "with one other person" not in content[0]["text"]
    assert "start with the trigger" in body["messages"][0]["content"]


@pytest.mark.parametrize("answer, problem", [
    ("A man on the left, smiling, medium shot", "does not start with the trigger"),
    ("ohwx man, on the right, with another man on the left, medium shot", "puts the subject on the right"),
    ("ohwx man, smiling in an office, medium shot", "does not say where the subject is"),
    ("", "the answer is empty"),
])
def test_a_failing_answer_is_replaced_with_a_warning(endpoint, caplog, answer, problem):
    endpoint.answer = answer
    with caplog.at_level(logging.WARNING, logger="pulid_flux.dataset.vlm"):
        result = caption_image(TRIGGER, LEFT, "photo", image=IMAGE, vlm=VLMClient(endpoint.url, "fake-vl"),
                               name="a.jpg")
    assert result.source == "geometric"
    assert result.text == "ohwx man, on the left, with one other person on the right, frontal view, medium shot, photo"
    assert problem in result.warning and result.warning.startswith("a.jpg: the VLM caption was replaced")
    assert any(problem in r.getMessage() for r in caplog.records)


def test_an_unreachable_endpoint_is_one_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(VLMError, match=r"cannot reach the VLM endpoint http://127\.0\.0\.1:\d+/v1/chat/completions"):
        caption_image(TRIGGER, LEFT, image=IMAGE, vlm=VLMClient(url, "fake-vl", timeout=5))


def test_a_refused_request_names_the_key(endpoint):
    endpoint.status = 401
    with pytest.raises(VLMError, match=f"HTTP 401.*invalid api key.*{KEY_ENV}"):
        VLMClient(endpoint.url, "fake-vl").ask(TRIGGER, LEFT, IMAGE)


def test_checks_and_parsing():
    assert chat_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert chat_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert chat_url("https://h/api/chat/completions") == "https://h/api/chat/completions"
    with pytest.raises(VLMError, match="http"):
        chat_url("h:1")
    with pytest.raises(VLMError, match="--vlm-model"):
        VLMClient("http://h:1", "")
    assert stated_position("a man in the middle of the frame, people on the left") == "center"
    assert stated_position("standing at the far right, another man on the left") == "right"
    assert stated_position("left arm raised") is None                     # a body side is not a position
    assert normalize_answer("Caption: 'ohwx man, on the left.'\nsecond line") == "ohwx man, on the left"
    assert check_vlm_caption("ohwx manly, on the left", TRIGGER, LEFT) is not None
    assert check_vlm_caption("ohwx man on the left", TRIGGER, LEFT) is None


def test_prepare_with_the_vlm_end_to_end(endpoint, tmp_path, faces_dir, capsys):
    """pulid-studio dataset prepare --vlm-url: the answer lands in the caption file; an unreachable
    endpoint is one error line (exit 2) and nothing is half-written."""
    pytest.importorskip("dlib")
    from api_client.cli import main

    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes((faces_dir / "photos" / "obama_04.jpg").read_bytes())
    endpoint.answer = "ohwx man, in the center, standing with arms crossed, medium shot, formal room"
    assert main(["dataset", "prepare", str(src), str(tmp_path / "out"), "--trigger", TRIGGER, "--vlm-url",
                 endpoint.url, "--vlm-model", "fake-vl", "-q"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    item = report["items"][0]
    assert item["caption_source"] == "vlm" and report["summary"]["vlm_captions"] == 1
    assert (tmp_path / "out" / item["caption_file"]).read_text().strip() == endpoint.answer

    capsys.readouterr()
    code = main(["dataset", "prepare", str(src), str(tmp_path / "out2"), "--trigger", TRIGGER, "--vlm-url",
                 f"http://127.0.0.1:{free_port()}", "--vlm-model", "fake-vl", "-q"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("pulid-studio: error: ")]
    assert code == 2
    assert len(errors) == 1 and "cannot reach the VLM endpoint" in errors[0]
    assert not list((tmp_path / "out2" / "dataset").iterdir())          # nothing half-written


def test_synthesized_set_captions_through_the_vlm(endpoint, tmp_path):
    """synthesize's captions go through the same check: a wrong side is replaced and recorded."""
    from PIL import Image

    from pulid_flux.synthesis import FilterSettings, View, plan_candidates, write_training_images
    from pulid_flux.synthesis.keep_filter import select

    out = tmp_path / "out"
    candidates = plan_candidates([View("front", yaw=0.0), View("turned", yaw=40.0)], [1])
    for c in candidates:
        (out / c.path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(IMAGE).save(out / c.path)
        c.phash, c.filter_reason = 0, "no_face"
    select(candidates, FilterSettings(per_view=1, verify=False))            # both written unverified
    endpoint.answer = "ohwx man, on the right, three-quarter view, portrait"   # the view asks for the center
    write_training_images(out, candidates, TRIGGER, vlm=VLMClient(endpoint.url, "fake-vl"), portrait=IMAGE)
    for c in candidates:
        assert c.extra["caption_source"] == "geometric" and "puts the subject on the right" in c.extra["caption_warning"]
        assert (out / c.extra["output"]).with_suffix(".txt").read_text().startswith("ohwx man, in the center, ")
    assert len(endpoint.requests) == 2
    endpoint.answer = "ohwx man, in the center, head turned, studio"
    write_training_images(out, candidates, TRIGGER, vlm=VLMClient(endpoint.url, "fake-vl"), portrait=IMAGE)
    assert all(c.extra["caption"] == endpoint.answer and c.extra["caption_source"] == "vlm" for c in candidates)
