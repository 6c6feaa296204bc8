"""report.html of a real ``--tiny`` ablation, opened in Chromium from a file:// URL.

The page must work offline as a folder: no request leaves file://, no console error, every image
loads, and the tables sort on a click. The screenshot goes to the test's folder, or to
docs/report_html.jpg with PULID_STUDIO_WRITE_DOCS=1.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "workflows" / "ablation.yaml"
# The integration tier's tiny models (fingerprinted, so both tiers reuse one build).
TINY_MODELS = Path(tempfile.gettempdir()) / "pulid_studio_runner_tiny_models"
SCREENSHOT = ROOT / "docs" / "report_html.jpg"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def tiny_ablation(comfyui_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_html") / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "api_client.runner", "ablate", str(SPEC),
                           "--launch", str(comfyui_path), "--tiny", "--tiny-models", str(TINY_MODELS),
                           "--max-prompts", "2", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=2400, check=False)
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    return out


@pytest.fixture(scope="module")
def report_page(tiny_ablation, chromium):
    from browser_session import CHROMIUM_FLAGS
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            console, outside = [], []
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: console.append(("pageerror", str(e))))

            def only_files(route):
                if not route.request.url.startswith("file://"):
                    outside.append(route.request.url)
                    return route.abort()
                return route.continue_()

            page.route("**/*", only_files)
            page.goto((tiny_ablation / "report.html").as_uri(), wait_until="load")
            page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
            yield {"page": page, "console": console, "outside": outside, "out": tiny_ablation}
        finally:
            browser.close()


def test_opens_offline_without_console_errors(report_page):
    assert report_page["outside"] == []
    assert [c for c in report_page["console"] if c[0] in ("error", "pageerror")] == []


def test_every_image_loads(report_page):
    page, out = report_page["page"], report_page["out"]
    images = page.evaluate("() => Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")
    gallery = sorted(p.relative_to(out).as_posix() for p in (out / "gallery").glob("*/*.png"))
    assert sorted(src for src, _ in images if src.startswith("gallery/")) == gallery and len(gallery) == 8
    assert "summary_plot.png" in [src for src, _ in images]
    assert all(width > 0 for _, width in images), [src for src, width in images if not width]


def test_tiles_carry_scores_and_the_prompt(report_page):
    page, out = report_page["page"], report_page["out"]
    tiles = page.evaluate("""() => Array.from(document.querySelectorAll('figure.tile')).map(f =>
        [f.className, f.title, Array.from(f.querySelectorAll('.badge')).map(b => b.textContent)])""")
    assert len(tiles) == 8
    import json

    prompts = {json.loads(line)["prompt"] for line in (out / "manifest.jsonl").read_text().splitlines()}
    for class_name, title, badges in tiles:
        assert class_name.split()[1] in ("pass", "fail", "noface") and badges
        assert title.split("\n")[0] in prompts                      # the prompt text on hover
        if "noface" in class_name:
            assert badges == ["no face"]


def _column(page, table: int, col: int) -> list[str]:
    return page.evaluate("([t, c]) => Array.from(document.querySelectorAll('table.sortable')[t].tBodies[0].rows)"
                         ".map(r => r.cells[c].textContent.trim())", [table, col])


def test_tables_sort_on_a_click(report_page):
    page = report_page["page"]
    tables = page.evaluate("() => Array.from(document.querySelectorAll('table.sortable')).map(t => "
                           "Array.from(t.tHead.rows[0].cells).map(c => c.textContent))")
    index = next(i for i, heads in enumerate(tables) if "file" in heads and "seed" in heads)
    heads = tables[index]
    config, file = heads.index("config"), heads.index("file")
    before = list(zip(_column(page, index, config), _column(page, index, file)))
    header = page.locator("table.sortable").nth(index).locator("th").nth(file)
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    ascending = _column(page, index, file)
    assert ascending == sorted(ascending) and sorted(before, key=lambda r: r[1]) != before
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert _column(page, index, file) == sorted(ascending, reverse=True)
    # numbers sort as numbers, blanks ("–", no face) last both ways
    numeric = page.locator("table.sortable").nth(0).locator("th").nth(tables[0].index("no-face rate"))
    numeric.click()
    rates = [float(v.rstrip("%")) for v in _column(page, 0, tables[0].index("no-face rate"))]
    assert rates == sorted(rates)


def test_screenshot(report_page, tmp_path):
    page = report_page["page"]
    page.evaluate("() => window.scrollTo(0, 0)")
    target = SCREENSHOT if os.environ.get("PULID_STUDIO_WRITE_DOCS") == "1" else tmp_path / SCREENSHOT.name
    # The top of the page: the notice, the summary table and the grid with its score badges.
    height = min(1500, page.evaluate("() => document.documentElement.scrollHeight"))
    page.screenshot(path=str(target), quality=85, full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": height})
    assert target.stat().st_size > 20_000
