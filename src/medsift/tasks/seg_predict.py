"""Segmentation predictions of a trained run on loose files: the ``segment`` side of ``medsift predict``.

Loose PNG/JPG files are single slices (a 2.5D model sees the slice repeated as its neighbours); DICOM files of
one series and NIfTI volumes give each slice its real neighbours. Masks come back in each file's pixels, out of
the head square too when the run crops to it (``preprocess.crop_head``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def predict_segment_files(run: str | Path, paths: Sequence[str | Path], *, out_dir: str | Path | None = None,
                          overlay: bool = False, device: str | None = None, gate_run: str | Path | None = None,
                          gate_threshold: float | None = None) -> list[dict[str, Any]]:
    """Lesion masks of a ``segment`` run for image files or folders.

    Args:
        run: run folder (``model.json`` + ``best.pt``) of a segment task.
        paths: files or folders (PNG/JPG/DICOM/NIfTI).
        out_dir: where to write ``<file stem>_<slice>_mask.png`` (0/255) and, with ``overlay``,
            ``..._overlay.png`` (prediction in red on the slice); for a NIfTI input also ``<file stem>_mask.nii.gz``,
            a uint8 label volume with the input's shape, affine and header (opens on the scan in any viewer);
            nothing is written when None.
        overlay: also write overlays (needs ``out_dir``).
        device: torch device (default: the run's).
        gate_run: a classify run: slices it scores below ``gate_threshold`` (default: its stored threshold) get
            an empty mask (the cascade of :mod:`medsift.label.seg_cascade`).

    Returns:
        One dict per slice: ``path``, ``slice``, ``lesion`` (0/1: at least ``min_lesion_pixels`` predicted in the
        model's frame), ``lesion_pixels`` (in the file's pixels), ``max_prob``, with ``gate_run`` also
        ``gate_prob``, and ``mask``/``overlay`` (and for NIfTI ``mask_volume``) file paths when written. The mask
        PNG has the file's own height and width (the model's S x S output is resized back), so it lies on the
        image it came from; so is the overlay, which shows the model's view (its window) resized to the file's size.
    """
    from medsift.engine.inference import expand_inputs, file_rows
    from medsift.engine.loop import build_loader, predict
    from medsift.engine.runner import load_run
    from medsift.errors import ConfigError
    from medsift.formats.masks import write_mask_png
    from medsift.manifest import atomic_write_bytes, new_manifest
    from medsift.preprocess.cache import build_cache
    from medsift.tasks import seg_outputs as so
    from medsift.tasks.segment import SegmentDataset, slice_scores

    task, model, meta, dev = load_run(run, device=device)
    if meta.get("task") != "segment":
        raise ConfigError(f"{run} is a {meta.get('task')!r} run; predict_segment_files needs a segment run")
    if overlay and out_dir is None:
        raise ConfigError("overlay=True needs out_dir to write the overlay PNGs into")
    files = expand_inputs(paths)
    df = new_manifest(file_rows(files))
    calibration = meta.get("calibration", {})
    with tempfile.TemporaryDirectory(prefix="medsift-segpredict-") as tmp:
        cache = build_cache(df, Path(tmp) / "cache", task.config.preprocess_config(), n_jobs=1, progress=False)
        pos = cache.rows(df)
        dataset = SegmentDataset(cache.images, cache.masks, pos, options=task.options, train=False)
        loader = build_loader(dataset, batch_size=4, num_workers=0, collate=task.collate, pin=False, seed=0)
        preds = predict(task, model, loader, dev)
        order = np.argsort(preds["index"], kind="stable")
        probs = preds["prob"][order]
        pre = cache.config
        center = int(pre.context) * len(pre.windows)
        images = [np.asarray(cache.images[p, center]) for p in pos]
        gate = None
        if gate_run is not None:
            from medsift.engine.inference import predict_files
            from medsift.label.seg_cascade import classifier_threshold

            t = float(gate_threshold) if gate_threshold is not None else classifier_threshold(gate_run)
            label = f"prob_{json.loads((Path(gate_run) / 'model.json').read_text())['labels'][0]}"
            scored = {(r["path"], r["slice"]): r[label] for r in predict_files(gate_run, files, device=device)}
            gate = [scored[(row.image_path, int(row.slice_index or 0))] for row in df.itertuples(index=False)]
            probs = np.where((np.asarray(gate) >= t)[:, None, None], probs, 0).astype(np.uint8)
        masks = task.masks_from_probs(probs, images, calibration=calibration)
        maxp = slice_scores(probs)
        frames = list(zip(cache.index["orig_height"].to_numpy()[pos], cache.index["orig_width"].to_numpy()[pos]))
        squares = cache.head_squares(pos)
    results: list[dict[str, Any]] = []
    masks_by_row: list[np.ndarray] = []
    for i, row in enumerate(df.itertuples(index=False)):
        lesion = int(masks[i].sum()) >= task.options.min_lesion_pixels
        mask = to_file_frame(masks[i], frames[i], square=squares[i])
        masks_by_row.append(mask)
        item: dict[str, Any] = {"path": row.image_path, "slice": int(row.slice_index or 0), "lesion": int(lesion),
                                "lesion_pixels": int(mask.sum()), "max_prob": float(maxp[i])}
        if gate is not None:
            item["gate_prob"] = float(gate[i])
        if out_dir is not None:
            stem = f"{Path(row.image_path).name.split('.')[0]}_{item['slice']:04d}"
            item["mask"] = str(write_mask_png(Path(out_dir) / f"{stem}_mask.png", mask))
            if overlay:
                path = Path(out_dir) / f"{stem}_overlay.png"
                view = to_file_frame(images[i], frames[i], square=squares[i], binary=False)
                atomic_write_bytes(path, so.png_bytes(so.overlay(view, None, mask)))
                item["overlay"] = str(path)
        results.append(item)
    if out_dir is not None:
        _write_label_volumes(Path(out_dir), df, results, masks_by_row)
    return results


def _write_label_volumes(out_dir: Path, df, results: list[dict[str, Any]], masks: list[np.ndarray]) -> None:
    """``<stem>_mask.nii.gz`` per NIfTI input: the slices' masks stacked back in the input's voxel layout
    (slice ``k`` of the image is ``data[:, :, k].T``, :mod:`medsift.io.nifti`), with its affine and header."""
    import gzip

    import nibabel as nib

    from medsift.manifest import atomic_write_bytes

    rows = [i for i, fmt in enumerate(df["format"]) if fmt == "nifti"]
    for path in dict.fromkeys(str(df["image_path"].iloc[i]) for i in rows):
        source = nib.load(path)
        shape = (tuple(int(s) for s in source.shape[:3]) + (1, 1))[:3]  # a 2D image is one slice (X, Y, 1)
        label = np.zeros(shape, dtype=np.uint8)
        mine = [i for i in rows if str(df["image_path"].iloc[i]) == path]
        for i in mine:
            label[:, :, int(results[i]["slice"])] = masks[i].T
        header = source.header.copy()
        header.set_data_dtype(np.uint8)
        header.set_slope_inter(1.0, 0.0)
        image = type(source)(label, source.affine, header)  # NIfTI-1 stays NIfTI-1, NIfTI-2 stays NIfTI-2
        target = out_dir / f"{Path(path).name.split('.')[0]}_mask.nii.gz"
        atomic_write_bytes(target, gzip.compress(image.to_bytes(), mtime=0))
        for i in mine:
            results[i]["mask_volume"] = str(target)


def to_file_frame(mask: np.ndarray, frame: tuple[Any, Any], *, square: tuple[int, int, int] | None = None,
                  binary: bool = True) -> np.ndarray:
    """A 0/1 mask in the model's S x S frame resized to the file's ``(height, width)`` (bilinear, then >= 0.5, so
    an upscaled outline stays smooth); unchanged when the sizes already match or the frame is unknown. With the
    ``(y0, x0, side)`` head ``square`` the slice was cropped to (``preprocess.crop_head``), the mask is resized
    to the square and put back where the square lies (0 elsewhere). ``binary=False`` maps a grey image the same
    way (bilinear, rounded back to its dtype)."""
    from medsift.preprocess.resample import resize_image
    from medsift.preprocess.skull import paste_square

    try:
        h, w = int(frame[0]), int(frame[1])
    except (TypeError, ValueError):
        return mask
    target = (int(square[2]),) * 2 if square is not None else (h, w)
    if target == tuple(mask.shape):
        resized = mask
    else:
        grey = resize_image(mask.astype(np.float32), target)
        if not binary:
            resized = np.rint(grey).astype(mask.dtype) if mask.dtype.kind in "iu" else grey.astype(mask.dtype)
        else:
            resized = (grey >= 0.5).astype(np.uint8)
    return resized if square is None else paste_square(resized, square, (h, w))
