"""`medsift predict RUN IMAGE...`: probability and label for images or folders (PNG/JPG/DICOM/NIfTI)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def predict(
        model: Path = typer.Argument(..., help="Run folder written by `medsift train` (model.json + best.pt)."),
        images: List[Path] = typer.Argument(..., help="Image files or folders."),
        gradcam: Optional[Path] = typer.Option(None, help="Write Grad-CAM overlays (PNG) into this folder."),
        device: Optional[str] = typer.Option(None, help="auto | cpu | cuda[:N] | mps."),
        json_out: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
    ) -> None:
        """Print, per image (per slice for volumes), the probability and the label at the stored threshold."""
        import json

        from rich.console import Console
        from rich.table import Table

        from medsift.engine.inference import predict_files

        results = predict_files(model, images, gradcam_dir=gradcam, device=device)
        if json_out:
            for r in results:
                typer.echo(json.dumps(r))
            return
        keys = [k for k in results[0] if k not in ("path", "slice")]
        table = Table("file", "slice", *keys)
        for r in results:
            table.add_row(Path(r["path"]).name, str(r["slice"]),
                          *[f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys])
        Console().print(table)
