"""`medsift report WS`: one self-contained HTML report of the dataset, its audit and its trained runs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        workspace: Path = typer.Argument(..., help="Workspace folder."),
        run: List[Path] = typer.Option([], "--run", help="A training run folder to include (repeatable); "
                                                          "runs under WS/runs are always included."),
        out: Optional[Path] = typer.Option(None, help="HTML file to write (default WS/report.html)."),
    ) -> None:
        """Write the report (images embedded, opens offline) and print its path."""
        import time

        from rich.console import Console

        from medsift.report.html import build_report

        t0 = time.perf_counter()
        path = build_report(workspace, runs=run, out=out)
        Console().print(f"report: [bold]{path}[/] ({path.stat().st_size / 1e6:.1f} MB, "
                        f"{time.perf_counter() - t0:.1f} s)")
