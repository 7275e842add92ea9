"""`medsift evaluate RUN --workspace WS --split test|all`: metrics with patient-bootstrap CIs and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        run: Path = typer.Argument(..., help="Run folder written by `medsift train`."),
        workspace: Optional[Path] = typer.Option(None, help="Workspace to evaluate on (default: the training one)."),
        split: str = typer.Option("test", help="test | val | train | all (all = every active row, no split needed)."),
        gradcam: int = typer.Option(4, help="Grad-CAM overlays per case (TP/FP/FN/TN) for classify; 0 = none."),
        device: Optional[str] = typer.Option(None, help="auto | cpu | cuda[:N] | mps."),
    ) -> None:
        """Write RUN/eval/<workspace>-<split>/metrics.json, predictions.csv, ROC/PR/confusion plots."""
        import json

        from rich.console import Console
        from rich.table import Table

        from medsift.engine.runner import evaluate_run

        metrics, out = evaluate_run(run, workspace, split=split, gradcam=gradcam, device=device)
        table = Table("metric", "value", "95% CI (patient bootstrap)")
        for key, value in metrics.items():
            if key.endswith(("_ci_low", "_ci_high")):
                continue
            low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
            ci = f"{low:.3f} - {high:.3f}" if low is not None and high is not None else ""
            table.add_row(key, f"{value:.4g}", ci)
        console = Console()
        console.print(table)
        check = out / "input_check.json"
        for line in (json.loads(check.read_text()).get("warnings", []) if check.is_file() else []):
            console.print(f"[yellow]warning:[/yellow] {line}")
        console.print(f"outputs in {out}")
