"""`medsift clean WS`: exclude rows chosen from audit findings or review decisions (a new manifest version)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def clean(
        workspace: Path = typer.Argument(..., help="Workspace folder with WS/audit/findings.csv."),
        check: Optional[List[str]] = typer.Option(None, "--check", "-c", help="Exclude findings of this check (repeatable; default all)."),
        severity: str = typer.Option("error", "--severity", "-s", help="Least severe finding that excludes: info|warning|error."),
        decisions: Optional[Path] = typer.Option(None, "--decisions", help="Reviewed decisions CSV (latest per image wins)."),
        no_findings: bool = typer.Option(False, "--no-findings", help="Use only --decisions, not the audit findings."),
    ) -> None:
        """Set excluded/exclude_reason in a new manifest version and write WS/clean/exclusions.csv (nothing is deleted)."""
        from rich.console import Console

        from medsift.audit import read_findings
        from medsift.audit.base import empty_findings
        from medsift.clean import clean as do_clean
        from medsift.clean import exclusions
        from medsift.manifest import atomic_write_bytes
        from medsift.workspace import Workspace

        ws = Workspace.at(workspace)
        df = ws.read()
        findings = empty_findings() if no_findings else read_findings(ws.root)
        out = do_clean(df, findings, checks=check or None, min_severity=severity, decisions=decisions)
        parts = [f"checks={','.join(check) if check else 'all'}", f"severity>={severity}"]
        if decisions is not None:
            parts.append(f"decisions={decisions}")
        version = ws.write(out, reason="clean " + " ".join(parts))
        table = exclusions(df, out)
        path = ws.sub("clean") / "exclusions.csv"
        atomic_write_bytes(path, table.to_csv(index=False).encode())
        n_new = int(out["excluded"].fillna(False).sum() - df["excluded"].fillna(False).sum())
        by = table["origin"].value_counts().to_dict() if len(table) else {}
        Console().print(f"excluded {int(out['excluded'].fillna(False).sum())} of {len(out)} rows "
                        f"({n_new:+d} this run; {by}); manifest version {version}; {path}", highlight=False)
