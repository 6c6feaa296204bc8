"""``report.html``: a self-contained contact sheet (thumbnails inlined) of every input and its decision.

Each thumbnail carries the subject's face box (green), other faces (red; orange dashed when blurred
in the output) and the crop (yellow).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .items import DatasetItem

_CSS = """
body{font-family:system-ui,sans-serif;margin:16px;background:#f4f4f4;color:#222}
h1{font-size:20px;margin:0 0 6px} .meta{margin:0 0 14px;font-size:13px;color:#444}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border-radius:6px;padding:8px;width:272px;box-shadow:0 1px 3px #0002;font-size:12px}
.card.accepted{border-top:4px solid #2a9d4b}.card.rejected{border-top:4px solid #c0392b}
.name{font-weight:600;word-break:break-all;margin:4px 0}
.badge{display:inline-block;padding:1px 6px;border-radius:9px;color:#fff;font-size:11px}
.accepted .badge{background:#2a9d4b}.rejected .badge{background:#c0392b}
.card table{border-collapse:collapse;width:100%}.card td{padding:1px 3px;vertical-align:top}
.card td:first-child{color:#666;width:72px}h2{font-size:17px;margin:24px 0 8px}
.none{width:256px;height:96px;display:flex;align-items:center;justify-content:center;background:#eee;color:#888}
"""


def _jpeg_data_uri(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _rect(box, scale: float, colour: str, dashed: bool = False) -> str:
    x0, y0, x1, y1 = (float(v) * scale for v in box)
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" fill="none" '
            f'stroke="{colour}" stroke-width="2"{dash}/>')


def _thumbnail_svg(item: DatasetItem) -> str:
    if item.thumbnail is None or not item.readable:
        return '<div class="none">no preview</div>'
    th, tw = item.thumbnail.shape[:2]
    scale = tw / item.width
    shapes = []
    blurred = {tuple(round(v, 1) for v in b) for b in (item.crop.blurred if item.crop else [])}
    for i, face in enumerate(item.faces):
        if i == item.subject_index:
            continue
        is_blurred = tuple(round(float(v), 1) for v in face.bbox) in blurred and item.accepted
        shapes.append(_rect(face.bbox, scale, "#e67e22" if is_blurred else "#e74c3c", dashed=is_blurred))
    if item.subject_face is not None:
        shapes.append(_rect(item.subject_face.bbox, scale, "#2ecc71"))
    if item.crop is not None:
        shapes.append(_rect(item.crop.box, scale, "#f1c40f", dashed=not item.accepted))
    return (f'<svg width="{tw}" height="{th}" viewBox="0 0 {tw} {th}" xmlns="http://www.w3.org/2000/svg">'
            f'<image href="{_jpeg_data_uri(item.thumbnail)}" width="{tw}" height="{th}"/>{"".join(shapes)}</svg>')


def _row(label: str, value) -> str:
    return f"<tr><td>{html.escape(label)}</td><td>{value}</td></tr>" if value not in (None, "", []) else ""


def _card(item: DatasetItem, record: dict) -> str:
    esc = html.escape
    status = record["status"] or "rejected"
    rows = [_row("reason", esc(record["reason"] or "")), _row("detail", esc(record["detail"] or ""))]
    if record["similarity"] is not None:
        rows.append(_row("similarity", f'{record["similarity"]:.3f}'))
    if record["face_size"]:
        fs = record["face_size"]
        rows.append(_row("face", f'{fs["px"]:.0f} px, {fs["share"]:.1%} of image'))
    if record["image_size"]:
        rows.append(_row("image", "×".join(map(str, record["image_size"]))))
    rows.append(_row("crop box", esc(str(record["crop_box"])) if record["crop_box"] else None))
    rows.append(_row("shot", esc(record["shot"] or "")) if record["output"] else "")
    if record["output"]:
        size = "×".join(map(str, record["output_size"]))
        rows.append(_row("output", f'<a href="{esc(record["output"])}">{esc(record["output"])}</a> ({size})'))
        rows.append(_row("caption", esc(record["caption"] or "")))
    if record["blurred_faces"] and record["output"]:
        rows.append(_row("blurred", f'{len(record["blurred_faces"])} other face(s)'))
    if record["duplicate_of"]:
        rows.append(_row("same as", esc(record["duplicate_of"])))
    return (f'<div class="card {status}">{_thumbnail_svg(item)}<div class="name">{esc(record["file"])}</div>'
            f'<span class="badge">{esc(status)}</span><table>{"".join(rows)}</table></div>')


def _table(report: dict) -> str:
    """Every input as one sortable row (click a heading)."""
    from ..htmlreport import Table, render_table

    rows = []
    for record in report["items"]:
        size = record["image_size"]
        face = record["face_size"]
        rows.append([record["file"], record["status"] or "rejected", record["reason"] or "", record["similarity"],
                     face["px"] if face else None, (f"{size[0]}×{size[1]}", size[0] * size[1]) if size else None,
                     record["shot"] if record["output"] else "", record["output"] or ""])
    return render_table(Table("Every photo", ["file", "status", "reason", "similarity", "face px", "image", "shot",
                                              "output"], rows, decimals={"face px": 0},
                              note="Click a heading to sort."))


def write_contact_sheet(path, items: Sequence[DatasetItem], report: dict) -> Path:
    from ..htmlreport import SORT_SCRIPT, TABLE_CSS

    esc = html.escape
    subject = report["subject"]
    summary = report["summary"]
    reasons = ", ".join(f"{k}: {v}" for k, v in summary["reasons"].items()) or "none"
    head = (f"<h1>Dataset for “{esc(report['trigger'])}”</h1><div class='meta'>{summary['accepted']} accepted, "
            f"{summary['rejected']} rejected ({esc(reasons)}) of {summary['inputs']} inputs. Subject: "
            f"{esc(str(subject.get('method')))} ({esc(str(subject.get('engine')))}, threshold "
            f"{subject.get('threshold')}, {subject.get('photos')} photo(s)). Config: "
            f"<a href='{esc(report['config'])}'>{esc(report['config'])}</a>. Boxes: subject green, other faces red "
            f"(orange dashed = blurred), crop yellow.</div>")
    cards = "".join(_card(item, record) for item, record in zip(items, report["items"]))
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Dataset report</title>"
            f"<style>{_CSS}{TABLE_CSS}</style></head><body>{head}<div class='grid'>{cards}</div>{_table(report)}"
            f"{SORT_SCRIPT}</body></html>\n")
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
