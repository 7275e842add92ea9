"""The audit's HTML report: one self-contained file, a gallery per check with the evidence, and EDA plots.

Thumbnails are the audit's 64x64 thumbnails (shown at 128 px) embedded as base64 PNG data URIs; plots are
matplotlib PNGs in ``WS/audit/plots/`` embedded the same way. No network, no CDN, no scripts.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medsift.audit.base import CHECK_NAMES
from medsift.manifest import atomic_write_bytes

MAX_CARDS = 60
SHOW = 128

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin-bottom:4px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
table.sum{border-collapse:collapse}table.sum td,table.sum th{border:1px solid #ccc;padding:4px 10px;text-align:right}
table.sum td:first-child,table.sum th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;width:300px;font-size:12px}
.card.wide{width:420px}.imgs{display:flex;gap:4px;align-items:flex-start}
.imgs figure{margin:0;text-align:center;font-size:11px}.imgs img{image-rendering:pixelated;border:1px solid #999}
.sev-error{color:#b00;font-weight:bold}.sev-warning{color:#b60;font-weight:bold}.sev-info{color:#06b}
.detail{word-break:break-word;margin-top:4px}.note{color:#555;font-size:13px}
.noimg{width:128px;height:128px;background:#eee;display:flex;align-items:center;justify-content:center;color:#900}
img.plot{max-width:100%;border:1px solid #ddd;background:#fff}
"""


