"""`medsift queue RUN --strategy S --n 50`: rank unlabelled or doubtful images for an expert to label."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def queue(
        run: Path = typer.Argument(..., help="Finished run folder (model.json + best.pt)."),
        strategy: str = typer.Option("uncertainty", help="uncertainty | entropy | margin | diversity | random."),
        n: int = typer.Option(50, min=1, help="Queue length."),
        workspace: Optional[Path] = typer.Option(None, help="Workspace to rank (default: the run's)."),
        pool: str = typer.Option("doubtful", help="unlabeled | doubtful (unlabelled or pseudo) | all."),
        seed: int = typer.Option(0, help="Seed of the random strategy."),
        device: Optional[str] = typer.Option(None, help="auto | cpu | cuda[:N] | mps."),
    ) -> None:
        """Write RUN/queue-<strategy>.csv, .findings.csv (for `medsift review`), .ids.txt and .html (gallery)."""
        import json

        from rich.console import Console

        from medsift.errors import ConfigError
        from medsift.label.queue import build_queue, write_queue

        meta = run / "model.json"
        if workspace is None:
            if not meta.is_file():
                raise ConfigError(f"{run} is not a finished medsift run (no model.json)")
            workspace = Path(json.loads(meta.read_text())["workspace"])
        table = build_queue(run, workspace, strategy=strategy, n=n, pool=pool, seed=seed, device=device)
        paths = write_queue(table, run, workspace, strategy=strategy)
        console = Console()
        console.print(f"[green]{len(table)}[/] images queued by {strategy}; top: "
                      + ", ".join(f"{i} ({s:.2f})" for i, s in zip(table["image_id"][:5], table["score"][:5])))
        for kind, path in paths.items():
            console.print(f"  {kind}: {path}")
