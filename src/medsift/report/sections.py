"""The report's sections as plain data (tables, figures, galleries, links), gathered from a workspace.

Nothing here writes files: :mod:`medsift.report.html` renders these into one HTML page. Every table and
figure carries a :class:`~medsift.report.figure.Provenance` naming the command (and config file) that
produced what it shows.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from medsift.manifest import SPLITS, label_columns
from medsift.report.figure import Figure, Provenance, figure_from_file
from medsift.workspace import Workspace

GALLERY_PER_CHECK = 6
THUMB_SIZE = 160
MAX_EVAL_PNGS = 24
MODEL_JSON_HIDDEN = frozenset({"config", "state", "command"})  # shown elsewhere or internal
MODEL_SUMMARY_KEYS = frozenset({"task", "labels", "model.arch", "best_epoch", "epochs_run", "stop_reason",
                                "train_seconds", "val", "calibration.thresholds", "workspace", "arch", "params"})
SEVERITY_ORDER = ("critical", "error", "high", "warning", "medium", "info", "low")
_PNG_TITLES = {
    "curves": "Training curves", "confusion": "Confusion matrix", "roc": "ROC curve", "pr": "Precision-recall curve",
    "calibration": "Calibration", "overlays": "Overlays", "gradcam": "Grad-CAM", "detections": "Detections",
    "froc": "FROC", "bland_altman": "Bland-Altman",
}


@dataclass(frozen=True)
class Table:
    """A small table: header and rows of display values."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    provenance: Provenance | None = None
    note: str = ""


@dataclass(frozen=True)
class Thumb:
    """One gallery image (PNG data URI) with its id and caption."""

    image_id: str
    data_uri: str | None  # None: the source file could not be rendered (unreadable, corrupt)
    caption: str


@dataclass(frozen=True)
class Gallery:
    title: str
    thumbs: list[Thumb]
    provenance: Provenance | None = None
    note: str = ""


@dataclass
class Section:
    """A titled block of the report; ``children`` nest (one per run, one per evaluation)."""

    id: str
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    galleries: list[Gallery] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)   # (text, href relative to the report)
    texts: list[tuple[str, str]] = field(default_factory=list)   # (title, preformatted text) shown folded
    children: list["Section"] = field(default_factory=list)


