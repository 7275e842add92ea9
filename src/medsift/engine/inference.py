"""Predictions of a trained run on loose files (PNG/JPG/DICOM/NIfTI, or folders of them): ``medsift predict``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from medsift.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".nii", ".nii.gz")


def expand_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Files given plus image files found (recursively, sorted) in folders given."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(IMAGE_SUFFIXES)))
        elif p.is_file():
            out.append(p)
        else:
            raise ConfigError(f"input {p} does not exist; expected image files or folders")
    if not out:
        raise ConfigError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) found in {list(map(str, paths))}")
    return out


def file_format(path: Path) -> str:
    """``png``/``jpg``/``dicom``/``nifti`` (other 2D formats read as ``png``) from a file's first bytes."""
    from medsift.io.images import SNIFF_BYTES, sniff_format

    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    fmt = sniff_format(head)
    if fmt == "gzip" and path.name.lower().endswith(".nii.gz"):
        fmt = "nifti"
    if fmt is None:
        raise ConfigError(f"{path}: not a PNG, JPEG, DICOM or NIfTI file (unknown content)")
    return fmt if fmt in ("png", "jpg", "dicom", "nifti") else "png"


def file_domain_warnings(run: str | Path, paths: Sequence[str | Path]) -> list[str]:
    """:func:`medsift.engine.domain.domain_warnings` for loose files given to ``medsift predict``: DICOM/NIfTI
    carry HU, PNG/JPEG files are 8-bit with no known window; DICOM headers give the pixel size."""
    from medsift.engine.domain import domain_warnings
    from medsift.manifest import new_manifest
    from medsift.preprocess.config import PreprocessConfig

    meta = json.loads((Path(run) / "model.json").read_text())
    rows = new_manifest(file_rows(expand_inputs(paths)))  # NIfTI volumes stay in the reader's cache for predict
    return domain_warnings(meta.get("training_data"), rows, PreprocessConfig.from_dict(meta["preprocess"]))


def file_rows(files: Sequence[Path]) -> list[dict[str, Any]]:
    """Manifest rows for loose files: one per 2D image, one per slice of a NIfTI volume (content-sniffed).

    DICOM files of one series (SeriesInstanceUID) become one series ordered by position along the slice normal,
    as ingest orders them, so a 2.5D model sees each slice's real neighbours; any other file is its own series.
    """
    rows = []
    for n, f in enumerate(files):
        fmt = file_format(f)
        base = {"patient_id": f"file{n:05d}", "study_id": f"file{n:05d}", "series_id": f"file{n:05d}",
                "image_path": str(f.resolve()), "format": fmt, "has_hu": fmt in ("dicom", "nifti")}
        if fmt == "nifti":
            from medsift.io.nifti import load_volume

            depth = int(load_volume(str(f.resolve())).shape[2])
            rows.extend({**base, "image_id": f"{n:05d}_{z:04d}", "slice_index": z, "volume_index": z}
                        for z in range(depth))
        else:
            rows.append({**base, "image_id": f"{n:05d}_0000", "slice_index": 0, **_dicom_series_fields(f, fmt)})
    if any(r["format"] == "dicom" for r in rows):
        from medsift.formats.layouts.dicom_tree import order_series

        rows = order_series(rows)
    return rows


def _dicom_series_fields(path: Path, fmt: str) -> dict[str, Any]:
    """Series, position, size and spacing fields of a DICOM file's header (nothing for other formats, or when the
    header names no series: the file then stays a series of its own)."""
    if fmt != "dicom":
        return {}
    from medsift.io.dicom import dicom_info
    from medsift.io.probe import dicom_header_only, dicom_row_fields

    ds = dicom_header_only(path.read_bytes())
    if ds is None:
        return {}
    fields = dicom_row_fields(dicom_info(ds))
    if not fields.get("series_id"):
        return {}
    keep = ("patient_id", "study_id", "series_id", "spacing_mm", "slice_thickness_mm", "width", "height",
            "dicom_instance_number", "dicom_position", "dicom_orientation")
    out = {k: fields[k] for k in keep if fields.get(k) is not None}
    for key in ("dicom_position", "dicom_orientation"):  # stored as JSON text in the manifest, as ingest does
        if key in out:
            out[key] = json.dumps(out[key])
    return out


