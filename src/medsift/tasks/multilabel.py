"""Task 4: multi-label subtypes (``--labels ivh,iph,sah,edh,sdh``): one sigmoid per ``label_<name>`` column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medsift.manifest import atomic_write_bytes
from medsift.tasks.base import LabelTask
from medsift.tasks.classify import bce_from_scores


class MultiLabelTask(LabelTask):
    """K independent sigmoid outputs; per-class thresholds; micro/macro aggregates."""

    name = "multilabel"
    headline_metric = "macro_auc"

    def _complete(self, predictions, dataset):
        y, p, groups, ids = self.aligned(predictions, dataset)
        keep = ~np.isnan(y).any(axis=1)
        return y[keep].astype(np.int64), p[keep], groups[keep], ids[keep]

    def sample_weights(self, dataset) -> np.ndarray:
        """Balanced on "any label positive" vs "all negative"."""
        y = np.nan_to_num(dataset.targets, nan=0.0).max(axis=1)
        n_pos, n_neg = max(y.sum(), 1.0), max(len(y) - y.sum(), 1.0)
        return np.where(y > 0.5, 0.5 / n_pos, 0.5 / n_neg)

    def val_metrics(self, predictions: dict[str, np.ndarray], dataset) -> dict[str, float]:
        from medsift.metrics.multilabel import multilabel_metrics, per_class_thresholds

        y, p, _, _ = self._complete(predictions, dataset)
        names = [n.lower() for n in self.labels]
        m = multilabel_metrics(y, p, per_class_thresholds(y, p), names)
        out = {"loss": bce_from_scores(y.ravel(), p.ravel()), "macro_auc": m["macro_auc"],
               "macro_f1": m["macro_f1"], "micro_f1": m["micro_f1"]}
        out.update({f"{n}_auc": m[f"{n}_auc"] for n in names})
        return out

    def evaluate(self, predictions: dict[str, np.ndarray], dataset, *, calibration: dict[str, Any],
                 out_dir: Path | None = None) -> dict[str, float]:
        """Per-class precision/recall/specificity/F1/AUC/PR-AUC, macro AUC, micro/macro F1, patient CIs."""
        from medsift.metrics.bootstrap import bootstrap_dict
        from medsift.metrics.multilabel import multilabel_metrics

        y, p, groups, ids = self._complete(predictions, dataset)
        names = [n.lower() for n in self.labels]
        thr = np.asarray(calibration.get("thresholds", [0.5] * len(names)), dtype=np.float64)
        fn = lambda a, b: {k: v for k, v in multilabel_metrics(a, b, thr, names).items()  # noqa: E731
                           if not k.endswith("_threshold")}
        out = bootstrap_dict(fn, y, p, groups, n=int(self.config.bootstrap), seed=int(self.config.seed))
        out.update({f"{n}_threshold": float(t) for n, t in zip(names, thr)})
        out.update({"n_images": int(len(y)), "n_patients": int(len(np.unique(groups)))})
        out.update({f"{n}_n_positive": int(y[:, k].sum()) for k, n in enumerate(names)})
        if out_dir is not None:
            self._write_outputs(Path(out_dir), y, p, groups, ids, thr, names)
        return out

    @staticmethod
    def _write_outputs(out_dir: Path, y, p, groups, ids, thr, names) -> None:
        import pandas as pd

        from medsift.metrics.classification import curves
        from medsift.report.plots import plot_pr, plot_roc

        cols = {"image_id": ids, "patient_id": groups}
        for k, n in enumerate(names):
            cols[f"label_{n}"], cols[f"score_{n}"], cols[f"pred_{n}"] = y[:, k], p[:, k], (p[:, k] >= thr[k]).astype(int)
        atomic_write_bytes(out_dir / "predictions.csv", pd.DataFrame(cols).to_csv(index=False).encode())
        roc, pr = {}, {}
        for k, n in enumerate(names):
            pts = curves(y[:, k], p[:, k])
            if "fpr" in pts:
                roc[n] = (pts["fpr"], pts["tpr"])
            if "precision" in pts:
                pr[n] = (pts["recall"], pts["precision"])
        if roc:
            atomic_write_bytes(out_dir / "roc.png", plot_roc(roc))
        if pr:
            atomic_write_bytes(out_dir / "pr.png", plot_pr(pr))
