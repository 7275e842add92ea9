"""`medsift pretrain WS --out RUN`: self-supervised contrastive (SimCLR-like) pretraining on WS's own slices."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def pretrain(
        workspace: Path = typer.Argument(..., help="Workspace folder (labels not needed; test rows are skipped)."),
        out: Path = typer.Option(..., help="Run folder; RUN/best.pt holds the encoder weights."),
        config: Optional[str] = typer.Option(None, help="YAML config file (keys of TrainConfig) or a built-in "
                                                        "recipe whose model and preprocessing to pretrain, e.g. "
                                                        "ct-classify."),
        max_minutes: Optional[float] = typer.Option(None, help="Wall-clock budget in minutes."),
        epochs: Optional[int] = typer.Option(None, help="Epochs."),
        device: Optional[str] = typer.Option(None, help="auto | cpu | cuda[:N] | mps."),
        resume: bool = typer.Option(False, help="Continue from RUN/last.pt."),
        set_: List[str] = typer.Option([], "--set", help="Config override key=value (repeatable)."),
    ) -> None:
        """Train the encoder to match two augmented views of each slice (strong augmentation unless
        --set augment=...); use it with `medsift train ... --set model.pretrained=RUN/best.pt` (same arch, channels)."""
        from rich.console import Console

        from medsift.engine.config import config_from_cli, load_config
        from medsift.engine.runner import train_run
        from medsift.tasks.simclr import PRETRAIN_OVERRIDES

        console = Console()
        cfg = config_from_cli(load_config(config), PRETRAIN_OVERRIDES, max_minutes=max_minutes, epochs=epochs,
                              device=device, sets=set_)
        meta = train_run(workspace, out, cfg, resume=resume, log=console.print)
        if meta:
            console.print(f"[green]pretrained[/] encoder: {out / 'best.pt'} (val {meta['val']}); use "
                          f"--set model.pretrained={out / 'best.pt'} --set model.arch={cfg.model.arch}")
