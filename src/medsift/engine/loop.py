"""The one training loop for every task.

``fit`` trains ``task``'s model on ``datasets["train"]``, validates on ``datasets["val"]`` each epoch, keeps
``RUN/last.pt`` (everything needed to resume) and ``RUN/best.pt`` (weights of the best validation epoch), and
writes ``history.csv``, ``curves.png``, ``train.log`` and TensorBoard events. Randomness of epoch ``e`` derives
from ``(seed, e)`` only, so a run killed after epoch ``k`` and resumed ends exactly like an uninterrupted one.

The learning rate is a function of the fraction of planned steps done (:func:`lr_at`). With ``max_minutes`` the
plan is made once, before the first step, from a timing probe (:mod:`medsift.engine.budget`): the whole epochs that
fit in the budget. The plan is saved in ``last.pt``, so a time-limited run also resumes exactly, and
``--epochs N`` with the logged N replays it without a budget.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsift.engine.budget import plan_epochs, probe_timing, replan_epochs, train_step
from medsift.engine.checkpoint import load_checkpoint, save_checkpoint, unwrap
from medsift.engine.config import SamplerKind, SchedulerKind, TrainConfig
from medsift.engine.device import amp_dtype, autocast, select_device
from medsift.engine.distributed import DistInfo, barrier, broadcast_flag, broadcast_value, init_distributed
from medsift.engine.history import TensorBoardLog, write_history
from medsift.engine.sampler import EpochSampler
from medsift.engine.seeding import derive_seed, seed_torch
from medsift.errors import ConfigError


@dataclass
class FitResult:
    """Outcome of :func:`fit`: best validation value and epoch, epochs run, seconds trained, why it stopped."""

    best_metric: float
    best_epoch: int
    epochs_run: int
    elapsed_s: float
    stop_reason: str
    history: list[dict[str, float]] = field(default_factory=list)
    #: validation predictions already made by the trainer (``predict``'s format), so the runner need not redo them
    val_predictions: dict[str, np.ndarray] | None = None


# Headline validation metric per task when the config says ``early_stop_metric: auto`` (first one reported wins).
_AUTO_METRICS = ("auc", "macro_auc", "dice_global", "map50", "loss")


def resolve_metric(requested: str, reported: dict[str, float], *, headline: str | None = None) -> str:
    """The validation metric that selects the best epoch; a name the task does not report is an error.

    ``auto`` takes the task's ``headline`` metric when it reports it, else the first of auc, macro_auc,
    dice_global, map50 it reports, else the validation loss.
    """
    if requested == "auto":
        if headline and headline in reported:
            return headline
        return next(m for m in _AUTO_METRICS if m in reported or m == "loss")
    name = requested.removeprefix("val_")
    if name not in reported:
        raise ConfigError(f"early_stop_metric {requested!r} is not reported by this task; "
                          f"choose one of {sorted(reported)} or 'auto'")
    return name


def _better(metric: str, new: float, old: float) -> bool:
    if not math.isfinite(new):
        return False
    if not math.isfinite(old):
        return True
    return new < old if metric.endswith("loss") else new > old


def build_loader(dataset, *, batch_size: int, sampler=None, num_workers: int, collate, pin: bool, seed: int):
    """A DataLoader feeding ``(index, sample_seed)`` items; workers persist across epochs."""
    import torch
    from torch.utils.data import DataLoader

    if sampler is None:
        sampler = [(i, 0) for i in range(len(dataset))]
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, collate_fn=collate,
                      pin_memory=pin, persistent_workers=num_workers > 0, drop_last=False,
                      prefetch_factor=4 if num_workers > 0 else None,
                      generator=torch.Generator().manual_seed(seed))


def to_device(batch: dict[str, Any], device) -> dict[str, Any]:
    """Move every tensor of a batch dict to ``device`` (non-blocking)."""
    import torch

    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def predict(task, model, loader, device, *, amp: bool = False) -> dict[str, np.ndarray]:
    """Run ``task.predict_batch`` over a loader; concatenated numpy outputs plus ``index`` (dataset positions)."""
    import torch

    dtype = amp_dtype(device, amp)
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for batch in loader:
            batch = to_device(batch, device)
            with autocast(device, dtype):
                out = task.predict_batch(model, batch)
            out["index"] = batch["index"].cpu().numpy()
            for k, v in out.items():
                parts.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in parts.items()}


def lr_at(config: TrainConfig, progress: float) -> float:
    """Learning rate at ``progress`` (0..1 of the run): warm-up + cosine (onecycle), cosine, or constant."""
    kind = SchedulerKind(config.scheduler)
    progress = min(max(progress, 0.0), 1.0)
    if kind is SchedulerKind.CONSTANT:
        return config.lr
    warm = 0.1 if kind is SchedulerKind.ONECYCLE else 0.0
    if progress < warm:
        return config.lr * (0.04 + 0.96 * progress / warm)
    frac = (progress - warm) / (1.0 - warm)
    return config.lr * (0.002 + 0.998 * 0.5 * (1.0 + math.cos(math.pi * frac)))


def fit(task, datasets: dict[str, Any], config: TrainConfig, out_dir: str | Path, *, resume: bool = False,
        show_progress: bool | None = None, log=None) -> FitResult:
    """Train ``task`` and return a :class:`FitResult`.

    Args:
        task: a :class:`medsift.tasks.base.Task` whose ``build_datasets`` produced ``datasets``.
        datasets: ``{"train": Dataset, "val": Dataset}``; items are looked up with ``(index, sample_seed)``.
        config: the run configuration.
        out_dir: the run folder.
        resume: continue from ``out_dir/last.pt`` when present.
        show_progress: rich progress bar with throughput (default: when attached to a terminal).
        log: callable(str) receiving one line per epoch (default: append to ``train.log`` only).
    """
    import torch

    out = Path(out_dir)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    dist = init_distributed()
    device = select_device(config.device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    if "train" not in datasets or "val" not in datasets or len(datasets["train"]) == 0 or len(datasets["val"]) == 0:
        raise ConfigError(f"training needs non-empty train and val datasets; got "
                          f"{ {k: len(v) for k, v in datasets.items()} }; run `medsift split WS` first")
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
    seed_torch(derive_seed(config.seed, 0))
    model = task.build_model(config).to(device)
    net = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ema = None
    if config.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(float(config.ema_decay)), use_buffers=True)
    dtype = amp_dtype(device, config.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    weights = task.sample_weights(datasets["train"]) if config.sampler == SamplerKind.BALANCED.value else None
    sampler = EpochSampler(len(datasets["train"]), seed=config.seed, weights=weights,
                           num_samples=config.samples_per_epoch, rank=dist.rank,
                           world=dist.world)
    pin = device.type == "cuda"
    train_loader = build_loader(datasets["train"], batch_size=config.batch_size, sampler=sampler,
                                num_workers=config.num_workers, collate=task.collate, pin=pin, seed=config.seed)
    val_loader = build_loader(datasets["val"], batch_size=config.batch_size, num_workers=min(config.num_workers, 1),
                              collate=task.collate, pin=pin, seed=config.seed)
    steps_per_epoch = math.ceil(len(sampler) / config.batch_size)
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, int(config.max_steps_per_epoch))

    metric = config.early_stop_metric
    # planned_epochs: 0 = the config's epochs; set once from the timing probe when there is a time budget.
    state = {"epoch": 0, "step": 0, "best": float("nan"), "best_epoch": -1, "bad_epochs": 0, "elapsed_s": 0.0,
             "planned_epochs": 0, "history": []}
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume and last_path.is_file():
        ckpt = load_checkpoint(last_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        if ema is not None:
            if "ema" not in ckpt:
                raise ConfigError(f"{last_path} was saved without ema_decay; resume with the run's own config")
            ema.load_state_dict(ckpt["ema"])
        for key in state:
            state[key] = ckpt.get(key, state[key])

    def evaluated():
        """The weights that are validated and saved as best: the moving average when ``ema_decay`` is on."""
        return ema.module if ema is not None else unwrap(net)

    tb = TensorBoardLog(out) if dist.is_main else TensorBoardLog(out, enabled=False)
    lines = []

    def emit(text: str) -> None:
        lines.append(text)
        if dist.is_main:
            with open(out / "train.log", "a", encoding="utf-8") as fh:
                fh.write(text + "\n")
            if log is not None:
                log(text)

    if tb.note:
        emit(tb.note)
    emit(f"device={device} amp={dtype} train={len(datasets['train'])} val={len(datasets['val'])} "
         f"steps/epoch={steps_per_epoch} start_epoch={state['epoch']}")
    budget_s = config.max_minutes * 60.0 if config.max_minutes else math.inf
    if math.isfinite(budget_s) and not state["planned_epochs"]:
        planned = 0
        if dist.is_main:
            probe_sampler = EpochSampler(len(datasets["train"]), seed=config.seed, weights=weights,
                                         num_samples=config.samples_per_epoch)
            probe_loader = build_loader(datasets["train"], batch_size=config.batch_size, sampler=probe_sampler,
                                        num_workers=config.num_workers, collate=task.collate, pin=pin,
                                        seed=config.seed)
            timing = probe_timing(task, model, probe_loader, val_loader, datasets["val"], device, dtype,
                                  amp=config.amp, lr=lr_at(config, 0.0), weight_decay=config.weight_decay)
            del probe_loader
            state["elapsed_s"] += timing.probe_s
            planned = plan_epochs(budget_s, spent_s=state["elapsed_s"], step_s=timing.step_s,
                                  steps_per_epoch=steps_per_epoch, val_s=timing.val_s, max_epochs=config.epochs)
            emit(f"planned {planned} epochs for the {config.max_minutes:g}-minute budget "
                 f"({timing.step_s * 1000:.0f} ms/step x {steps_per_epoch} steps + {timing.val_s:.1f} s validation "
                 f"per epoch; probe {timing.probe_s:.1f} s); replay without a budget: --epochs {planned}")
        state["planned_epochs"] = int(broadcast_value(dist, planned, device))
        state["elapsed_s"] = broadcast_value(dist, state["elapsed_s"], device)
    end_epoch = int(state["planned_epochs"]) or config.epochs
    total_steps = steps_per_epoch * end_epoch

    def planned_reason(replanned: bool = False) -> str:
        return (f"planned {end_epoch} epochs for the {config.max_minutes:g}-minute budget"
                + (" (re-planned)" if replanned else ""))

    def out_of_time() -> str:
        return f"time budget (before the planned {end_epoch} epochs ended)"

    stop_reason = planned_reason() if state["planned_epochs"] else "epochs"
    if show_progress is None:
        import sys

        show_progress = sys.stderr.isatty() and dist.is_main
    progress = _Progress(show_progress)
    if state["epoch"] >= end_epoch:
        stop_reason = "already complete"
    try:
        for epoch in itertools.count(state["epoch"]):
            if epoch >= end_epoch:
                break
            if state["elapsed_s"] >= budget_s:
                stop_reason = out_of_time()
                break
            sampler.set_epoch(epoch)
            seed_torch(derive_seed(config.seed, epoch, 1))
            net.train()
            t0 = time.perf_counter()
            losses, seen, steps = [], 0, 0
            progress.start(f"epoch {epoch + 1}/{end_epoch}", steps_per_epoch)
            for batch in train_loader:
                batch = to_device(batch, device)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(config, state["step"] / total_steps)
                loss = train_step(net, task, batch, optimizer, scaler, device, dtype)
                if ema is not None:
                    ema.update_parameters(model)
                steps += 1
                state["step"] += 1
                seen += int(batch["image"].shape[0])
                losses.append(float(loss.detach()))
                elapsed = time.perf_counter() - t0
                progress.advance(loss=losses[-1], rate=seen * dist.world / max(elapsed, 1e-9))
                if steps >= steps_per_epoch or state["elapsed_s"] + elapsed >= budget_s:
                    break
            train_s = time.perf_counter() - t0
            progress.stop()
            row: dict[str, float] = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else math.nan,
                                     "lr": float(optimizer.param_groups[0]["lr"]),
                                     "train_images_per_s": seen * dist.world / max(train_s, 1e-9)}
            improved = False
            if dist.is_main:
                preds = predict(task, evaluated(), val_loader, device, amp=config.amp)
                val = task.val_metrics(preds, datasets["val"])
                row.update({f"val_{k}": float(v) for k, v in val.items()})
                metric = resolve_metric(config.early_stop_metric, {**val, "loss": val.get("loss", math.nan)},
                                        headline=getattr(task, "headline_metric", None))
                value = float(val.get(metric, math.nan))
                improved = _better(metric, value, state["best"])
                if improved:
                    state["best"], state["best_epoch"], state["bad_epochs"] = value, epoch + 1, 0
                else:
                    state["bad_epochs"] += 1
            epoch_s = time.perf_counter() - t0
            state["elapsed_s"] += epoch_s
            row["elapsed_s"] = state["elapsed_s"]
            state["epoch"] = epoch + 1
            row["epoch_s"] = epoch_s
            if state["planned_epochs"]:
                pace = float(np.mean([r["epoch_s"] for r in (state["history"] + [row])[-3:] if "epoch_s" in r]))
                replanned = replan_epochs(end_epoch, done=epoch + 1, budget_s=budget_s, spent_s=state["elapsed_s"],
                                          epoch_s=pace, max_epochs=config.epochs) if dist.is_main else end_epoch
                replanned = int(broadcast_value(dist, replanned, device))
                if replanned != end_epoch:
                    emit(f"re-planned {end_epoch} -> {replanned} epochs: the last epochs took {pace:.1f} s each and "
                         f"the budget has {budget_s - state['elapsed_s']:.0f} s left (the machine's load changed "
                         f"since the probe)")
                    end_epoch, state["planned_epochs"] = replanned, replanned
                    total_steps = steps_per_epoch * end_epoch
                    stop_reason = planned_reason(replanned=True)
            state["history"] = state["history"] + [row]
            if dist.is_main:
                if improved:
                    save_checkpoint(best_path, {"model": evaluated().state_dict(), "epoch": epoch + 1,
                                                "metric": metric, "value": state["best"]})
                save_checkpoint(last_path, {
                    "model": unwrap(net).state_dict(), "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(), **({"ema": ema.state_dict()} if ema is not None else {}),
                    "torch_rng": torch.get_rng_state(), "config": config.to_dict(), **state})
                write_history(state["history"], out)
                tb.log(row, epoch + 1)
                emit(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            stop = config.patience > 0 and state["bad_epochs"] >= config.patience
            if broadcast_flag(dist, stop, device):
                stop_reason = f"early stopping ({metric} did not improve for {config.patience} epochs)"
                break
            if state["elapsed_s"] >= budget_s and epoch + 1 < end_epoch:
                stop_reason = out_of_time()
                break
    finally:
        progress.stop()
        tb.close()
        barrier(dist)
    if dist.is_main and not best_path.is_file():
        save_checkpoint(best_path, {"model": evaluated().state_dict(), "epoch": state["epoch"], "metric": metric,
                                    "value": state["best"]})
    emit(f"stopped: {stop_reason}; best {metric}={state['best']:.4g} at epoch {state['best_epoch']}")
    return FitResult(best_metric=float(state["best"]), best_epoch=int(state["best_epoch"]),
                     epochs_run=int(state["epoch"]), elapsed_s=float(state["elapsed_s"]), stop_reason=stop_reason,
                     history=list(state["history"]))


class _Progress:
    """A rich progress bar showing loss and throughput (images/s); a no-op when hidden."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self._bar = None
        self._task = None

    def start(self, description: str, total: int) -> None:
        if not self.show:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.1f} img/s"),
                             TimeRemainingColumn(), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, loss=math.nan, rate=0.0)

    def advance(self, *, loss: float, rate: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, loss=loss, rate=rate)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


__all__ = ["FitResult", "fit", "predict", "build_loader", "to_device", "DistInfo"]