def fmt(value: Any, *, digits: int = 3) -> str:
    """Display a value: floats to ``digits`` significant decimals, NA as an en dash."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if abs(v) >= 1000 or (abs(v) >= 2 and v.is_integer()):  # counts stored as floats (tp, fp, ...)
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    return str(value)


def relpath(path: Path, start: Path) -> str:
    """``path`` relative to folder ``start`` with forward slashes (a link that works next to the report)."""
    return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()


# ---------------------------------------------------------------------------------------------- dataset


def _ingest_summaries(ws: Workspace) -> list[dict[str, Any]]:
    out = []
    for p in sorted((ws.root / "ingest").glob("*/summary.json")):
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return out


def ingest_command(summary: dict[str, Any], ws: Workspace) -> str:
    """The ``medsift ingest`` command line that wrote an ingest summary."""
    return (f"medsift ingest {summary.get('src', 'SRC')} --layout {summary.get('layout', '?')} "
            f"--source {summary.get('source', 'default')} --workspace {ws.root}")


def overview_section(ws: Workspace, df: pd.DataFrame) -> Section:
    """Counts of patients, slices and labels overall and per split; ingest sources; statuses."""
    summaries = _ingest_summaries(ws)
    ingest = Provenance("; ".join(ingest_command(s, ws) for s in summaries) or "medsift ingest SRC --workspace WS",
                        ws.manifest_path)
    version = ws.versions()[-1] if ws.versions() else {}
    excluded = df["excluded"].fillna(False).astype(bool)
    counts = Table("Counts", ["", "value"], [
        ["patients", fmt(df["patient_id"].nunique())],
        ["slices (rows)", fmt(len(df))],
        ["readable (status ok)", fmt(int((df["status"] == "ok").sum()))],
        ["excluded by cleaning", fmt(int(excluded.sum()))],
        ["sources", ", ".join(sorted(df["source"].dropna().unique())) or "–"],
        ["slices with a mask", fmt(int(df["mask_path"].notna().sum()))],
        ["slices with boxes", fmt(int(sum(len(b) > 0 for b in df["boxes"])))],
        ["boxes", fmt(int(sum(len(b) for b in df["boxes"])))],
        ["manifest version", f"v{version.get('version', '?')}, {version.get('created', '–')}"],
        ["last change", _short(str(version.get("reason", "–")), 70)],
    ], provenance=ingest)
    sec = Section("dataset", "Dataset overview", tables=[counts, split_table(df, ws)])
    status = df["status"].value_counts()
    if len(status) > 1 or (len(status) == 1 and status.index[0] != "ok"):
        sec.tables.append(Table("Ingest status", ["status", "slices"], [[k, fmt(int(v))] for k, v in status.items()],
                                provenance=ingest))
    if summaries:
        sec.tables.append(Table("Sources", ["source", "layout", "folder", "rows", "patients", "annotations paired",
                                            "unpaired files"],
                                [[s.get("source"), s.get("layout"), s.get("src"), fmt(s.get("rows")),
                                  fmt(s.get("patients")), fmt(s.get("annotations_paired")),
                                  fmt(s.get("unpaired"))] for s in summaries], provenance=ingest))
    return sec


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def split_table(df: pd.DataFrame, ws: Workspace) -> Table:
    """Patients, slices, excluded and positives per label for each split (and rows without a split)."""
    labels = label_columns(df)
    cols = ["split", "patients", "slices", "excluded"] + [f"{c.removeprefix('label_')} +/−/?" for c in labels]
    groups: list[tuple[str, pd.DataFrame]] = [(s, df[df["split"] == s]) for s in SPLITS if (df["split"] == s).any()]
    if df["split"].isna().any():
        groups.append(("(none)", df[df["split"].isna()]))
    groups.append(("all", df))
    rows = []
    for name, sub in groups:
        row = [name, fmt(sub["patient_id"].nunique()), fmt(len(sub)),
               fmt(int(sub["excluded"].fillna(False).astype(bool).sum()))]
        for c in labels:
            pos, neg = int((sub[c] == 1).sum()), int((sub[c] == 0).sum())
            unk = int(sub[c].isna().sum())
            share = f" ({100 * pos / (pos + neg):.1f}%)" if pos + neg else ""
            row.append(f"{pos:,} / {neg:,} / {unk:,}{share}")
        rows.append(row)
    cfg = ws.root / "splits" / "balance.csv"
    split_done = bool(df["split"].notna().any())
    prov = (Provenance(f"medsift split {ws.root}", cfg if cfg.is_file() else None) if split_done
            else Provenance(f"medsift ingest SRC --workspace {ws.root} (not split yet: `medsift split {ws.root}`)",
                            ws.manifest_path))
    return Table("Class balance per split", cols, rows, provenance=prov,
                 note="+ positive / − negative / ? unknown slices; % = positives among known.")


def clinical_section(ws: Workspace, df: pd.DataFrame) -> Section | None:
    """Summary of the ``clinical_*`` columns joined at ingest, one value per patient."""
    cols = [c for c in df.columns if c.startswith("clinical_")]
    if not cols:
        return None
    per_patient = df.groupby("patient_id")[cols].first()
    numeric, categorical = [], []
    for c in cols:
        v = per_patient[c]
        num = pd.to_numeric(v, errors="coerce")
        name = c.removeprefix("clinical_")
        missing = int(v.isna().sum())
        if num.notna().sum() > 0 and num.notna().sum() == v.notna().sum():
            n = num.dropna()
            numeric.append([name, fmt(len(n)), fmt(missing), fmt(n.mean()), fmt(n.std()) if len(n) > 1 else "–",
                            fmt(n.min()), fmt(n.median()), fmt(n.max())])
        else:
            top = v.dropna().astype(str).value_counts().head(5)
            categorical.append([name, fmt(int(v.notna().sum())), fmt(missing), fmt(int(v.nunique())),
                                ", ".join(f"{k} ({n})" for k, n in top.items())])
    prov = Provenance("medsift ingest SRC --clinical SHEET --workspace " + str(ws.root), ws.manifest_path)
    sec = Section("clinical", "Clinical sheet",
                  intro=f"{len(per_patient)} patients; {len(cols)} clinical columns joined on patient_id.")
    if numeric:
        sec.tables.append(Table("Numeric columns (per patient)",
                                ["column", "n", "missing", "mean", "sd", "min", "median", "max"], numeric, prov))
    if categorical:
        sec.tables.append(Table("Categorical columns (per patient)",
                                ["column", "n", "missing", "distinct", "most frequent"], categorical, prov))
    return sec


def eda_section(ws: Workspace, df: pd.DataFrame) -> Section:
    """Plots of the manifest: class balance, slices per patient, boxes, intensities."""
    from medsift.report import eda

    prov = Provenance(f"medsift report {ws.root}", ws.manifest_path)
    sec = Section("eda", "Exploratory plots")
    for title, png, caption in (
        ("Class balance per split", eda.class_balance_png(df), "Fraction of slices labelled positive."),
        ("Slices per patient", eda.slices_per_patient_png(df), ""),
        ("Boxes", eda.box_sizes_png(df), "Box sizes in pixels and boxes per slice."),
        ("Pixel values", eda.intensity_png(df), f"An evenly spaced sample of up to {eda.INTENSITY_SAMPLE} "
                                                "readable slices, every 4th pixel."),
    ):
        if png is not None:
            sec.figures.append(Figure(title, png, prov, caption))
    return sec


# ---------------------------------------------------------------------------------------------- audit


def _thumb(row: dict[str, Any]) -> str | None:
    import base64

    from medsift.errors import MedsiftError
    from medsift.review.render import Overlay, render_png

    try:
        png = render_png(row, window="brain", overlays=(Overlay.MASK, Overlay.BOXES), size=THUMB_SIZE)
    except (MedsiftError, OSError, ValueError):
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def audit_section(ws: Workspace, df: pd.DataFrame, *, report_dir: Path) -> Section | None:
    """Audit summary, findings per check and severity, a gallery per check, and the audit's own page."""
    from medsift.review.queue import read_findings

    adir = ws.root / "audit"
    findings_path = adir / "findings.csv"
    if not adir.is_dir():
        return None
    prov = Provenance(f"medsift audit {ws.root}", adir / "summary.json" if (adir / "summary.json").is_file() else None)
    sec = Section("audit", "Audit findings")
    if (adir / "report.html").is_file():
        sec.links.append(("the audit's own gallery (audit/report.html)", relpath(adir / "report.html", report_dir)))
    if findings_path.is_file():
        sec.links.append(("all findings (audit/findings.csv)", relpath(findings_path, report_dir)))
    summary = _read_json(adir / "summary.json")
    if summary:
        sec.tables.append(Table("Summary", ["key", "value"], _flatten(summary), prov))
    findings = read_findings(findings_path)
    if findings.empty:
        sec.intro = "No findings."
        return sec
    sev = findings["severity"].fillna("").str.lower()
    levels = [s for s in SEVERITY_ORDER if (sev == s).any()] + sorted(set(sev) - set(SEVERITY_ORDER))
    rows = []
    for check, grp in findings.groupby("check"):
        gs = grp["severity"].fillna("").str.lower()
        rows.append([check, fmt(grp["image_id"].nunique())] + [fmt(int((gs == s).sum())) for s in levels])
    sec.tables.append(Table("Findings per check", ["check", "images"] + [s or "(none)" for s in levels], rows, prov))
    sec.intro = (f"{len(findings):,} findings on {findings['image_id'].nunique():,} images; "
                 f"review them with `medsift review {ws.root}`.")
    rows_by_id = df.set_index("image_id", drop=False)
    for check, grp in findings.groupby("check"):
        grp = grp.assign(score_num=pd.to_numeric(grp["score"], errors="coerce").fillna(0.0))
        grp = grp.sort_values("score_num", ascending=False).drop_duplicates("image_id")
        thumbs = []
        for r in grp.head(GALLERY_PER_CHECK).itertuples():
            if r.image_id not in rows_by_id.index:
                continue
            uri = _thumb(rows_by_id.loc[r.image_id].to_dict())
            thumbs.append(Thumb(r.image_id, uri, f"{r.severity} · {fmt(r.score_num, digits=2)} · {r.detail}"))
        if thumbs:
            sec.galleries.append(Gallery(f"{check}", thumbs, prov,
                                         note=f"top {len(thumbs)} of {len(grp)} by score; mask red, boxes yellow"))
    scores = adir / "scores.parquet"
    if scores.is_file():
        from medsift.report.eda import score_histograms_png

        png = score_histograms_png(pd.read_parquet(scores))
        if png is not None:
            sec.figures.append(Figure("Check scores", png, prov, "Distribution of every check's 0..1 score."))
    for png in sorted(adir.glob("*.png")):
        sec.figures.append(figure_from_file(png, title=_png_title(png), provenance=prov))
    return sec


