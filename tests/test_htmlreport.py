"""pulid_flux.htmlreport: the self-contained report page (structure and links; the browser tier
opens a real one in Chromium)."""

import re
from types import SimpleNamespace

from PIL import Image

from pulid_flux.htmlreport import (Badge, Figures, Grid, Notes, Page, Table, Tile, links, plain_text, render_page,
                                   score_badges, write_page)
from pulid_flux.scoring.report_html import image_ref


def test_table_cells_carry_sort_keys_and_formats():
    table = Table("t", ["name", "mean", "rate", "px", "rank"],
                  [["b", 0.5, 0.25, 57.2, ("second", 2)], ["a", None, 1.0, None, ("first", 1)],
                   ["c", float("nan"), 0.0, 12.0, ("third", 3)]],
                  percent=frozenset({"rate"}), decimals={"px": 1})
    html = render_page(Page("p", parts=[table]))
    heads = re.findall(r"<th([^>]*)>([^<]*)</th>", html)
    assert heads == [("", "name"), (" data-type=number", "mean"), (" data-type=number", "rate"),
                     (" data-type=number", "px"), (" data-type=number", "rank")]
    assert '<td class="num" data-sort="0.5">0.500</td>' in html
    assert '<td class="num" data-sort="0.25">25%</td>' in html
    assert '<td class="num" data-sort="57.2">57.2</td>' in html
    assert html.count('<td class="num" data-sort="">–</td>') == 3          # None and NaN: blank, sorted last
    assert '<td data-sort="2">second</td>' in html


def test_text_is_escaped_and_paths_are_urls(tmp_path):
    tile = Tile("gallery/my config/01 a&b.png", [Badge("0.512", "pass"), Badge('no "face"', "noface")], "pass",
                caption="s42", hover='a <red> "fox"')
    grid = Grid("Images", ["r<1>"], ["c&1", "c2"], {("r<1>", "c&1"): [tile]}, row_hover={"r<1>": "the <prompt>"})
    html = render_page(Page('Report "x"', notices=["<b>tiny</b>"],
                            parts=[grid, Notes("n", ["plain", ("a link", "eval/x y.csv")])]))
    assert 'src="gallery/my%20config/01%20a%26b.png"' in html
    assert 'title="a &lt;red&gt; &quot;fox&quot;"' in html and 'title="the &lt;prompt&gt;"' in html
    assert "<b>tiny</b>" not in html and "&lt;b&gt;tiny&lt;/b&gt;" in html
    assert '<span class="badge noface">no &quot;face&quot;</span>' in html
    assert '<div class="empty">–</div>' in html                               # the empty c2 cell
    assert 'href="eval/x%20y.csv"' in html
    assert all("://" not in link for link in links(html))


def test_write_page_is_atomic_and_complete(tmp_path):
    path = write_page(tmp_path / "sub" / "report.html", Page("t", parts=[Figures("f", [("plot.png", "a plot")])]))
    assert path.read_text().endswith("</html>\n") and [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_score_badges_first_engine_decides():
    scores = {"dlib": SimpleNamespace(similarity=0.95), "insightface": SimpleNamespace(similarity=None)}
    badges, status = score_badges(scores, {"dlib": 0.918, "insightface": 0.3})
    assert [(b.text, b.status) for b in badges] == [("dlib 0.950", "pass"), ("insightface no face", "noface")]
    assert status == "pass"
    badges, status = score_badges({"dlib": SimpleNamespace(similarity=0.5)}, {"dlib": 0.918})
    assert [(b.text, b.status) for b in badges] == [("0.500", "fail")] and status == "fail"


def test_images_outside_the_folder_become_thumbnails(tmp_path):
    page_dir = tmp_path / "out"
    (page_dir / "gallery").mkdir(parents=True)
    inside = page_dir / "gallery" / "a.png"
    Image.new("RGB", (64, 32)).save(inside)
    outside = tmp_path / "photos" / "big.png"
    outside.parent.mkdir()
    Image.new("RGB", (1200, 800), (200, 10, 10)).save(outside)
    assert image_ref(inside, page_dir) == "gallery/a.png"
    ref = image_ref(outside, page_dir)
    assert ref.startswith("thumbs/big_") and ref.endswith(".jpg")
    assert Image.open(page_dir / ref).size == (384, 256)
    assert image_ref(outside, page_dir) == ref                                # reused, same name


def test_plain_text_drops_the_markdown_a_report_line_carries():
    assert plain_text("> **Tiny run: NOT real results.** see `--tiny`") == "Tiny run: NOT real results. see --tiny"
    assert plain_text("a > b, 2 * 3") == "a > b, 2  3"      # a quote mark only counts at the start
