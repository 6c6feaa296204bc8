"""Drive ComfyUI's real web frontend in headless Chromium (Playwright on the system's chromium).

Used by the browser tests and by ``tools/screenshot_canvas.py``. Nothing here downloads a browser:
the executable is ``$PULID_STUDIO_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
PACK_EXTENSION = "pulid_flux_studio.FacePicker"
PACK_WEB_PATH = "/extensions/pulid_flux_studio/"
VIEWPORT = {"width": 1600, "height": 1000}

#: Console errors that a fresh ComfyUI (0.8.0 to 0.33) frontend on a closed network logs by itself (all
#: seen with an empty web/ folder too), as (message pattern, source-URL pattern or None, why it is harmless).
BENIGN_CONSOLE_ERRORS = (
    (r"^Failed to load resource: the server responded with a status of 404",
     r"/api/userdata[/?]|/user\.css$",
     "a fresh user folder has no user.css, saved workflows, subgraphs or comfy.templates.json"),
    (r"^Failed to load resource: the server responded with a status of 404", r"/favicon\.ico$",
     "the 1.35 frontend of ComfyUI 0.8.0 declares no icon, so Chromium asks for /favicon.ico"),
    (r"^ComfyApp graph accessed before initialization$", None,
     "a Vue computed of the frontend itself reads app.rootGraph during start-up (stack: settingStore chunk)"),
    (r"api\.comfy\.org.*violates the following Content Security Policy directive", None,
     ("--disable-api-nodes forbids the registry look-up (api.comfy.org) the frontend tries for unknown node "
      "types (only in the deliberate missing-node check)")),
)


@dataclass
class ConsoleEntry:
    level: str          # console level ("error", "warning", ...) or "pageerror" for uncaught exceptions
    text: str
    url: str = ""

    def is_benign(self) -> bool:
        if self.level != "error":
            return False
        for message, source, _ in BENIGN_CONSOLE_ERRORS:
            if re.search(message, self.text) and (source is None or re.search(source, self.url or self.text)):
                return True
        return False


def find_chromium() -> str | None:
    candidate = (os.environ.get("PULID_STUDIO_CHROMIUM") or shutil.which("chromium")
                 or shutil.which("chromium-browser"))
    return candidate if candidate and Path(candidate).exists() else None


class FrontendPage:
    """One browser tab on a ComfyUI server, with its console recorded from the first request."""

    def __init__(self, page, url: str):
        self.page = page
        self.url = url.rstrip("/")
        self.console: list[ConsoleEntry] = []
        self.responses: dict[str, int] = {}
        page.on("console", lambda m: self.console.append(ConsoleEntry(m.type, m.text, m.location.get("url", ""))))
        page.on("pageerror", lambda e: self.console.append(ConsoleEntry("pageerror", str(e))))
        page.on("response", lambda r: self.responses.__setitem__(r.url, r.status))

    def open(self, timeout_ms: int = 120_000) -> FrontendPage:
        # On a user's first launch the frontend opens its template browser over the canvas.
        request = urllib.request.Request(self.url + "/settings/Comfy.TutorialCompleted", data=b"true", method="POST",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).close()
        self.page.goto(self.url + "/", wait_until="load", timeout=timeout_ms)
        # vueAppReady: extensions registered, node definitions loaded, first graph set up.
        self.page.wait_for_function("() => window.app && window.app.vueAppReady && window.comfyAPI.api.api.clientId",
                                    timeout=timeout_ms)
        return self

    # ------------------------------------------------------------------ console
    def errors(self, since: int = 0) -> list[ConsoleEntry]:
        return [e for e in self.console[since:] if e.level in ("error", "pageerror")]

    def unexpected_errors(self, since: int = 0) -> list[ConsoleEntry]:
        return [e for e in self.errors(since) if not e.is_benign()]

    # ------------------------------------------------------------------ graph
    def evaluate(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def load_workflow(self, workflow: dict, *, skip_asset_scans: bool = False) -> list[dict]:
        """Load a UI-format workflow into the canvas; returns the node types the frontend's own
        missing-node check reported (it fills the list given to the ``beforeConfigureGraph`` hook).

        ``skip_asset_scans`` skips the frontend's missing-model/media checks (which outline loaders of
        model files this server does not have in red), e.g. for documentation screenshots.
        """
        return self.evaluate("""async ([wf, skipAssetScans]) => {
            const app = window.app;
            if (!window.__pulidMissingProbe) {
                window.__pulidMissingProbe = { last: [] };
                app.registerExtension({ name: "pulid_flux_studio.test.missing_nodes_probe",
                    beforeConfigureGraph(graphData, missing) { window.__pulidMissingProbe.last = missing; } });
            }
            window.__pulidMissingProbe.last = [];
            await app.loadGraphData(wf, true, true, null, { skipAssetScans });
            return window.__pulidMissingProbe.last.map((m) => (typeof m === "string" ? { type: m } : { type: m.type }));
        }""", [workflow, skip_asset_scans])

    def graph_to_prompt(self) -> dict:
        # JSON.stringify, as api.queuePrompt sends it (drops undefined values).
        return json.loads(self.evaluate("async () => JSON.stringify((await window.app.graphToPrompt()).output)"))

    def queue_prompt(self, prompt: dict) -> str:
        """POST an API prompt with this tab's client id, so its websocket receives the node events."""
        status, body = self.evaluate("""async (prompt) => {
            const api = window.comfyAPI.api.api;
            const r = await fetch(api.apiURL('/prompt'), { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                 body: JSON.stringify({ prompt, client_id: api.clientId }) });
            return [r.status, await r.text()];
        }""", prompt)
        if status != 200:
            raise AssertionError(f"/prompt answered {status}: {body}")
        return json.loads(body)["prompt_id"]

    def show_node(self, node_id: int, scale: float = 1.0, margin: float = 80) -> None:
        self.evaluate("""([id, scale, margin]) => {
            const node = window.app.graph.getNodeById(id), ds = window.app.canvas.ds;
            ds.scale = scale;
            ds.offset = [-node.pos[0] + margin / scale, -node.pos[1] + (margin + 40) / scale];
            window.app.canvas.setDirty(true, true);
        }""", [node_id, scale, margin])
        self.page.wait_for_timeout(150)

    def fit_graph(self, padding: float = 40) -> None:
        """Scale and centre the canvas on all nodes (the frontend's own fit keeps a toolbar margin)."""
        self.evaluate("""(padding) => {
            const app = window.app, ds = app.canvas.ds, el = app.canvas.canvas;
            const title = window.LiteGraph.NODE_TITLE_HEIGHT;
            let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
            for (const n of app.graph.nodes) {
                x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - title);
                x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
            }
            const rect = el.getBoundingClientRect();
            const scale = Math.min((rect.width - 2 * padding) / (x1 - x0), (rect.height - 2 * padding) / (y1 - y0));
            ds.scale = scale;
            ds.offset = [rect.width / (2 * scale) - (x0 + x1) / 2, rect.height / (2 * scale) - (y0 + y1) / 2];
            app.canvas.setDirty(true, true);
        }""", padding)
        self.page.wait_for_timeout(300)

    def client_point(self, node_id: int, local_x: float, local_y: float) -> tuple[float, float]:
        """Page coordinates of a point given in a node's local coordinates (origin: top-left of its body)."""
        x, y = self.evaluate("""([id, lx, ly]) => {
            const node = window.app.graph.getNodeById(id), ds = window.app.canvas.ds;
            const rect = window.app.canvas.canvas.getBoundingClientRect();
            return [rect.left + (node.pos[0] + lx + ds.offset[0]) * ds.scale,
                    rect.top + (node.pos[1] + ly + ds.offset[1]) * ds.scale];
        }""", [node_id, local_x, local_y])
        return x, y

    def canvas_pixel(self, node_id: int, local_x: float, local_y: float) -> tuple[int, int, int]:
        """RGB of the canvas at a node-local point (after a fresh draw)."""
        return tuple(self.evaluate("""async ([id, x, y]) => {
            const app = window.app, node = app.graph.getNodeById(id), ds = app.canvas.ds, el = app.canvas.canvas;
            app.canvas.draw(true, true);
            const ratio = el.width / el.getBoundingClientRect().width;
            const px = Math.round((node.pos[0] + x + ds.offset[0]) * ds.scale * ratio);
            const py = Math.round((node.pos[1] + y + ds.offset[1]) * ds.scale * ratio);
            return Array.from(el.getContext('2d').getImageData(px, py, 1, 1).data.slice(0, 3));
        }""", [node_id, local_x, local_y]))

    def click(self, x: float, y: float) -> None:
        """A real pointer click: LiteGraph needs the move before the press to know what is under it."""
        self.page.mouse.move(x, y)
        self.page.wait_for_timeout(50)
        self.page.mouse.down()
        self.page.wait_for_timeout(50)
        self.page.mouse.up()
        self.page.wait_for_timeout(100)

    def screenshot_canvas(self, path: Path) -> Path:
        """The canvas area of the page (DOM widgets such as prompt text boxes included) as a PNG."""
        box = self.evaluate("() => { const r = window.app.canvas.canvas.getBoundingClientRect(); "
                            "return {x: r.left, y: r.top, width: r.width, height: r.height}; }")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), clip=box)
        return path

    def wait_for(self, script: str, arg=None, timeout_s: float = 120) -> None:
        self.page.wait_for_function(script, arg=arg, timeout=timeout_s * 1000)


@contextmanager
def open_frontend(url: str, chromium: str, viewport: dict | None = None):
    """A FrontendPage on ``url`` in a fresh headless Chromium; closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport=viewport or VIEWPORT)
            started = time.monotonic()
            frontend = FrontendPage(page, url).open()
            frontend.load_seconds = time.monotonic() - started
            yield frontend
        finally:
            browser.close()