def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _flatten(obj: Any, prefix: str = "", *, depth: int = 2, limit: int = 60) -> list[list[str]]:
    """Nested dict -> ``[[dotted.key, value], ...]``; lists shown by length past ``depth``."""
    rows: list[list[str]] = []
    if isinstance(obj, dict) and depth > 0:
        for k, v in obj.items():
            rows += _flatten(v, f"{prefix}{k}.", depth=depth - 1, limit=limit)
    elif isinstance(obj, list) and (len(obj) > 8 or any(isinstance(v, (dict, list)) for v in obj)):
        rows.append([prefix.rstrip("."), f"{len(obj)} items"])
    elif isinstance(obj, dict):
        rows.append([prefix.rstrip("."), f"{len(obj)} entries"])
    else:
        rows.append([prefix.rstrip("."), fmt(obj) if not isinstance(obj, list) else ", ".join(fmt(v) for v in obj)])
    return rows[:limit]


def _png_title(path: Path) -> str:
    stem = path.stem.lower()
    for key, title in _PNG_TITLES.items():
        if stem == key or stem.startswith(key + "_") or stem.startswith(key + "-"):
            rest = stem[len(key):].strip("_-").replace("_", " ")
            return f"{title} ({rest})" if rest else title
    return stem.replace("_", " ").capitalize()