def _png_uri(arr: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _file_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _big(thumb: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(thumb, SHOW // thumb.shape[0], axis=0), SHOW // thumb.shape[1], axis=1)


def _overlay(thumb: np.ndarray, row: pd.Series, feats: pd.Series) -> np.ndarray:
    """RGB thumbnail (128 px) with the mask in red and the boxes in green (label_consistency evidence)."""
    from PIL import Image, ImageDraw

    rgb = np.stack([_big(thumb)] * 3, axis=-1).astype(np.float32)
    w, h = max(int(feats.get("img_w", 0)), 1), max(int(feats.get("img_h", 0)), 1)
    mask_path = row.get("mask_path")
    if isinstance(mask_path, str) and mask_path and Path(mask_path).is_file():
        try:
            with Image.open(mask_path) as im:
                m = np.asarray(im.convert("L").resize((SHOW, SHOW), Image.Resampling.NEAREST)) > 0
            rgb[m] = rgb[m] * 0.4 + np.array([255, 0, 0]) * 0.6
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            pass  # an unreadable mask is the integrity check's finding; the evidence image goes without it
    img = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for b in row.get("boxes") or []:
        try:
            x1, y1, x2, y2 = (float(v) for v in b[:4])
        except (TypeError, ValueError):
            continue
        if not np.isfinite([x1, y1, x2, y2]).all():
            continue
        (x1, x2), (y1, y2) = sorted((x1 * SHOW / w, x2 * SHOW / w)), sorted((y1 * SHOW / h, y2 * SHOW / h))
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=(0, 230, 0))  # inverted boxes drawn too
    return np.asarray(img)


def _fig(uri: str | None, caption: str) -> str:
    if uri is None:
        return f'<figure><div class="noimg">no pixels</div>{html.escape(caption)}</figure>'
    return f'<figure><img src="{uri}" width="{SHOW}" height="{SHOW}" alt="{html.escape(caption)}"><br>{html.escape(caption)}</figure>'


class _Gallery:
    def __init__(self, result) -> None:
        self.ctx = result.context
        self.pos = {iid: i for i, iid in enumerate(self.ctx.ids)}

    def thumb(self, iid: str) -> str | None:
        i = self.pos.get(iid)
        if i is None or not self.ctx.readable[i]:
            return None
        return _png_uri(_big(self.ctx.thumbs[i]))

    def overlay(self, iid: str) -> str | None:
        i = self.pos.get(iid)
        if i is None or not self.ctx.readable[i]:
            return None
        return _png_uri(_overlay(self.ctx.thumbs[i], self.ctx.manifest.iloc[i], self.ctx.features.iloc[i]))


def _card(figs: list[str], r: Any, wide: bool = False) -> str:
    sev = html.escape(str(r.severity))
    return (f'<div class="card{" wide" if wide else ""}"><div class="imgs">{"".join(figs)}</div>'
            f'<div><b>{html.escape(str(r.image_id))}</b> <span class="sev-{sev}">{sev}</span> '
            f'score {float(r.score):.2f}</div><div class="detail">{html.escape(str(r.detail))}</div></div>')


def _section(name: str, result, gal: _Gallery) -> str:
    f = result.findings[result.findings["check"] == name]
    summary = result.summary["checks"].get(name)
    head = f'<h2 id="check-{name}">{name}</h2>'
    if summary is None:
        return head + '<p class="note">not run</p>'
    notes = []
    if summary.get("skipped"):
        notes.append(f"skipped: {summary['skipped']}")
    if summary.get("kinds"):
        notes.append("kinds: " + ", ".join(f"{k} {v}" for k, v in summary["kinds"].items()))
    if name == "pairing" and summary.get("extension_only_filename_mismatch"):
        ex = "; ".join(summary.get("extension_only_examples", []))
        notes.append(f"{summary['extension_only_filename_mismatch']} annotations name the image with another "
                     f"extension only (not flagged), e.g. {ex}")
    body = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    if f.empty:
        return head + body + '<p class="note">no findings</p>'
    f = f.sort_values(["score"], ascending=False)
    cards: list[str] = []
    if name == "duplicate":
        seen: set[frozenset] = set()
        for r in f.itertuples(index=False):
            key = frozenset((r.image_id, r.related_id))
            if key in seen:
                continue
            seen.add(key)
            cards.append(_card([_fig(gal.thumb(r.image_id), r.image_id), _fig(gal.thumb(r.related_id), r.related_id)],
                               r, wide=True))
    elif name == "sequence":
        nbrs = {e["image_id"]: e for e in result.results[name].evidence.get("neighbours", [])}
        for r in f.itertuples(index=False):
            e = nbrs.get(r.image_id, {})
            figs = [_fig(gal.thumb(e["prev"]), f"prev {e['prev']}")] if e.get("prev") else []
            figs.append(_fig(gal.thumb(r.image_id), f"this {r.image_id}"))
            if e.get("next"):
                figs.append(_fig(gal.thumb(e["next"]), f"next {e['next']}"))
            cards.append(_card(figs, r, wide=True))
    elif name == "label_consistency":
        for r in f.itertuples(index=False):
            cards.append(_card([_fig(gal.overlay(r.image_id), "mask red, box green")], r))
    elif name == "pairing":
        for r in f.itertuples(index=False):
            figs = [_fig(gal.thumb(r.image_id), r.image_id)] if r.image_id in gal.pos else \
                [_fig(None, "annotation only")]
            cards.append(_card(figs, r))
    else:
        for r in f.itertuples(index=False):
            cards.append(_card([_fig(gal.thumb(r.image_id), r.image_id)], r))
    more = f'<p class="note">showing {MAX_CARDS} of {len(cards)}; all are in findings.csv</p>' if len(cards) > MAX_CARDS else ""
    return head + body + more + '<div class="grid">' + "".join(cards[:MAX_CARDS]) + "</div>"


def _summary_table(result) -> str:
    rows = ["<tr><th>check</th><th>images flagged</th><th>errors</th><th>warnings</th><th>info</th></tr>"]
    for name in CHECK_NAMES:
        s = result.summary["checks"].get(name)
        if s is None:
            continue
        sev = s.get("by_severity", {})
        rows.append(f'<tr><td><a href="#check-{name}">{name}</a></td><td>{s["n_issues"]}</td>'
                    f'<td>{sev.get("error", 0)}</td><td>{sev.get("warning", 0)}</td><td>{sev.get("info", 0)}</td></tr>')
    return '<table class="sum">' + "".join(rows) + "</table>"


def _eda(result, out_dir: Path) -> str:
    from medsift.audit.stats import compute_eda, plot_eda

    ctx = result.context
    if not ctx.readable.any():
        return '<h2 id="eda">statistics</h2><p class="note">no readable images</p>'
    stats = compute_eda(ctx)
    ev = result.results.get("outlier").evidence if "outlier" in result.results else {}
    paths = plot_eda(stats, out_dir / "plots", embedding=ev.get("embedding"), z=ev.get("z"))
    parts = ['<h2 id="eda">statistics</h2>',
             f'<p class="note">classes: {html.escape(str(stats.classes))}; contrast gate (Otsu on the 5-95 % grey-level '
             f'range of non-background pixels) at {stats.gate:.0f}: {html.escape(str(stats.groups))}</p>']
    for name, path in paths.items():
        parts.append(f'<p><img class="plot" src="{_file_uri(path)}" alt="{name}"></p>')
    return "".join(parts)


def render_report(result, out_dir: str | Path) -> str:
    """The report as an HTML string (plots are written to ``out_dir/plots``)."""
    out_dir = Path(out_dir)
    gal = _Gallery(result)
    n = result.summary["n_images"]
    sections = "".join(_section(name, result, gal) for name in CHECK_NAMES)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>medsift audit</title>"
            f"<style>{_CSS}</style></head><body><h1>medsift audit</h1>"
            f'<p class="note">{n} images; scores 0..1 (1 = surely an issue); thumbnails are 64x64 display-scaled.</p>'
            f"{_summary_table(result)}{sections}{_eda(result, out_dir)}</body></html>")


def write_report(result, out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` atomically; returns its path."""
    path = Path(out_dir) / "report.html"
    atomic_write_bytes(path, render_report(result, out_dir).encode("utf-8"))
    return path
