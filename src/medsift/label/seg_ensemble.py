"""Ensembles of segmentation runs: the members' probability maps averaged pixel by pixel (nnU-Net's recipe).

Why: a segmentation network trained on a few dozen patients has high variance (validation Dice peaks early and
then wanders); averaging several seeds or folds removes part of that variance without more data.

* soft vote: the mean of the members' probability maps; its threshold is chosen on the validation patients
  (the threshold that maximises validation global Dice, as a single run's calibration does), or is the mean of
  the members' thresholds when the workspace has no ``val`` rows (or ``val`` itself is evaluated).
* hard vote: each member's mask at its own threshold; a pixel is lesion when more than half of them say so.

The vote is then post-processed and scored by the first run's task exactly like a single run
(:func:`medsift.tasks.seg_evaluate.evaluate_segmentation`): Dice/IoU/... global, per image and per patient with
patient-bootstrap CIs, overlays and exported masks under ``out/eval``. Members must share the workspace rows;
each is predicted with its own preprocessing (its own slice cache).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from medsift.errors import ConfigError


def _member_probs(run: str | Path, workspace, split: str) -> tuple[Any, Any, np.ndarray, np.ndarray, dict]:
    """(task, dataset, dataset positions (N,), uint8 probabilities (N, H, W), calibration) of one run."""
    from medsift.engine.runner import predict_split

    p = predict_split(run, workspace, split=split, device="cpu")
    task = p["task"]
    if task.name != "segment":
        raise ConfigError(f"{run} is a {task.name} run; a segmentation ensemble needs segment runs")
    idx, probs = task.aligned(p["predictions"], p["dataset"])
    return task, p["dataset"], idx, probs, dict(p["meta"].get("calibration") or {})


def vote_maps(runs: Sequence[str | Path], workspace, *, split: str, vote: str = "soft"):
    """``(task, dataset, positions, voted uint8 maps (N, H, W), truth masks (N, H, W), member thresholds (M,),
    member global Dice (M,))``.

    Soft: the rounded mean of the members' uint8 probability maps. Hard: 255 x the fraction of members whose
    map is above their own threshold (so "more than half" is a threshold just above 0.5).
    """
    from medsift.metrics.segmentation import dice

    total = None
    thresholds, dices = [], []
    first = None
    for run in runs:
        task, dataset, idx, probs, cal = _member_probs(run, workspace, split)
        if first is None:
            first = (task, dataset, idx)
            truth = np.stack([np.asarray(dataset.masks[dataset.positions[i]]) > 0 for i in idx])
        elif not np.array_equal(dataset.image_ids[idx], first[1].image_ids[first[2]]):
            raise ConfigError(f"{run} scores other images than {runs[0]}; members must share the workspace rows")
        thr = float(cal["threshold"]) if "threshold" in cal else float(task.options.postprocess.threshold)
        thresholds.append(thr)
        above = probs > int(round(thr * 255))
        dices.append(dice(above, truth))
        part = (above.astype(np.uint16) * 255) if vote == "hard" else probs.astype(np.uint16)
        total = part if total is None else total + part
    task, dataset, idx = first
    voted = np.rint(total / len(runs)).astype(np.uint8)
    return task, dataset, idx, voted, truth, np.asarray(thresholds), np.asarray(dices)


def evaluate_seg_ensemble(runs: Sequence[str | Path], workspace, out, *, vote: str = "soft", split: str = "test",
                          bootstrap: int = 1000, seed: int = 0) -> dict[str, float]:
    """Vote segmentation runs on ``split`` and score the vote like a single run.

    Writes ``out/eval/`` (the evaluator's per-image/per-patient CSVs, overlays, exported masks and its
    ``metrics.json``) and ``out/metrics.json``: ``ensemble_<key>`` for every key of the evaluator (dice_global,
    dice_per_image, dice_per_patient, hd95... with CIs), ``ensemble_threshold``, ``threshold_from``, and each
    member's ``run<i>_dice_global`` at its own threshold (no post-processing) beside
    ``ensemble_dice_global_raw`` (the vote at its threshold, no post-processing), so the two compare directly.
    """
    from medsift.label.ensemble import _has_split
    from medsift.manifest import atomic_write_bytes
    from medsift.metrics.segmentation import dice
    from medsift.tasks.seg_evaluate import _json_safe, evaluate_segmentation

    vote = str(getattr(vote, "value", vote))
    if vote not in ("soft", "hard"):
        raise ConfigError(f"vote must be soft or hard; got {vote!r}")
    task, dataset, idx, voted, truth, thresholds, member_dice = vote_maps(runs, workspace, split=split, vote=vote)
    if vote == "hard":
        threshold, source = 0.5, "majority"
    elif split != "val" and _has_split(workspace, "val"):
        vtask, vds, vidx, vmaps, _, _, _ = vote_maps(runs, workspace, split="val", vote=vote)
        threshold, source = float(vtask.calibrate({"index": vidx, "prob": vmaps}, vds)["threshold"]), "val"
    else:
        threshold, source = float(np.mean(thresholds)), "members' mean"
    out = Path(out)
    metrics = evaluate_segmentation(task, {"index": idx, "prob": voted}, dataset, calibration={"threshold": threshold},
                                    out_dir=out / "eval", n_boot=int(bootstrap), seed=int(seed))
    result: dict[str, float] = {f"ensemble_{k}": float(v) for k, v in metrics.items()
                                if isinstance(v, (int, float)) and k != "threshold"}
    result["ensemble_threshold"] = threshold
    result["ensemble_dice_global_raw"] = dice(voted > int(round(threshold * 255)), truth)
    for i, d in enumerate(member_dice):
        result[f"run{i}_dice_global"] = float(d)
        result[f"run{i}_threshold"] = float(thresholds[i])
    result.update({"n_runs": float(len(runs))})
    atomic_write_bytes(out / "metrics.json", json.dumps({"task": "segment", "vote": vote, "split": split,
                                                         "threshold_from": source, "runs": [str(r) for r in runs],
                                                         **_json_safe(result)}, indent=1).encode())
    return result