# ---------------------------------------------------------------------------------------------- runs


def find_runs(ws: Workspace) -> list[Path]:
    """Run folders under ``WS/runs`` (those with a config.yaml, history.csv or eval/ folder), sorted."""
    runs_dir = ws.root / "runs"
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if p.is_dir() and any(
        (p / n).exists() for n in ("config.yaml", "history.csv", "eval")))


def metrics_table(metrics: dict[str, Any], *, title: str, provenance: Provenance) -> Table:
    """Flat metrics with ``<name>_ci_low`` / ``<name>_ci_high`` keys -> rows ``name | value | 95% CI``."""
    rows = []
    for key, value in metrics.items():
        if key.endswith("_ci_low") or key.endswith("_ci_high"):
            continue
        lo, hi = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
        ci = f"{fmt(lo)} – {fmt(hi)}" if lo is not None and hi is not None else ""
        if isinstance(value, (dict, list)):
            value = json.dumps(value)[:120]
        rows.append([key, fmt(value), ci])
    return Table(title, ["metric", "value", "95% CI"], rows, provenance)


_POOLED = re.compile(r"^patient_([a-z0-9]+)_")


def group_metrics(metrics: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Split flat metrics into slice-level and patient-level groups (``patient_<pooling>_<metric>`` keys).

    Example:
        >>> group_metrics({"auc": 0.9, "patient_max_auc": 0.95})
        [('Metrics (slice level)', {'auc': 0.9}), ('Metrics (patient level, max over slices)', {'auc': 0.95})]
    """
    groups: dict[str, dict[str, Any]] = {"": {}}
    for key, value in metrics.items():
        m = _POOLED.match(key)
        how = m.group(1) if m else ""
        groups.setdefault(how, {})[key[m.end():] if m else key] = value
    out = [("Metrics (slice level)" if len(groups) > 1 else "Metrics", groups.pop(""))]
    out += [(f"Metrics (patient level, {how} over slices)", g) for how, g in groups.items()]
    return [(t, g) for t, g in out if g]


def run_section(run: Path, ws: Workspace, *, report_dir: Path, index: int) -> Section:
    """One trained run: model and config, history, curves, and every evaluation with its metrics and plots."""
    run = Path(run)
    cfg = run / "config.yaml"
    model = _read_json(run / "model.json") or {}
    model = model if isinstance(model, dict) else {}
    train_ws = model.get("workspace", "WS")
    train = Provenance(model.get("command") or f"medsift train {train_ws} --task {model.get('task', 'classify')} "
                                               f"--out {run} --config {cfg}", cfg if cfg.is_file() else None)
    sec = Section(f"run-{index}", f"Run {run.name}")
    if cfg.is_file():
        sec.links.append(("config.yaml", relpath(cfg, report_dir)))
        sec.texts.append(("config.yaml", cfg.read_text(errors="replace")[:20000]))
    if model:
        rows = [r for r in _flatten({k: v for k, v in model.items() if k not in MODEL_JSON_HIDDEN}, depth=2)
                if r[0].split(".")[0] in MODEL_SUMMARY_KEYS or r[0] in MODEL_SUMMARY_KEYS]
        sec.tables.append(Table("Model", ["key", "value"], rows, train, note="all of it in model.json below"))
        sec.texts.append(("model.json", json.dumps(model, indent=1, default=str)[:20000]))
    hist = run / "history.csv"
    if hist.is_file():
        h = pd.read_csv(hist)
        sec.tables.append(_history_table(h, train))
    if (run / "curves.png").is_file():
        sec.figures.append(figure_from_file(run / "curves.png", title="Training curves", provenance=train))
    for ev in sorted(p for p in (run / "eval").glob("*") if p.is_dir()) if (run / "eval").is_dir() else []:
        sec.children.append(_eval_section(run, ev, report_dir=report_dir, parent=sec.id, ws=ws))
    return sec


def _history_table(h: pd.DataFrame, prov: Provenance) -> Table:
    cols = list(h.columns)
    rows = [[fmt(v) for v in r] for r in h.tail(12).itertuples(index=False)]
    note = f"last {min(12, len(h))} of {len(h)} epochs" if len(h) > 12 else f"{len(h)} epochs"
    return Table("History", cols, rows, prov, note=note)


def _eval_section(run: Path, ev: Path, *, report_dir: Path, parent: str, ws: Workspace) -> Section:
    metrics = _read_json(ev / "metrics.json") or {}
    cmd = metrics.pop("command", None) if isinstance(metrics, dict) else None
    name = ev.name
    ws_name, _, split = name.rpartition("-")
    ws_arg = str(ws.root) if ws_name == ws.root.name else (ws_name or "WS")
    prov = Provenance(cmd or f"medsift evaluate {run} --workspace {ws_arg} --split {split or name}",
                      run / "config.yaml" if (run / "config.yaml").is_file() else None)
    check = _read_json(ev / "input_check.json") or {}
    warnings = check.get("warnings", []) if isinstance(check, dict) else []
    sec = Section(f"{parent}-{_slug(name)}", f"Evaluation {name}",
                  intro=" ".join(f"Input check: {w}" for w in warnings))
    if isinstance(metrics, dict) and metrics:
        for title, group in group_metrics(metrics):
            sec.tables.append(metrics_table(group, title=title, provenance=prov))
    for png in sorted(ev.glob("*.png"), key=_figure_order):
        sec.figures.append(figure_from_file(png, title=_png_title(png), provenance=prov))
    for sub in sorted(p for p in ev.iterdir() if p.is_dir()):
        pngs = sorted(sub.rglob("*.png"))
        if not pngs:
            continue
        thumbs = [Thumb(p.stem, figure_from_file(p, title=p.stem, provenance=prov).data_uri, "")
                  for p in pngs[:MAX_EVAL_PNGS]]
        more = f"; {len(pngs) - MAX_EVAL_PNGS} more in {sub.name}/" if len(pngs) > MAX_EVAL_PNGS else ""
        sec.galleries.append(Gallery(_png_title(sub), thumbs, prov, note=f"{len(thumbs)} images{more}"))
        sec.links.append((f"{sub.name}/", relpath(sub, report_dir)))
    for csv in sorted(ev.glob("*.csv")):
        sec.links.append((csv.name, relpath(csv, report_dir)))
    return sec


_FIGURE_FIRST = ("roc", "pr", "froc", "confusion", "calibration")


def _figure_order(path: Path) -> tuple[int, str]:
    """ROC, PR, FROC, confusion, calibration first, then the rest by name."""
    stem = path.stem.lower()
    rank = next((i for i, k in enumerate(_FIGURE_FIRST) if stem == k or stem.startswith(k + "_")), len(_FIGURE_FIRST))
    return rank, stem


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def all_sections(ws: Workspace, df: pd.DataFrame, runs: Iterable[Path], *, report_dir: Path) -> list[Section]:
    """Every section in report order; empty ones are left out."""
    out = [overview_section(ws, df)]
    for make in (lambda: clinical_section(ws, df), lambda: audit_section(ws, df, report_dir=report_dir),
                 lambda: eda_section(ws, df)):
        sec = make()
        if sec is not None:
            out.append(sec)
    for i, run in enumerate(runs):
        out.append(run_section(run, ws, report_dir=report_dir, index=i + 1))
    return out
