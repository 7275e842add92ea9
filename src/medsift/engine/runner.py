"""Train and evaluate runs on workspaces: the functions behind ``medsift train`` and ``medsift evaluate``.

A run folder holds::

    RUN/config.yaml     the full TrainConfig
    RUN/last.pt         resume state (weights, optimiser, scheduler, epoch, history; weights_only loadable)
    RUN/best.pt         weights of the best validation epoch
    RUN/model.json      task, labels, thresholds, input statistics, preprocess config, training summary
    RUN/history.csv, RUN/curves.png, RUN/train.log, RUN/tb/ (TensorBoard, when installed)
    RUN/eval/<workspace name>-<split>/metrics.json, predictions.csv, roc.png, pr.png, confusion.png, gradcam/
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from medsift.engine.config import TrainConfig
from medsift.errors import ConfigError, MedsiftError
from medsift.manifest import active, atomic_write_bytes


def cache_for(ws, df, config: TrainConfig, *, progress: bool = False):
    """Slice cache of all active rows of ``df`` for ``config.preprocess`` under ``WS/cache/<fingerprint>``."""
    from medsift.preprocess.cache import build_cache

    pp = config.preprocess_config()
    return build_cache(df, ws.sub("cache") / f"slices-{pp.fingerprint()[:12]}", pp,
                       n_jobs=2, progress=progress)


def _json_bytes(data: dict[str, Any]) -> bytes:
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (np.floating, np.integer)):
            return clean(v.item())
        return v

    return json.dumps(clean(data), indent=1, sort_keys=False).encode()


def train_run(workspace: str | Path, out: str | Path, config: TrainConfig, *, resume: bool = False,
              show_progress: bool | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train ``config.task`` on the workspace's train/val split into ``out``; return the ``model.json`` dict.

    With ``resume``, ``out/config.yaml`` must describe the same run (it is reused) and training continues
    from ``out/last.pt``.
    """
    from medsift.engine.distributed import barrier, init_distributed
    from medsift.engine.loop import fit
    from medsift.tasks import TASKS
    from medsift.workspace import Workspace

    out = Path(out)
    cfg_path = out / "config.yaml"
    if resume and cfg_path.is_file():
        saved = TrainConfig.from_yaml(cfg_path)
        if saved.to_dict() != config.to_dict():
            config = saved  # the saved config defines the run being resumed
    elif not resume and ((out / "last.pt").is_file() or (out / "model.json").is_file()):
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    dist = init_distributed()
    from medsift.tasks.models import is_tabular

    trees = is_tabular(config.model.arch)
    if trees and dist.enabled:  # every rank would fit the same boosters and write best.pt over the others
        raise ConfigError(f"model.arch {config.model.arch} trains in one process; run it without torchrun")
    ws = Workspace.at(workspace)
    df = active(ws.read())
    task = TASKS.get(config.task)(config)
    if task.needs_split:
        from medsift.tasks.base import require_split

        require_split(df)  # before minutes of slice caching, not after
    if not dist.is_main:
        barrier(dist)
    cache = cache_for(ws, df, config, progress=show_progress is not False and dist.is_main)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cfg_path, config.to_yaml().encode())
        barrier(dist)
    datasets = task.build_datasets(df, cache, config)
    t0 = time.perf_counter()
    if trees:
        from medsift.tasks.gbm import fit_gbm

        result = fit_gbm(task, task.build_model(config), datasets, config, out, df=df, log=log)
    else:
        result = fit(task, datasets, config, out, resume=resume, show_progress=show_progress, log=log)
    if not dist.is_main:
        return {}
    model, device = load_weights(task, config, out / "best.pt")
    from medsift.engine.domain import describe as describe_domains
    from medsift.engine.loop import build_loader, predict

    preds = result.val_predictions
    if preds is None:
        loader = build_loader(datasets["val"], batch_size=config.batch_size, num_workers=0, collate=task.collate,
                              pin=False, seed=config.seed)
        preds = predict(task, model, loader, device, amp=config.amp)
    calibration = task.calibrate(preds, datasets["val"])
    meta = {
        "task": config.task,
        "labels": list(task.labels) if hasattr(task, "labels") else list(config.labels),
        "calibration": calibration,
        "state": task.state(),
        "preprocess": config.preprocess_config().to_dict(),
        "model": config.model.__dict__ | {"pretrained": config.model.pretrained},
        "checkpoint": "best.pt",
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stop_reason": result.stop_reason,
        "train_seconds": result.elapsed_s,
        "wall_seconds_this_session": time.perf_counter() - t0,
        "val": task.val_metrics(preds, datasets["val"]),
        "training_data": describe_domains(df[df["split"] == "train"] if "split" in df.columns else df,
                                          config.preprocess_config()),
        "workspace": str(ws.root),
        "config": config.to_dict(),
    }
    atomic_write_bytes(out / "model.json", _json_bytes(meta))
    return meta


