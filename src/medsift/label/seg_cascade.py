"""A slice gate for segmentation: the lesion map is kept only on slices a classification run calls positive.

Why: a segmentation network trained on crops around lesions also paints faint lesions on slices that have none,
and global Dice counts every such pixel as a false positive. A slice classifier sees the whole slice and its
neighbours and answers the slice-level question better than the maximum of a pixel map (on PHE-SICH: slice F1
about 0.93 for the classifier against 0.70-0.79 for the segmentation's own slice call). The cascade is the
classify -> segment pipeline of clinical detection systems.

* The gate threshold is chosen on the validation patients: the highest classifier probability that still keeps
  ``gate_sensitivity`` (default 98%) of the validation slices with a lesion in their mask. A gate is there to drop
  the clearly negative slices, not to decide borderline ones, so it runs at high sensitivity (the classifier's own
  max-F1 threshold drops lesion slices: on PHE-SICH it lost 10 of the ~200 test slices with a rim, and the gain
  from the negatives it removed was gone). ``gate_threshold`` fixes it instead; without validation rows the
  classifier's stored threshold is used. Slices scored below it get an all-zero probability map.
* The segmentation threshold is then re-chosen on the validation patients with the gate applied (as a single
  run's calibration does), and the gated maps are post-processed and scored exactly like a single run
  (:func:`medsift.tasks.seg_evaluate.evaluate_segmentation`).
* The same numbers without the gate are reported beside it (``ungated_*``), so the gate's effect is visible.

Both runs must have been trained on the same patients' split (the classifier must not have seen the test
patients): use the same workspace for both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from medsift.errors import ConfigError


def classifier_scores(run: str | Path, workspace, split: str) -> dict[str, float]:
    """``{image_id: probability}`` of a classify run on every active row of ``split`` (labelled or not)."""
    from medsift.engine.runner import predict_split

    p = predict_split(run, workspace, split=split, device="cpu", unlabelled=True)
    task = p["task"]
    if task.name != "classify":
        raise ConfigError(f"{run} is a {task.name} run; the slice gate needs a classify run")
    _, scores, _, ids = task.aligned(p["predictions"], p["dataset"])
    return {str(i): float(s) for i, s in zip(ids, scores[:, 0])}


def classifier_threshold(run: str | Path) -> float:
    """The decision threshold stored with a classify run (chosen on its validation patients)."""
    meta = json.loads((Path(run) / "model.json").read_text())
    cal = meta.get("calibration") or {}
    if "thresholds" in cal:
        return float(cal["thresholds"][0])
    if "threshold" in cal:
        return float(cal["threshold"])
    raise ConfigError(f"{run} has no stored threshold; pass gate_threshold")


def sensitive_threshold(scores: Sequence[float], has_lesion: Sequence[bool], sensitivity: float) -> float:
    """The highest threshold keeping at least ``sensitivity`` of the lesion slices (``score >= threshold``).

    Raises:
        ConfigError: ``sensitivity`` outside (0, 1] or no lesion slice to measure it on.
    """
    if not 0 < sensitivity <= 1:
        raise ConfigError(f"gate sensitivity must be in (0, 1]; got {sensitivity}")
    pos = np.sort(np.asarray(scores, dtype=np.float64)[np.asarray(has_lesion, dtype=bool)])
    if len(pos) == 0:
        raise ConfigError("no validation slice with a lesion to set the gate's sensitivity on; pass gate_threshold")
    allowed = int(np.floor((1.0 - sensitivity) * len(pos) + 1e-9))  # lesion slices the gate may drop
    return float(pos[allowed])


def gate_maps(maps: np.ndarray, image_ids: Sequence[str], scores: dict[str, float], threshold: float) -> np.ndarray:
    """A copy of ``maps`` (N, H, W) with the slices scored below ``threshold`` set to 0.

    Raises:
        ConfigError: a slice has no classifier score (the two runs do not cover the same rows).
    """
    missing = [str(i) for i in image_ids if str(i) not in scores]
    if missing:
        raise ConfigError(f"the classifier has no score for {len(missing)} slices (e.g. {missing[:3]}); "
                          "gate and segmentation must be evaluated on the same workspace")
    keep = np.array([scores[str(i)] >= threshold for i in image_ids], dtype=bool)
    out = np.array(maps, copy=True)
    out[~keep] = 0
    return out


def evaluate_seg_cascade(seg_runs: Sequence[str | Path], cls_run: str | Path, workspace, out, *, split: str = "test",
                         gate_threshold: float | None = None, gate_sensitivity: float = 0.98, bootstrap: int = 1000,
                         seed: int = 0) -> dict[str, float]:
    """Gate the segmentation runs' (soft-voted) maps with ``cls_run`` on ``split`` and score the result.

    Writes ``out/eval/`` (the evaluator's CSVs, overlays, exported masks and ``metrics.json`` with the contract's
    keys) and ``out/metrics.json``: ``cascade_<key>`` for every evaluator key, ``gate_threshold``,
    ``seg_threshold``, ``slices_gated`` / ``lesion_slices_gated`` (slices zeroed, and how many of them have a lesion
    in the ground truth), and the raw (no post-processing) global Dice with and without the gate, each at its own
    validation threshold: ``cascade_dice_global_raw``, ``ungated_dice_global_raw``.
    """
    from medsift.label.ensemble import _has_split
    from medsift.label.seg_ensemble import vote_maps
    from medsift.manifest import atomic_write_bytes
    from medsift.metrics.segmentation import dice
    from medsift.tasks.seg_evaluate import _json_safe, evaluate_segmentation

    if not seg_runs:
        raise ConfigError("the cascade needs at least one segmentation run")

    def scored_split(name: str):
        task, dataset, idx, maps, truth, member_t, _ = vote_maps(seg_runs, workspace, split=name)
        scores = classifier_scores(cls_run, workspace, name)
        return task, dataset, idx, maps, truth, member_t, scores

    task, dataset, idx, maps, truth, member_t, scores = scored_split(split)
    with_val = split != "val" and _has_split(workspace, "val")
    if with_val:
        vtask, vds, vidx, vmaps, vtruth, _, vscores = scored_split("val")
    if gate_threshold is not None:
        gate_t, gate_from = float(gate_threshold), "given"
    elif with_val:
        lesion = vtruth.reshape(len(vtruth), -1).any(axis=1)
        gate_t = sensitive_threshold([vscores[str(i)] for i in vds.image_ids[vidx]], lesion, gate_sensitivity)
        gate_from = f"val sensitivity {gate_sensitivity:g}"
    else:
        gate_t, gate_from = classifier_threshold(cls_run), "classifier"
    gated = gate_maps(maps, dataset.image_ids[idx], scores, gate_t)
    if with_val:
        vgated = gate_maps(vmaps, vds.image_ids[vidx], vscores, gate_t)
        seg_t = float(vtask.calibrate({"index": vidx, "prob": vgated}, vds)["threshold"])
        plain_t = float(vtask.calibrate({"index": vidx, "prob": vmaps}, vds)["threshold"])
        source = "val"
    else:
        seg_t = plain_t = float(np.mean(member_t))
        source = "members' mean"
    out = Path(out)
    metrics = evaluate_segmentation(task, {"index": idx, "prob": gated}, dataset, calibration={"threshold": seg_t},
                                    out_dir=out / "eval", n_boot=int(bootstrap), seed=int(seed))
    zeroed = ~gated.reshape(len(gated), -1).any(axis=1) & maps.reshape(len(maps), -1).any(axis=1)
    result: dict[str, float] = {f"cascade_{k}": float(v) for k, v in metrics.items()
                                if isinstance(v, (int, float)) and k != "threshold"}
    result.update({
        "gate_threshold": gate_t, "seg_threshold": seg_t, "ungated_seg_threshold": plain_t,
        "slices_gated": float(zeroed.sum()),
        "lesion_slices_gated": float((zeroed & truth.reshape(len(truth), -1).any(axis=1)).sum()),
        "cascade_dice_global_raw": dice(gated > int(round(seg_t * 255)), truth),
        "ungated_dice_global_raw": dice(maps > int(round(plain_t * 255)), truth),
        "n_seg_runs": float(len(seg_runs)),
    })
    atomic_write_bytes(out / "metrics.json", json.dumps({
        "task": "segment", "cascade": True, "split": split, "threshold_from": source, "gate_from": gate_from,
        "gate_run": str(cls_run),
        "seg_runs": [str(r) for r in seg_runs], **_json_safe(result)}, indent=1).encode())
    return result


__all__ = ["classifier_scores", "classifier_threshold", "sensitive_threshold", "gate_maps", "evaluate_seg_cascade"]
