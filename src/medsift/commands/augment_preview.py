"""`medsift augment-preview WS`: a grid PNG of augmented samples with masks and boxes drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("augment-preview")
    def augment_preview_cmd(
        workspace: Path = typer.Argument(..., help="Workspace folder (holds manifest.parquet)."),
        n: int = typer.Option(16, min=1, max=100, help="Number of samples in the grid."),
        out: Optional[Path] = typer.Option(None, help="PNG to write (default WS/augment/preview.png)."),
        task: str = typer.Option("detect", help="classify | multilabel | detect | segment."),
        strength: str = typer.Option("default", help="none | light | default | strong."),
        size: int = typer.Option(256, min=8, help="Output side in pixels."),
        windows: str = typer.Option("brain", help="Comma-separated HU windows (8-bit data passes through)."),
        seed: int = typer.Option(0, help="Seed of row choice and augmentation."),
    ) -> None:
        """Augment manifest rows (those with boxes/masks first) and draw them with their masks and boxes."""
        from medsift.preprocess.config import PreprocessConfig
        from medsift.preprocess.preview import augment_preview
        from medsift.workspace import Workspace

        ws = Workspace.at(workspace)
        config = PreprocessConfig(size=size, windows=tuple(w.strip() for w in windows.split(",") if w.strip()))
        path = augment_preview(ws.read(), out or ws.sub("augment") / "preview.png", n=n, task=task,
                               strength=strength, config=config, seed=seed)
        typer.echo(f"wrote {path}")
