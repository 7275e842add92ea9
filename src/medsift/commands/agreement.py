"""`medsift agreement WS_A WS_B [WS_C ...]`: inter-annotator agreement and a consensus label set."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def agreement(
        workspaces: List[Path] = typer.Argument(..., help="Two or more workspaces labelling the same images."),
        out: Path = typer.Option(..., help="Folder for summary.json, disagreements.csv, consensus labels/masks."),
        names: Optional[str] = typer.Option(None, help="Comma-separated rater names (default: folder names)."),
        no_masks: bool = typer.Option(False, "--no-masks", help="Skip mask agreement and STAPLE."),
        iou: float = typer.Option(0.5, help="IoU for two boxes to count as the same finding."),
    ) -> None:
        """Cohen/Fleiss kappa for labels, Dice/IoU/HD95 + STAPLE for masks, IoU matching for boxes."""
        from rich.console import Console
        from rich.table import Table

        from medsift.errors import ConfigError
        from medsift.label.consensus import compare_label_sets, write_consensus
        from medsift.workspace import Workspace

        raters = names.split(",") if names else [Path(w).name for w in workspaces]
        if len(raters) != len(workspaces):
            raise ConfigError(f"--names gives {len(raters)} names for {len(workspaces)} workspaces")
        report = compare_label_sets([Workspace.at(w).read() for w in workspaces], raters,
                                    masks=not no_masks, iou_threshold=iou)
        write_consensus(report, out)
        table = Table("what", "agreement", title=f"{report.summary['n_images']} images, raters {', '.join(raters)}")
        for key, value in report.summary.items():
            if isinstance(value, dict):
                shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in value.items()
                         if not isinstance(v, dict)}
                table.add_row(key, ", ".join(f"{k}={v}" for k, v in shown.items()))
        Console().print(table)
        Console().print(f"{len(report.disagreements)} disagreements to adjudicate -> {out / 'disagreements.csv'}")
