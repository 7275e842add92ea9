"""`medsift pseudo-label RUN --unlabeled WS2`: confident model predictions become marked training labels."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("pseudo-label")
    def pseudo_label(
        run: Path = typer.Argument(..., help="Finished run folder (model.json + best.pt)."),
        unlabeled: Path = typer.Option(..., help="Workspace whose unlabelled rows get pseudo labels (may be the "
                                                 "training workspace itself)."),
        min_confidence: float = typer.Option(0.95, min=0.5, max=1.0,
                                             help="Minimum max(p, 1-p) over the run's labels for a pseudo label."),
        rounds: int = typer.Option(1, min=1, help="Rounds; each after the first retrains on train + pseudo rows."),
        workspace: Optional[Path] = typer.Option(None, help="Training workspace (default: the run's)."),
        out: Optional[Path] = typer.Option(None, help="Folder of the retrained rounds (default RUN/pseudo)."),
        epochs: Optional[int] = typer.Option(None, help="Epochs of each retraining (default: the run's)."),
        device: Optional[str] = typer.Option(None, help="auto | cpu | cuda[:N] | mps."),
    ) -> None:
        """Fill label_* of confident unlabelled rows (label_source=pseudo, pseudo_confidence, pseudo_round) in a
        new manifest version of the unlabelled workspace; human labels and val/test rows are never touched."""
        import dataclasses

        from rich.console import Console

        from medsift.label.pseudo import pseudo_label as run_pseudo

        console = Console()
        retrain = (lambda c: dataclasses.replace(c, epochs=int(epochs))) if epochs else None
        res = run_pseudo(run, unlabeled, min_confidence=min_confidence, rounds=rounds, train_workspace=workspace,
                         out=out, retrain=retrain, device=device, log=console.print)
        for r, (v, a, c, p) in enumerate(zip(res.versions, res.added, res.candidates, res.positives), start=1):
            console.print(f"round {r}: [green]{a}[/] of {c} candidate rows pseudo-labelled ({p} positive); "
                          f"manifest version {v}")
