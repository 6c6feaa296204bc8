"""Screenshot of ComfyUI's canvas with a shipped workflow loaded (default: 04_full ->
docs/canvas_04_full.png), taken in headless Chromium on the real frontend.

The pose nodes that need no model file are run first, so their skeleton previews show. Model
checks are skipped: the workflow names the real model files, which the throw-away server lacks.

    python tools/screenshot_canvas.py --comfyui "$COMFYUI_PATH"          # starts a throw-away server
    python tools/screenshot_canvas.py --server http://127.0.0.1:8188    # a running ComfyUI with this pack
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORKFLOW = ROOT / "workflows" / "04_full.json"
DEFAULT_OUT = ROOT / "docs" / "canvas_04_full.png"
MAX_BYTES = 500_000
VIEWPORT = {"width": 2200, "height": 1400}   # the whole graph at ~75 % zoom: titles and values stay legible
#: nodes that run without any model file -> the output slot of their pose image
MODEL_FREE_POSE_NODES = {"PulidStudioPoseFromBank": 1}

log = logging.getLogger("screenshot_canvas")


def _import_session():
    sys.path.insert(0, str(ROOT / "tests" / "browser"))
    import browser_session
    return browser_session


def run_pose_previews(frontend, api_prompt: dict, timeout_s: float = 120) -> list[str]:
    """Queue the model-free pose nodes of ``api_prompt`` (each feeding a PreviewImage) and wait until
    the canvas shows their previews; returns their node ids."""
    ids = [k for k, v in api_prompt.items() if v.get("class_type") in MODEL_FREE_POSE_NODES]
    if not ids:
        return []
    prompt = {}
    for node_id in ids:
        prompt[node_id] = api_prompt[node_id]
        slot = MODEL_FREE_POSE_NODES[api_prompt[node_id]["class_type"]]
        prompt[f"preview_{node_id}"] = {"class_type": "PreviewImage", "inputs": {"images": [node_id, slot]}}
    frontend.queue_prompt(prompt)
    frontend.wait_for("""(ids) => ids.every((id) => {
        const node = window.app.graph.getNodeById(Number(id));
        return node && node.imgs && node.imgs.length && node.imgs.every((img) => img.complete && img.naturalWidth);
    })""", ids, timeout_s=timeout_s)
    return ids


def shrink_png(path: Path, max_bytes: int = MAX_BYTES) -> Path:
    """Re-encode ``path`` with a 256-colour palette when it is larger than ``max_bytes``."""
    if path.stat().st_size <= max_bytes:
        return path
    from PIL import Image

    with Image.open(path) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    path.write_bytes(buffer.getvalue())
    return path


def capture(frontend, workflow_path: Path, out: Path, *, pose_preview: bool = True) -> Path:
    """Load ``workflow_path`` (UI format) in ``frontend``, fit it in view and write the canvas PNG."""
    workflow = json.loads(Path(workflow_path).read_text(encoding="utf-8"))
    # Settings first: changing them later re-runs the frontend's model checks on the loaded graph.
    frontend.evaluate("""async () => {
        const ext = window.app.extensionManager;
        await ext.setting.set('Comfy.Minimap.Visible', false);
        await ext.setting.set('Comfy.Graph.CanvasInfo', false);
        await ext.setting.set('LiteGraph.Canvas.MinFontSizeForLOD', 0);   // full detail at any zoom
        if (!ext.focusMode) ext.toggleFocusMode();                         // no menus over the canvas
    }""")
    missing = frontend.load_workflow(workflow, skip_asset_scans=True)
    if missing:
        raise RuntimeError(f"the frontend does not know these node types: {missing}")
    twin = Path(workflow_path).with_name(Path(workflow_path).stem + "_api.json")
    if pose_preview and twin.is_file():
        run_pose_previews(frontend, json.loads(twin.read_text(encoding="utf-8")))
    frontend.fit_graph()
    frontend.screenshot_canvas(out)
    return shrink_png(out)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--server", help="a running ComfyUI with this pack")
    group.add_argument("--comfyui", help="a ComfyUI checkout to start on a free port")
    parser.add_argument("--workflow", type=Path, default=DEFAULT_WORKFLOW, help="UI-format workflow to show")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    parser.add_argument("--no-pose-preview", action="store_true", help="do not run the model-free pose nodes")
    a = parser.parse_args(argv)

    session = _import_session()
    chromium = session.find_chromium()
    if chromium is None:
        parser.error("no chromium found (apt-get install chromium, or set PULID_STUDIO_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="screenshot_canvas_") as base:
        server = None
        url = a.server
        if a.comfyui:
            sys.path.insert(0, str(ROOT / "tests" / "integration"))
            from comfy_server import ComfyServer
            server = ComfyServer(Path(a.comfyui), Path(base)).start()
            url = server.url
        try:
            with session.open_frontend(url, chromium, viewport=VIEWPORT) as frontend:
                path = capture(frontend, a.workflow, a.out, pose_preview=not a.no_pose_preview)
        finally:
            if server is not None:
                server.stop()
    log.info("wrote %s (%d bytes)", path, path.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
