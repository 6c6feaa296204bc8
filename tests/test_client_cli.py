"""``pulid-studio convert``: offline (saved /object_info) and against a server."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from api_client import ui_to_api
from api_client.cli import build_parser, main

DATA = Path(__file__).parent / "data"
OBJECT_INFO = DATA / "object_info_min.json"


def _workflow() -> dict:
    return {
        "version": 0.4, "last_node_id": 3, "last_link_id": 2,
        "links": [[1, 1, 0, 2, 0, "LATENT"], [2, 2, 0, 3, 0, "LATENT"]],
        "nodes": [
            {"id": 1, "type": "EmptyLatentImage", "mode": 0, "widgets_values": [512, 768, 2], "inputs": [],
             "outputs": [{"name": "LATENT", "type": "LATENT", "links": [1]}]},
            {"id": 2, "type": "LatentUpscale", "mode": 0, "title": "Upscale", "widgets_values": ["bislerp", 1024, 1536, "disabled"],
             "inputs": [{"name": "samples", "type": "LATENT", "link": 1}], "outputs": [{"name": "LATENT", "type": "LATENT", "links": [2]}]},
            {"id": 3, "type": "Note", "mode": 0, "widgets_values": ["hello"], "inputs": [], "outputs": []},
        ],
    }


@pytest.fixture
def workflow_file(tmp_path) -> Path:
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(_workflow()))
    return path


def test_convert_offline_prints_the_prompt(workflow_file, capsys):
    assert main(["convert", str(workflow_file), "--object-info", str(OBJECT_INFO)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == ui_to_api(_workflow(), json.loads(OBJECT_INFO.read_text()))
    assert printed["2"]["inputs"] == {"upscale_method": "bislerp", "width": 1024, "height": 1536, "crop": "disabled",
                                      "samples": ["1", 0]}
    assert "3" not in printed


def test_convert_applies_overrides_and_writes_a_file(workflow_file, tmp_path):
    out = tmp_path / "api.json"
    code = main(["convert", str(workflow_file), "--object-info", str(OBJECT_INFO), "-o", str(out),
                 "--set", '"Upscale".width=640', "--set", "1.batch_size=4", "--indent", "-1"])
    assert code == 0
    prompt = json.loads(out.read_text())
    assert prompt["2"]["inputs"]["width"] == 640 and prompt["1"]["inputs"]["batch_size"] == 4
    assert "\n" not in out.read_text().strip()


def test_convert_passes_api_prompts_through(tmp_path, capsys):
    api = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 8, "height": 8, "batch_size": 1}}}
    path = tmp_path / "api.json"
    path.write_text(json.dumps(api))
    assert main(["convert", str(path), "--object-info", str(OBJECT_INFO)]) == 0
    assert json.loads(capsys.readouterr().out) == api


def test_convert_reports_errors_with_exit_code_2(tmp_path, capsys):
    bad = _workflow()
    bad["nodes"][0]["type"] = "NotInstalledNode"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["convert", str(path), "--object-info", str(OBJECT_INFO)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pulid-studio: error: ") and "NotInstalledNode" in err and err.count("\n") == 1
    path.write_text("{nope")
    assert main(["convert", str(path), "--object-info", str(OBJECT_INFO)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pulid-studio: error: ") and f"{path} is not valid JSON" in err


def test_convert_fetches_object_info_from_the_server(workflow_file, capsys):
    answers = {"/object_info": OBJECT_INFO.read_bytes(),
               "/system_stats": json.dumps({"system": {"required_frontend_version": "1.49.6"}}).encode()}
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server naming)
            seen.append(self.path)
            self.send_response(200 if self.path in answers else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answers.get(self.path, b"{}"))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert main(["convert", str(workflow_file), "--server", f"127.0.0.1:{server.server_port}"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["/object_info", "/system_stats"]      # the frontend version picks the conversion rules
    assert json.loads(capsys.readouterr().out)["1"]["inputs"] == {"width": 512, "height": 768, "batch_size": 2}


def test_parser_lists_convert_and_requires_a_command():
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args([])
    args = parser.parse_args(["convert", "w.json", "--server", "http://h:1"])
    assert args.command == "convert" and args.server == "http://h:1"


def test_module_entry_point_runs_without_torch(workflow_file):
    # The CLI must not pull in torch (the client side is torch-free).
    code = ("import sys, runpy; sys.argv=['pulid-studio','convert',%r,'--object-info',%r];"
            "import api_client.cli as c; rc=c.main(sys.argv[1:]); assert 'torch' not in sys.modules; sys.exit(rc)"
            % (str(workflow_file), str(OBJECT_INFO)))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["1"]["class_type"] == "EmptyLatentImage"
