"""`medsift audit WS`: run the dataset checks and write findings, scores, summary and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def audit(
        workspace: Path = typer.Argument(..., help="Workspace folder (made by `medsift ingest`)."),
        check: Optional[List[str]] = typer.Option(None, "--check", "-c", help="Run only this check (repeatable)."),
        no_learned: bool = typer.Option(False, "--no-learned", help="Skip the self-supervised orientation/inversion CNN."),
        jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="Worker processes for decoding images."),
        scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://host:8786)."),
        report: bool = typer.Option(True, "--report/--no-report", help="Write WS/audit/report.html."),
    ) -> None:
        """Audit every image: integrity, pairing, labels, duplicates, sequence, orientation, intensity, outliers."""
        import time

        from rich.console import Console
        from rich.table import Table

        from medsift.audit import run_audit, write_audit
        from medsift.workspace import Workspace

        ws = Workspace.at(workspace)
        df = ws.read()
        t0 = time.perf_counter()
        result = run_audit(df, workspace=ws.root, checks=check or None, learned=not no_learned, n_jobs=jobs,
                           scheduler=scheduler)
        paths = write_audit(result, ws.root, report=report)
        console = Console()
        table = Table(title=f"audit of {len(df)} images ({time.perf_counter() - t0:.1f} s)")
        for col in ("check", "images flagged", "errors", "warnings", "info"):
            table.add_column(col, justify="left" if col == "check" else "right")
        for name, s in result.summary["checks"].items():
            sev = s.get("by_severity", {})
            table.add_row(name, str(s["n_issues"]), str(sev.get("error", 0)), str(sev.get("warning", 0)),
                          str(sev.get("info", 0)))
        console.print(table)
        for key, path in paths.items():
            console.print(f"{key}: {path}", highlight=False)
