"""Task 1: hemorrhage vs none per slice (one sigmoid output), scored per slice and per patient (scan)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medsift.manifest import atomic_write_bytes
from medsift.tasks.base import LabelTask


def bce_from_scores(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy (nats) of probabilities ``p`` for 0/1 ``y``."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if len(y) else float("nan")


class ClassifyTask(LabelTask):
    """Binary slice classification on ``label_<labels[0]>`` (default ``label_hemorrhage``)."""

    name = "classify"

    def __init__(self, config) -> None:
        super().__init__(config)
        self.labels = self.labels[:1]

    def _binary(self, predictions, dataset):
        y, p, groups, ids = self.aligned(predictions, dataset)
        y, p = y[:, 0], p[:, 0]
        keep = ~np.isnan(y)
        return y[keep].astype(np.int64), p[keep], groups[keep], ids[keep]

    @staticmethod
    def _label_edge(predictions, dataset) -> np.ndarray | None:
        """Label-edge flags (:func:`~medsift.metrics.classification.at_label_edge`) in :meth:`_binary`'s order, or
        None when the dataset does not know its slices' neighbours."""
        from medsift.metrics.classification import at_label_edge

        if getattr(dataset, "neighbours", None) is None:
            return None
        y = dataset.targets[:, 0]  # known for every row: the dataset keeps only labelled slices
        edge = at_label_edge(np.nan_to_num(y).astype(np.int64), dataset.neighbours)
        idx = np.sort(predictions["index"])
        return edge[idx][~np.isnan(y[idx])]

    def val_metrics(self, predictions: dict[str, np.ndarray], dataset) -> dict[str, float]:
        from medsift.metrics.classification import binary_metrics, choose_threshold

        y, p, _, _ = self._binary(predictions, dataset)
        thr = choose_threshold(y, p, rule="max_f1").threshold
        m = binary_metrics(y, p, thr)
        return {"loss": bce_from_scores(y, p), "auc": m["auc"], "pr_auc": m["pr_auc"], "f1": m["f1"],
                "threshold": thr}

    def evaluate(self, predictions: dict[str, np.ndarray], dataset, *, calibration: dict[str, Any],
                 out_dir: Path | None = None) -> dict[str, float]:
        """Slice metrics with patient-bootstrap CIs, scan-level metrics by max and mean pooling, plots."""
        from medsift.metrics.bootstrap import bootstrap_dict
        from medsift.metrics.classification import binary_metrics, confusion, label_edge_errors, pool_by_group

        y, p, groups, ids = self._binary(predictions, dataset)
        thr = float(calibration.get("thresholds", [0.5])[0])
        n, seed = int(self.config.bootstrap), int(self.config.seed)
        out = bootstrap_dict(lambda a, b: binary_metrics(a, b, thr), y, p, groups, n=n, seed=seed)
        out.update({"threshold": thr, "n_images": int(len(y)), "n_patients": int(len(np.unique(groups))),
                    "n_positive": int(y.sum())})
        out.update({k: float(v) for k, v in confusion(y, (p >= thr).astype(np.int64)).items()})
        for how in ("max", "mean"):
            names, yg, sg = pool_by_group(y, p, groups, how=how)
            pooled = bootstrap_dict(lambda a, b: binary_metrics(a, b, thr), yg, sg, names, n=n, seed=seed + 1)
            out.update({f"patient_{how}_{k}": v for k, v in pooled.items()})
        edge = self._label_edge(predictions, dataset)
        if edge is not None:
            out.update(label_edge_errors(y, (p >= thr).astype(np.int64), edge))
        if out_dir is not None:
            self._write_outputs(Path(out_dir), y, p, groups, ids, thr, edge)
        return out

    @staticmethod
    def _write_outputs(out_dir: Path, y, p, groups, ids, thr: float, edge: np.ndarray | None) -> None:
        import pandas as pd

        from medsift.metrics.classification import confusion, curves
        from medsift.report.plots import plot_confusion, plot_pr, plot_roc

        table = pd.DataFrame({"image_id": ids, "patient_id": groups, "label": y, "score": p,
                              "pred": (p >= thr).astype(int)})
        if edge is not None:
            table["label_edge"] = edge.astype(int)
        atomic_write_bytes(out_dir / "predictions.csv", table.to_csv(index=False).encode())
        pts = curves(y, p)
        if "fpr" in pts:
            atomic_write_bytes(out_dir / "roc.png", plot_roc({"slice": (pts["fpr"], pts["tpr"])}))
        if "precision" in pts:
            atomic_write_bytes(out_dir / "pr.png", plot_pr({"slice": (pts["recall"], pts["precision"])}))
        atomic_write_bytes(out_dir / "confusion.png",
                           plot_confusion(confusion(y, (p >= thr).astype(np.int64)), labels=("none", "hemorrhage")))
