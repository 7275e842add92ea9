"""`medsift demo`: generate phantoms and run every stage on them, printing where the outputs are."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Optional[Path] = typer.Option(None, help="Folder for the demo (default: a new temp folder)."),
        patients: int = typer.Option(8, min=2, help="Number of synthetic patients."),
        seed: int = typer.Option(0, help="Seed of the phantom generator."),
    ) -> None:
        """Run the whole pipeline on built-in synthetic head-CT phantoms (no real data needed)."""
        from medsift.demo import run_demo

        run_demo(out=out, patients=patients, seed=seed)