def load_weights(task, config: TrainConfig, path: Path, *, device: str | None = None):
    """Build ``task``'s model (no pretrained file needed) and load ``path`` (weights_only); returns (model, device)."""
    import dataclasses

    from medsift.engine.checkpoint import load_checkpoint
    from medsift.engine.device import select_device

    bare = dataclasses.replace(config, model=dataclasses.replace(config.model, pretrained=None))
    model = task.build_model(bare)
    model.load_state_dict(load_checkpoint(path)["model"])
    dev = select_device(device or config.device)
    return model.to(dev).eval(), dev


def load_run(run: str | Path, *, device: str | None = None):
    """(task, model, meta, device) of a finished run folder (needs ``model.json`` and ``best.pt``)."""
    from medsift.tasks import TASKS

    run = Path(run)
    meta_path = run / "model.json"
    if not meta_path.is_file():
        raise MedsiftError(f"{run} is not a finished medsift run (no model.json); train it with `medsift train`")
    meta = json.loads(meta_path.read_text())
    config = TrainConfig.from_dict(meta["config"])
    task = TASKS.get(meta["task"])(config)
    task.load_state(meta["state"])
    model, dev = load_weights(task, config, run / meta.get("checkpoint", "best.pt"), device=device)
    return task, model, meta, dev


def predict_split(run: str | Path, workspace: str | Path | None = None, *, split: str = "test",
                  device: str | None = None, unlabelled: bool = False) -> dict[str, Any]:
    """Load ``run`` and predict the rows of a workspace split (``test``/``val``/``train``) or every active row
    (``all``); the workspace defaults to the run's own. Label tasks keep only rows with a known label unless
    ``unlabelled`` (scores for every row, e.g. to gate another model; the dataset's targets are then not truth).

    Returns ``{"task", "model", "meta", "device", "workspace", "dataset", "predictions"}`` (what
    :func:`evaluate_run` and the ensembles score).
    """
    from medsift.engine.loop import build_loader, predict
    from medsift.workspace import Workspace

    task, model, meta, dev = load_run(run, device=device)
    ws = Workspace.at(workspace or meta["workspace"])
    df = active(ws.read())
    cache = cache_for(ws, df, task.config)
    if split != "all":
        if split not in ("train", "val", "test"):
            raise ConfigError(f"split must be train, val, test or all; got {split!r}")
        if "split" not in df.columns or df["split"].isna().all():
            raise ConfigError(f"workspace {ws.root} was never split; use --split all or run `medsift split` first")
        df = df[df["split"] == split]
        if df.empty:
            raise ConfigError(f"workspace {ws.root} has no active rows in split {split!r}")
    if unlabelled:
        df = df.copy()
        for label in getattr(task, "labels", ()):
            col = f"label_{label}"
            df[col] = df[col].fillna(0) if col in df.columns else 0
    else:
        df = task.scored_rows(df)
    dataset = task.dataset(df, cache, augment=False)
    if len(dataset) == 0:
        raise ConfigError(f"no labelled rows to evaluate in {ws.root} ({split}): labels needed: {list(task.labels)} "
                          f"(label_* columns, or annotation files for hemorrhage); for scores without labels "
                          f"use `medsift predict RUN FILES...`")
    loader = build_loader(dataset, batch_size=task.config.batch_size, num_workers=0, collate=task.collate, pin=False,
                          seed=0)
    preds = predict(task, model, loader, dev, amp=task.config.amp)
    return {"task": task, "model": model, "meta": meta, "device": dev, "workspace": ws, "dataset": dataset,
            "predictions": preds, "rows": df[df["image_id"].astype(str).isin(set(map(str, dataset.image_ids)))]}


