"""``OUT/report.html``: the run report as a page (``report.md``'s content, with every image).

The grid shows every image of the run with its identity scores on it (the prompt text on hover),
then the summary tables (sortable), the plot, the sweep table, the per-prompt rules and how the
run went. Everything it links is inside ``OUT`` (see :mod:`pulid_flux.htmlreport`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .report import TINY_NOTICE, run_facts, sweep_rows

REPORT_HTML = "report.html"



def write_report_html(out_dir: Path, *, result, spec_name: str, spec_path: str, tiny: bool, reference: Sequence[Path],
                      records: Sequence[Mapping[str, Any]], rules: Sequence[str]) -> Path:
    """Write ``OUT/report.html`` from a ``GalleryResult`` and the done records of the scored images."""
    from pulid_flux.htmlreport import Notes, Page, Table, plain_text, write_page
    from pulid_flux.scoring.report_html import gallery_parts, reference_figures

    out_dir = Path(out_dir)
    keys = result.run.keys
    texts = {f"{r['config']}/{Path(str(f)).name}": str(r["prompt"]) for r in records if r.get("prompt")
             for f in r.get("files") or ()}
    facts = [f"Spec: {spec_path}",
             f"Images scored: {sum(len(v) for v in result.images.values())} in {len(result.configs)} configs"]
    facts += [f"Scoring: {k} ({result.run.models.get(k, '?')}), pass threshold {result.run.thresholds[k]:g}"
              for k in keys]
    facts += [("Markdown report (report.md)", "report.md"), ("full-size grid (grid.jpg)", "grid.jpg"),
              ("summary.csv", "summary.csv"), ("run manifest (manifest.jsonl)", "manifest.jsonl")]
    page = Page(f"Ablation report: {spec_name}", notices=[plain_text(TINY_NOTICE)] if tiny else [],
                parts=[Notes("", facts)])
    figures = reference_figures(reference, out_dir)
    if figures is not None:
        page.parts.append(figures)
    page.parts += gallery_parts(result, out_dir, texts=texts)
    sweeps = sweep_rows(out_dir, records, keys[0])
    if sweeps:
        page.parts.append(Table(f"Sweeps ({keys[0]})", ["config", "parameters", "images", "mean", "no-face rate"],
                                [list(row) for row in sweeps], percent=frozenset({"no-face rate"})))
    if rules:
        page.parts.append(Notes("Per-prompt rules", list(rules)))
    page.parts.append(Notes("Run", run_facts(records)))
    return write_page(out_dir / REPORT_HTML, page)
