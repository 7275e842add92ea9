"""``model.arch: head_features_gbm``: gradient-boosted trees (LightGBM) on hand-made head-CT features.

A model for the label tasks (classify, multilabel) that reads :mod:`medsift.tasks.head_features` from each
slice and predicts every label with one LightGBM booster. It trains in a minute on a CPU, and on a thousand
slices it ranks subtypes about as well as a CNN trained for half an hour; voted with the CNN
(``medsift ensemble``) it adds what the CNN has not learnt.

It is a ``torch.nn.Module`` so that every tool that runs a model (``evaluate``, ``predict``, ``ensemble``,
the label tools) runs it unchanged: ``forward`` takes the normalised image batch the task's collate makes and
returns logits ``(B, K)``. The boosters travel as LightGBM's own text format inside the module's extra state,
so ``best.pt`` is still a plain checkpoint read with ``torch.load(weights_only=True)``: no pickled object is
ever executed.

Training (:func:`fit_gbm`) replaces the epoch loop: features of the train and val slices (the slice cache's
first window, the centre slice of a 2.5D stack), one booster per label with early stopping on the validation
log-loss, ``history.csv`` with the validation AUC per label.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medsift.errors import ConfigError
from medsift.tasks.head_features import FEATURE_NAMES, head_features

#: LightGBM settings: small trees and strong regularisation for a thousand rows and ~150 features
GBM_PARAMS = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 20,
              "lambda_l2": 1.0, "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
              "deterministic": True, "force_row_wise": True, "verbose": -1}
MAX_ROUNDS = 1000
EARLY_STOP_ROUNDS = 50
#: trees of a label whose validation rows hold one class only (no early-stopping signal): a fixed, modest forest
ROUNDS_WITHOUT_VAL = 100
#: in-plane pixel size assumed when the manifest has no spacing: a 230 mm head field of view over 512 pixels
DEFAULT_MM_PER_PX_512 = 0.45


class HeadFeatureGBM(nn.Module):
    """Slices -> :func:`~medsift.tasks.head_features.head_features` -> one LightGBM booster per output.

    Args:
        in_channels: channels of the task's input (the centre slice's first window is read).
        num_outputs: number of labels K.
    """

    tabular = True  # trained by :func:`fit_gbm`, not by the epoch loop; no convolution for Grad-CAM

    def __init__(self, in_channels: int, num_outputs: int) -> None:
        super().__init__()
        self.in_channels, self.num_outputs = int(in_channels), int(num_outputs)
        self.channel = 0
        self.mean, self.std = [0.0] * self.in_channels, [1.0] * self.in_channels
        self.low_hu, self.width_hu, self.mm_per_px = 0.0, 80.0, DEFAULT_MM_PER_PX_512
        self.booster_text: list[str] = []
        self._boosters: list[Any] | None = None
        # the boosters' input passes through here, so tools that read a model's head input as its embedding
        # (``medsift.label.features.run_outputs``: active learning, dataset distance) get the features
        self.classifier = nn.Identity()

    # ---------------------------------------------------------------- state (plain str/float/list only)
    def get_extra_state(self) -> dict[str, Any]:
        return {"channel": self.channel, "mean": list(self.mean), "std": list(self.std), "low_hu": self.low_hu,
                "width_hu": self.width_hu, "mm_per_px": self.mm_per_px, "boosters": list(self.booster_text)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.channel = int(state["channel"])
        self.mean, self.std = [float(v) for v in state["mean"]], [float(v) for v in state["std"]]
        self.low_hu, self.width_hu = float(state["low_hu"]), float(state["width_hu"])
        self.mm_per_px = float(state["mm_per_px"])
        self.booster_text = [str(b) for b in state["boosters"]]
        if self.booster_text and len(self.booster_text) != self.num_outputs:
            raise ConfigError(f"checkpoint holds {len(self.booster_text)} boosters for a model of "
                              f"{self.num_outputs} outputs")
        self._boosters = None

    def boosters(self) -> list[Any]:
        """The LightGBM boosters, parsed once from their text."""
        if self._boosters is None:
            import lightgbm as lgb

            self._boosters = [lgb.Booster(model_str=text) for text in self.booster_text]
        return self._boosters

    # ---------------------------------------------------------------- features and inference
    def slice_features(self, unit: np.ndarray, *, n_jobs: int = 1) -> np.ndarray:
        """(N, F) features of (N, H, W) slices with values 0..1 in the cache's first window."""
        from joblib import Parallel, delayed

        hu = self.low_hu + np.asarray(unit, dtype=np.float32) * self.width_hu
        if n_jobs <= 1 or len(hu) < 64:
            return _features(hu, self.mm_per_px, self.low_hu, self.low_hu + self.width_hu)
        chunks = np.array_split(np.arange(len(hu)), n_jobs * 4)
        parts = Parallel(n_jobs=n_jobs)(delayed(_features)(hu[c], self.mm_per_px, self.low_hu,
                                                           self.low_hu + self.width_hu) for c in chunks if len(c))
        return np.concatenate(parts)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) of a normalised batch (B, C, H, W)."""
        if not self.booster_text:
            raise ConfigError("this head_features_gbm model has not been trained (no boosters)")
        c = self.channel
        unit = (image[:, c].detach().float().cpu().numpy() * self.std[c] + self.mean[c]).clip(0.0, 1.0)
        x = self.classifier(torch.from_numpy(self.slice_features(unit))).numpy()
        logits = np.stack([b.predict(x, raw_score=True) for b in self.boosters()], axis=1)
        return torch.as_tensor(logits, dtype=torch.float32, device=image.device)


def _features(hu: np.ndarray, mm_per_px: float, low: float, top: float) -> np.ndarray:
    return np.stack([head_features(h, mm_per_px=mm_per_px, low_hu=low, top_hu=top) for h in hu])


def pixel_size_mm(df, size: int) -> float:
    """Median in-plane mm per cached pixel over ``df``'s rows (:func:`~medsift.preprocess.resample.cached_spacing_mm`);
    a 230 mm field of view when the manifest knows no spacing."""
    from medsift.preprocess.resample import median_cached_spacing_mm

    mm = median_cached_spacing_mm(df, size)
    return mm if mm is not None else DEFAULT_MM_PER_PX_512 * 512.0 / float(size)


def dataset_features(model: HeadFeatureGBM, dataset, *, n_jobs: int = 1, chunk: int = 256) -> np.ndarray:
    """(N, F) features of a SliceDataset's rows in dataset order, read from its uint8 cache ``chunk`` rows at a
    time (the centre slice's first window), so a 512-px set never sits in memory as float."""
    from medsift.preprocess.cache import read_rows

    positions = np.asarray(dataset.positions)
    parts = []
    for start in range(0, len(positions), chunk):
        unit = read_rows(dataset.images, positions[start:start + chunk], channel=model.channel)
        parts.append(model.slice_features(unit.astype(np.float32) / 255.0, n_jobs=n_jobs))
    return np.concatenate(parts) if parts else np.zeros((0, len(FEATURE_NAMES)), np.float32)


def fit_gbm(task, model: HeadFeatureGBM, datasets: dict[str, Any], config, out_dir: str | Path, *, df,
            log=None):
    """Train ``model``'s boosters on ``datasets["train"]`` (early stopping on ``val``); write ``best.pt``,
    ``history.csv`` and ``train.log`` into ``out_dir``. Returns a :class:`~medsift.engine.loop.FitResult`."""
    import lightgbm as lgb
    import pandas as pd

    from medsift.engine.checkpoint import save_checkpoint
    from medsift.engine.loop import FitResult
    from medsift.manifest import atomic_write_bytes
    from medsift.metrics.classification import roc_auc
    from medsift.preprocess.windowing import get_window

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if "train" not in datasets or "val" not in datasets or not len(datasets["train"]) or not len(datasets["val"]):
        raise ConfigError("head_features_gbm needs non-empty train and val splits; run `medsift split WS` first")
    t0 = time.perf_counter()
    pp = config.preprocess_config()
    window = get_window(pp.windows[0])
    model.channel = int(pp.context) * len(pp.windows)
    model.mean, model.std = list(task.mean), list(task.std)
    model.low_hu, model.width_hu = float(window.center - window.width / 2.0), float(window.width)
    model.mm_per_px = pixel_size_mm(df[df["split"] == "train"], int(pp.size))
    jobs = max(int(config.threads or 2), 1)
    x = {s: dataset_features(model, datasets[s], n_jobs=jobs) for s in ("train", "val")}
    lines = [f"features: {x['train'].shape[1]} per slice, {len(x['train'])} train / {len(x['val'])} val slices, "
             f"{time.perf_counter() - t0:.1f} s (pixel {model.mm_per_px:.3f} mm)"]
    params = GBM_PARAMS | {"seed": int(config.seed), "num_threads": jobs}
    texts, history, val_logits = [], [], []
    for k, name in enumerate(task.labels):
        y = {s: datasets[s].targets[:, k] for s in ("train", "val")}
        known = {s: ~np.isnan(y[s]) for s in y}
        train = lgb.Dataset(x["train"][known["train"]], y["train"][known["train"]])
        y_val = y["val"][known["val"]]
        if len(np.unique(y_val)) == 2:
            val = lgb.Dataset(x["val"][known["val"]], y_val, reference=train)
            booster = lgb.train(params, train, num_boost_round=MAX_ROUNDS, valid_sets=[val],
                                callbacks=[lgb.early_stopping(EARLY_STOP_ROUNDS, verbose=False)])
            best = int(booster.best_iteration or booster.current_iteration())
            note = ""
        else:  # the val log-loss would only reward pushing every score to the one class present
            booster = lgb.train(params, train, num_boost_round=ROUNDS_WITHOUT_VAL)
            best, note = ROUNDS_WITHOUT_VAL, " (validation holds one class: no early stopping)"
        texts.append(booster.model_to_string(num_iteration=best))
        val_logits.append(booster.predict(x["val"], num_iteration=best, raw_score=True))
        auc = roc_auc(y_val, val_logits[-1][known["val"]])
        history.append({"label": name, "best_iteration": best, "val_auc": auc})
        lines.append(f"{name}: {best} trees, val AUC {auc:.4f}{note}")
    model.booster_text, model._boosters = texts, None
    elapsed = time.perf_counter() - t0
    save_checkpoint(out / "best.pt", {"model": model.state_dict()})
    atomic_write_bytes(out / "history.csv", pd.DataFrame(history).to_csv(index=False).encode())
    lines.append(f"trained {len(texts)} boosters in {elapsed:.1f} s")
    atomic_write_bytes(out / "train.log", ("\n".join(lines) + "\n").encode())
    for line in lines:
        if log is not None:
            log(line)
    aucs = np.asarray([h["val_auc"] for h in history], dtype=np.float64)
    mean_auc = float(aucs[np.isfinite(aucs)].mean()) if np.isfinite(aucs).any() else float("nan")
    # the val features are not measured again for calibration: the runner takes these scores (predict's format)
    scores = 1.0 / (1.0 + np.exp(-np.stack(val_logits, axis=1)))
    val_predictions = {"score": scores.astype(np.float32), "index": np.arange(len(scores))}
    return FitResult(best_metric=mean_auc, best_epoch=1, epochs_run=1, elapsed_s=elapsed,
                     stop_reason="boosters early-stopped on validation log-loss", history=history,
                     val_predictions=val_predictions)
