"""Box predictions of a trained detect run on loose files: the ``detect`` side of ``medsift predict``.

Boxes are given in each file's own pixels (the cache's ``S x S`` frame mapped back by
:meth:`~medsift.preprocess.cache.SliceCache.file_frames`: rescaled, and moved out of the head square with
``preprocess.crop_head``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def predict_detect_files(run: str | Path, paths: Sequence[str | Path], *, draw_dir: str | Path | None = None,
                         device: str | None = None) -> list[dict[str, Any]]:
    """Boxes of a ``detect`` run for image files or folders (PNG/JPG/DICOM/NIfTI).

    Args:
        run: run folder (``model.json`` + ``best.pt``) of a detect task.
        paths: files or folders.
        draw_dir: when given, write ``<file stem>_<slice>_boxes.png`` (boxes at or above the image threshold
            in red with their scores) into it.
        device: torch device (default: the run's).

    Returns:
        One dict per slice: ``path``, ``slice``, ``hemorrhage`` (0/1: best box >= the calibrated threshold),
        ``max_score``, ``boxes`` (list of ``[x1, y1, x2, y2, score]`` in the file's pixels, score >=
        ``score_floor``, best first) and ``drawing`` when written.
    """
    from medsift.engine.inference import expand_inputs, file_rows
    from medsift.engine.loop import build_loader, predict
    from medsift.engine.runner import load_run
    from medsift.errors import ConfigError
    from medsift.manifest import atomic_write_bytes, new_manifest
    from medsift.preprocess.cache import build_cache
    from medsift.tasks.det_draw import draw_boxes
    from medsift.tasks.detect import boxes_to_cache
    from medsift.tasks.seg_outputs import png_bytes

    task, model, meta, dev = load_run(run, device=device)
    if meta.get("task") != "detect":
        raise ConfigError(f"{run} is a {meta.get('task')!r} run; predict_detect_files needs a detect run")
    files = expand_inputs(paths)
    df = new_manifest(file_rows(files))
    thr = float(meta.get("calibration", {}).get("threshold", 0.5))
    results = []
    with tempfile.TemporaryDirectory(prefix="medsift-detpredict-") as tmp:
        cache = build_cache(df, Path(tmp) / "cache", task.config.preprocess_config(), n_jobs=1, progress=False)
        df = df.assign(boxes=[[] for _ in range(len(df))])
        dataset = task.dataset(df, cache, augment=False)
        loader = build_loader(dataset, batch_size=8, num_workers=0, collate=task.collate, pin=False, seed=0)
        preds = predict(task, model, loader, dev)
        idx, det = task.aligned(preds, dataset)
        boxes, scores = task.split_detections(det, frame=dataset.frame[idx])
        # a head square may reach past the image (it is padded there): keep the boxes on the file
        sizes = cache.index[["orig_width", "orig_height"]].to_numpy(float)[dataset.positions[idx]]
        boxes = [np.clip(b, 0, np.tile(wh, 2)) if np.isfinite(wh).all() else b for b, wh in zip(boxes, sizes)]
        for k, (i, row) in enumerate(zip(idx, df.itertuples(index=False))):
            best = float(scores[k].max()) if len(scores[k]) else 0.0
            item: dict[str, Any] = {"path": row.image_path, "slice": int(row.slice_index or 0),
                                    "hemorrhage": int(best >= thr), "max_score": best,
                                    "boxes": [[round(float(v), 2) for v in b] + [round(float(s), 4)]
                                              for b, s in zip(boxes[k], scores[k])]}
            if draw_dir is not None:
                raw = np.asarray(dataset.images[dataset.positions[i]])
                keep = scores[k] >= thr
                rgb = draw_boxes(raw[raw.shape[0] // 2], pred=boxes_to_cache(boxes[k][keep], dataset.frame[i]),
                                 scores=scores[k][keep], label=f"best {best:.2f} (threshold {thr:.2f})")
                path = Path(draw_dir) / f"{Path(row.image_path).name.split('.')[0]}_{item['slice']:04d}_boxes.png"
                atomic_write_bytes(path, png_bytes(rgb))
                item["drawing"] = str(path)
            results.append(item)
    return results
