"""`medsift review WS`: the local web page where experts accept / exclude / relabel flagged images."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def review(
        workspace: Path = typer.Argument(..., help="Workspace folder (with audit/findings.csv)."),
        port: int = typer.Option(8765, min=0, max=65535, help="TCP port (0 = any free port)."),
        host: str = typer.Option("127.0.0.1", help="Address to bind; keep 127.0.0.1 unless you know why not."),
        reviewer: str = typer.Option("anonymous", help="Your name, written with every decision."),
        queue: str = typer.Option("findings", help="findings (the audit's) or disagreements (model vs label)."),
        run: List[Path] = typer.Option([], "--run", help="Run folder with evaluations of WS (disagreements; "
                                                          "runs under WS/runs are always read)."),
        findings: Optional[Path] = typer.Option(None, help="Findings CSV to review instead of WS/audit/findings.csv "
                                                            "(e.g. RUN/queue-uncertainty.findings.csv)."),
    ) -> None:
        """Serve the review page on http://HOST:PORT/; decisions go to WS/review/decisions.csv at once."""
        from rich.console import Console

        from medsift.review.app import decisions_path, serve

        console = Console()
        if host not in ("127.0.0.1", "localhost", "::1"):
            console.print(f"[bold yellow]warning:[/] binding {host}: anyone who can reach this address can see "
                          "the images and write decisions (there is no login)")

        def ready(url: str) -> None:
            console.print(f"review page: [bold]{url}[/]  (Ctrl-C stops; decisions are saved to "
                          f"{decisions_path(workspace)} as you make them)")

        serve(workspace, host=host, port=port, reviewer=reviewer, queue=queue, runs=tuple(run),
              findings=findings, on_ready=ready)
