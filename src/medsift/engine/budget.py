"""Plan a time-budgeted run in epochs before it starts, so its schedule is a function of steps, not of the clock.

``--max-minutes M`` used to stretch the learning-rate schedule over the clock, so two runs with one seed drew
different schedules and a faster CPU annealed over more epochs than the recipe was measured with. Now a short
probe times a few training steps and one validation pass on a throw-away copy of the model, the number of whole
epochs that fit in the budget is fixed from it, and the run is then an ordinary ``epochs = N`` run: it resumes
exactly, and ``--epochs N`` without a budget replays it on any machine. The clock is still a hard stop if the
machine slows down a lot; before that, when the pace of the last epochs shows the plan no longer fits (another
job started on the machine) or leaves two epochs or more unused (it ended), the plan is changed to the epochs that
fit, logged as a re-plan (such a run replays only approximately).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

PROBE_STEPS = 12      # training steps timed; the first two (allocator and kernel warm-up) are not counted
SAFETY = 0.97         # plan for 97% of the remaining budget: the speed of a shared machine drifts


@dataclass(frozen=True)
class ProbeTiming:
    """Seconds per training step and per validation pass, and the seconds the probe itself took."""

    step_s: float
    val_s: float
    probe_s: float


def plan_epochs(budget_s: float, *, spent_s: float, step_s: float, steps_per_epoch: int, val_s: float,
                max_epochs: int) -> int:
    """Whole epochs (train + validation) that fit in what is left of ``budget_s``; between 1 and ``max_epochs``."""
    epoch_s = steps_per_epoch * max(step_s, 0.0) + max(val_s, 0.0)
    if epoch_s <= 0:
        return max_epochs
    fits = math.floor(SAFETY * max(budget_s - spent_s, 0.0) / epoch_s)
    return int(min(max(fits, 1), max_epochs))


def replan_epochs(planned: int, *, done: int, budget_s: float, spent_s: float, epoch_s: float,
                  max_epochs: int) -> int:
    """The plan after epoch ``done`` at the recent pace ``epoch_s`` (seconds per epoch).

    Shortened when the epochs left overrun the budget by more than half an epoch (another job started on the
    machine), so the schedule still anneals before the clock stops the run (at least one more epoch); lengthened
    when at least two more than planned now fit with the safety margin (the job ended), up to ``max_epochs``;
    otherwise unchanged, so a steady machine keeps its plan and the run replays exactly.
    """
    left = planned - done
    if left <= 0 or epoch_s <= 0:
        return planned
    fits = math.floor(SAFETY * max(budget_s - spent_s, 0.0) / epoch_s)
    if spent_s + (left - 0.5) * epoch_s > budget_s:  # over by more than half an epoch: the clock would cut it
        return done + max(1, min(fits, left))
    if fits >= left + 2:
        return min(done + fits, max(max_epochs, planned))
    return planned


def train_step(net, task, batch, optimizer, scaler, device, dtype) -> "object":
    """One optimisation step (forward, loss, backward, step) at the optimizer's current learning rate; the loss."""
    from medsift.engine.device import autocast

    with autocast(device, dtype):
        output = net(batch["image"])
        loss = task.loss(batch, output)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss


def probe_timing(task, model, train_loader, val_loader, val_dataset, device, dtype, *, amp: bool, lr: float,
                 weight_decay: float, steps: int = PROBE_STEPS) -> ProbeTiming:
    """Time ``steps`` training steps and one validation pass on a deep copy of ``model`` (the run is untouched).

    ``train_loader`` should be a loader of its own (not the run's), so the run's loader state and random draws stay
    exactly as in an unprobed run.
    """
    import torch

    from medsift.engine.loop import predict, to_device

    t_start = time.perf_counter()
    net = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    times: list[float] = []
    t = time.perf_counter()
    for batch in train_loader:
        train_step(net, task, to_device(batch, device), optimizer, scaler, device, dtype)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        now = time.perf_counter()
        times.append(now - t)
        t = now
        if len(times) >= steps:
            break
    counted = times[2:] if len(times) > 4 else times
    step_s = float(sum(counted) / max(len(counted), 1))
    t = time.perf_counter()
    preds = predict(task, net, val_loader, device, amp=amp)
    task.val_metrics(preds, val_dataset)
    val_s = time.perf_counter() - t
    return ProbeTiming(step_s=step_s, val_s=val_s, probe_s=time.perf_counter() - t_start)


__all__ = ["ProbeTiming", "plan_epochs", "replan_epochs", "probe_timing", "train_step", "PROBE_STEPS", "SAFETY"]
