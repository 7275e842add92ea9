"""`medsift label-noise WS`: rank likely label errors (cleanlab on out-of-fold probabilities) into the audit."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("label-noise")
    def label_noise(
        workspace: Path = typer.Argument(..., help="Workspace folder (labelled; folds from `medsift split`)."),
        label: str = typer.Option("hemorrhage", help="Label to check (column label_<name>)."),
        run: Optional[Path] = typer.Option(None, help="Use this run's CNN features (default: thumbnail features)."),
        folds: int = typer.Option(5, min=2, help="Folds when the manifest has none."),
        size: int = typer.Option(64, min=16, help="Thumbnail side (px) of the label-free features."),
        include_pseudo: bool = typer.Option(False, help="Also check pseudo-labelled rows."),
        top: int = typer.Option(10, min=0, help="Rows to print."),
        seed: int = typer.Option(0),
        dry_run: bool = typer.Option(False, help="Print only; do not touch WS/audit/findings.csv."),
    ) -> None:
        """Add `label_noise` findings (image_id, check, severity, score, detail, related_id) to
        WS/audit/findings.csv, replacing earlier label_noise rows."""
        from rich.console import Console

        from medsift.label.noise import find_label_noise

        findings, table = find_label_noise(workspace, label=label, run=run, n_splits=folds, seed=seed, size=size,
                                           include_pseudo=include_pseudo, write=not dry_run)
        console = Console()
        where = "not written" if dry_run else f"written to {Path(workspace) / 'audit' / 'findings.csv'}"
        console.print(f"[bold]{len(findings)}[/] likely label errors among {len(table)} labelled rows ({where})")
        for _, row in findings.head(top).iterrows():
            console.print(f"  {row['image_id']}  {row['severity']:7s} {float(row['score']):.3f}  {row['detail']}")