def predict_files(run: str | Path, paths: Sequence[str | Path], *, gradcam_dir: str | Path | None = None,
                  device: str | None = None) -> list[dict[str, Any]]:
    """Probabilities and labels of a run's model for files/folders.

    Returns:
        One dict per slice: ``path``, ``slice`` (index in its scan), ``scan`` (the DICOM series, else the file),
        ``prob_<label>``, ``<label>`` (0/1 at the run's stored threshold) and, with ``gradcam_dir``, ``gradcam``
        (overlay PNG path). :func:`scan_summary` pools them per scan.
    """
    from medsift.engine.loop import build_loader, predict
    from medsift.engine.runner import load_run
    from medsift.manifest import new_manifest
    from medsift.preprocess.cache import build_cache
    from medsift.tasks.data import SliceDataset

    task, model, meta, dev = load_run(run, device=device)
    if gradcam_dir is not None and getattr(model, "tabular", False):
        raise ConfigError(f"Grad-CAM needs a convolutional network; {run} is a {meta['model']['arch']} model "
                          "(trees on measured features): drop --gradcam")
    files = expand_inputs(paths)
    df = new_manifest(file_rows(files))
    labels = list(meta["labels"])
    thresholds = np.asarray(meta["calibration"].get("thresholds", [0.5] * len(labels)), dtype=np.float64)
    with tempfile.TemporaryDirectory(prefix="medsift-predict-") as tmp:
        cache = build_cache(df, Path(tmp) / "cache", task.config.preprocess_config(), n_jobs=1, progress=False)
        dataset = SliceDataset(cache.images, cache.rows(df), np.zeros((len(df), len(labels)), dtype=np.float32),
                               image_ids=df["image_id"].astype(str).to_numpy(),
                               patients=df["patient_id"].astype(str).to_numpy())
        loader = build_loader(dataset, batch_size=16, num_workers=0, collate=task.collate, pin=False, seed=0)
        preds = predict(task, model, loader, dev)
        order = np.argsort(preds["index"], kind="stable")
        scores = preds["score"][order]
        results = []
        for i, row in enumerate(df.itertuples(index=False)):
            item: dict[str, Any] = {"path": row.image_path, "slice": int(row.slice_index or 0),
                                    "scan": str(row.series_id)}
            for k, name in enumerate(labels):
                item[f"prob_{name}"] = float(scores[i, k])
                item[name] = int(scores[i, k] >= thresholds[k])
            if gradcam_dir is not None:
                item["gradcam"] = str(_gradcam(task, model, dev, dataset, i, Path(gradcam_dir), row.image_id,
                                               Path(row.image_path).name))
            results.append(item)
    return results


def scan_summary(results: Sequence[dict[str, Any]], thresholds: dict[str, float]) -> list[dict[str, Any]]:
    """One row per scan of :func:`predict_files`' results, by max pooling as ``evaluate``'s ``patient_max``
    metrics do: ``scan``, ``slices``, and per label ``max_prob_<label>``, ``slice_<label>`` (where the maximum
    is) and ``<label>`` (1 when the maximum reaches the slice threshold)."""
    scans: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        scans.setdefault(str(r.get("scan", r["path"])), []).append(r)
    out = []
    for scan, rows in scans.items():
        row: dict[str, Any] = {"scan": scan, "slices": len(rows)}
        for name, thr in thresholds.items():
            best = max(rows, key=lambda r: r[f"prob_{name}"])
            row[f"max_prob_{name}"] = float(best[f"prob_{name}"])
            row[f"slice_{name}"] = int(best["slice"])
            row[name] = int(best[f"prob_{name}"] >= thr)
        out.append(row)
    return out


def _gradcam(task, model, device, dataset, i: int, out_dir: Path, image_id: str, name: str) -> Path:
    from medsift.report.gradcam import grad_cam, layer_name, overlay, save_png

    batch = task.collate([dataset[(i, 0)]])
    heat = grad_cam(model, batch["image"].to(device), layer=layer_name(model))
    raw = np.asarray(dataset.images[dataset.positions[i]], dtype=np.float32) / 255.0
    path = out_dir / f"{Path(name).stem}_{image_id}_gradcam.png"
    save_png(path, overlay(raw[raw.shape[0] // 2], heat))
    return path
