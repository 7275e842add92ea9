"""`medsift train WS --task TASK --out RUN`: train a model on a workspace's train/val split."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from medsift.engine.config import recipe_names

RECIPES_HELP = ", ".join(recipe_names())


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        workspace: Path = typer.Argument(..., help="Workspace folder (split with `medsift split` first)."),
        task: Optional[str] = typer.Option(None, help="Task: classify | multilabel | segment | detect "
                                                       "(default: the config's task, else classify)."),
        out: Path = typer.Option(..., help="Run folder for model, config, curves and logs."),
        config: Optional[str] = typer.Option(None, help="YAML config file (keys of TrainConfig) or a built-in "
                                                        f"recipe (the benchmarked configs): {RECIPES_HELP}."),
        labels: Optional[str] = typer.Option(None, help="Comma-separated labels (label_<name> columns); "
                                                         "multilabel default ivh,iph,sah,edh,sdh."),
        max_minutes: Optional[float] = typer.Option(None, help="Wall-clock budget of training in minutes: the "
                                                               "epochs that fit are planned from a short timing probe."),
        epochs: Optional[int] = typer.Option(None, help="Epochs (overrides the config)."),
        device: Optional[str] = typer.Option(None, help="auto | cpu | cuda[:N] | mps."),
        resume: bool = typer.Option(False, help="Continue an interrupted run from RUN/last.pt."),
        set_: List[str] = typer.Option([], "--set", help="Config override key=value (repeatable), "
                                                         "e.g. --set model.arch=resnet34 --set preprocess.size=192."),
    ) -> None:
        """Train TASK on WS's train split, select on val, store threshold(s) in RUN/model.json."""
        from rich.console import Console

        from medsift.engine.config import config_from_cli, load_config
        from medsift.engine.runner import train_run
        from medsift.manifest import SUBTYPES

        console = Console()
        cfg = load_config(config)
        overrides = [f"task={task}"] if task else []
        if labels:
            overrides.append(f"labels=[{labels}]")
        elif (task or cfg.task) == "multilabel" and cfg.labels == ("hemorrhage",):
            overrides.append(f"labels=[{','.join(SUBTYPES)}]")
        cfg = config_from_cli(cfg, overrides, max_minutes=max_minutes, epochs=epochs, device=device, sets=set_)
        meta = train_run(workspace, out, cfg, resume=resume, log=console.print)
        if meta:
            console.print(f"[green]trained[/] {meta['task']} ({meta['stop_reason']}, best epoch {meta['best_epoch']}, "
                          f"{meta['train_seconds'] / 60:.1f} min); {_decision(meta['calibration'])}; run in {out}")


def _decision(calibration: dict) -> str:
    """What was chosen on validation, in words: per-label thresholds, or a segmentation probability threshold."""
    if "thresholds" in calibration:
        return "thresholds " + ", ".join(f"{float(t):.3f}" for t in calibration["thresholds"])
    if "threshold" in calibration:
        dice = calibration.get("val_dice_global")
        return f"threshold {float(calibration['threshold']):.2f}" + (f" (val Dice {dice:.3f})" if dice is not None else "")
    return "no threshold calibrated"
