"""`medsift versions WS` and `medsift diff WS V1 V2`: the manifest's history and what changed."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def versions(workspace: Path = typer.Argument(..., help="Workspace folder.")) -> None:
        """List every manifest version with its reason, size and content hash."""
        from rich.console import Console
        from rich.table import Table

        from medsift.workspace import Workspace

        ws = Workspace.at(workspace)
        ws.read()  # clear error when this is not a workspace
        table = Table("version", "created", "reason", "rows", "sha256")
        for v in ws.versions():
            table.add_row(str(v["version"]), v["created"], v["reason"], str(v["n_rows"]), v["sha256"][:12])
        Console().print(table)

    @app.command()
    def diff(
        workspace: Path = typer.Argument(..., help="Workspace folder."),
        before: int = typer.Argument(..., help="Older version number."),
        after: int = typer.Argument(..., help="Newer version number."),
        show: int = typer.Option(20, help="How many changed images to list per kind."),
    ) -> None:
        """Show added, removed, relabelled and (un)excluded images and class-balance drift between versions."""
        from rich.console import Console
        from rich.table import Table

        from medsift.label.versions import diff_versions
        from medsift.workspace import Workspace

        ws = Workspace.at(workspace)
        d = diff_versions(ws.read_version(before), ws.read_version(after))
        console = Console()
        console.print(f"v{before} -> v{after}: " + ", ".join(f"{k} {v}" for k, v in d.summary().items()))
        for name, ids in (("added", d.added), ("removed", d.removed), ("excluded", d.excluded),
                          ("included again", d.included)):
            if ids:
                console.print(f"[bold]{name}[/]: {', '.join(ids[:show])}{' ...' if len(ids) > show else ''}")
        if len(d.relabelled):
            table = Table("image_id", "label", "before", "after", title="relabelled")
            for r in d.relabelled.head(show).itertuples():
                table.add_row(r.image_id, r.column, str(r.before), str(r.after))
            console.print(table)
        table = Table("label", "rate before", "rate after", "drift (pp)", title="class balance (not excluded)")
        for r in d.balance.itertuples():
            table.add_row(r.label, f"{r.rate_before:.3f}", f"{r.rate_after:.3f}", f"{r.drift_pp:+.1f}")
        console.print(table)