def evaluate_run(run: str | Path, workspace: str | Path | None = None, *, split: str = "test",
                 gradcam: int = 4, device: str | None = None) -> tuple[dict[str, float], Path]:
    """Evaluate a run on a workspace split (``test``/``val``/``train``) or on every active row (``all``).

    Writes ``metrics.json``, ``predictions.csv`` and plots into ``RUN/eval/<workspace name>-<split>/`` and, for
    classification, Grad-CAM overlays of up to ``gradcam`` true/false positives/negatives. Returns
    ``(metrics, eval_dir)``.
    """
    run = Path(run)
    p = predict_split(run, workspace, split=split, device=device)
    task, meta, dataset, preds = p["task"], p["meta"], p["dataset"], p["predictions"]
    eval_dir = run / "eval" / f"{p['workspace'].root.name}-{split}"
    eval_dir.mkdir(parents=True, exist_ok=True)
    metrics = task.evaluate(preds, dataset, calibration=meta["calibration"], out_dir=eval_dir)
    write_input_check(eval_dir, meta, p["rows"], task.config.preprocess_config())
    if gradcam > 0 and task.name == "classify" and not getattr(p["model"], "tabular", False):
        metrics["gradcam_images"] = float(_gradcam_cases(task, p["model"], p["device"], dataset, preds, meta,
                                                         eval_dir, gradcam))
    atomic_write_bytes(eval_dir / "metrics.json", _json_bytes(metrics))
    return metrics, eval_dir


def write_input_check(eval_dir: Path, meta: dict[str, Any], rows, config) -> list[str]:
    """Write ``eval_dir/input_check.json``: the intensity domains of the training and the evaluated rows and the
    warnings when they differ (:mod:`medsift.engine.domain`); returns the warnings."""
    from medsift.engine.domain import describe, domain_warnings

    warnings = domain_warnings(meta.get("training_data"), rows, config)
    check = {"training": meta.get("training_data"), "evaluated": describe(rows, config), "warnings": warnings}
    atomic_write_bytes(eval_dir / "input_check.json", _json_bytes(check))
    return warnings


def _gradcam_cases(task, model, device, dataset, preds, meta, eval_dir: Path, per_case: int) -> int:
    """Grad-CAM overlays of up to ``per_case`` TP, FP, FN, TN slices (highest-confidence first)."""
    from medsift.report.gradcam import grad_cam, layer_name, overlay, save_png

    thr = float(meta["calibration"]["thresholds"][0])
    y, p, _, ids = task.aligned(preds, dataset)
    order = np.argsort(preds["index"], kind="stable")
    idx = preds["index"][order]
    y, p = y[:, 0], p[:, 0]
    cases = {"tp": (y == 1) & (p >= thr), "fp": (y == 0) & (p >= thr), "fn": (y == 1) & (p < thr),
             "tn": (y == 0) & (p < thr)}
    written = 0
    for name, sel in cases.items():
        picks = np.flatnonzero(sel)
        conf = np.abs(p[picks] - thr)
        for j in picks[np.argsort(-conf)][:per_case]:
            batch = task.collate([dataset[(int(idx[j]), 0)]])
            image = batch["image"].to(device)
            heat = grad_cam(model, image, layer=layer_name(model))
            raw = np.asarray(dataset.images[dataset.positions[idx[j]]], dtype=np.float32) / 255.0
            gray = raw[raw.shape[0] // 2]
            save_png(eval_dir / "gradcam" / f"{name}_{ids[j]}_p{p[j]:.2f}.png", overlay(gray, heat))
            written += 1
    return written
