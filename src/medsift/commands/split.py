"""`medsift split WS`: patient-level stratified train/val/test + folds, leakage check, class balance."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def split(
        workspace: Path = typer.Argument(..., help="Workspace folder (holds manifest.parquet)."),
        test: float = typer.Option(0.2, min=0.0, max=0.95, help="Fraction of patients in test."),
        val: float = typer.Option(0.1, min=0.0, max=0.95, help="Fraction of patients in validation."),
        folds: int = typer.Option(5, min=0, help="Cross-validation folds over non-test patients (0 = none)."),
        stratify: str = typer.Option("label_hemorrhage", help="Column to stratify on ('none' to disable); "
                                     "label_* columns are summarised per patient as 'any positive slice'."),
        seed: int = typer.Option(0, help="Seed of the random draws."),
        bins: int = typer.Option(3, min=1, help="Also stratify positive patients by this many quantile bins of "
                                 "their positive-slice share (1 = off)."),
        check: bool = typer.Option(False, "--check", help="Only check the current split for leakage and print "
                                   "its balance (nothing written)."),
    ) -> None:
        """Assign split and fold per patient (duplicates from the audit kept together); fail on leakage."""
        import pandas as pd
        from rich.console import Console
        from rich.table import Table

        from medsift.errors import ConfigError
        from medsift.manifest import atomic_write_bytes
        from medsift.split import assign_splits, check_leakage, duplicate_pairs_from_findings, split_balance
        from medsift.workspace import Workspace

        ws = Workspace.at(workspace)
        df = ws.read()
        findings_path = ws.root / "audit" / "findings.csv"
        pairs = []
        if findings_path.is_file():
            pairs = duplicate_pairs_from_findings(pd.read_csv(findings_path, dtype=str))
        strat = None if stratify.lower() == "none" else stratify
        if check:
            if df["split"].isna().all():
                raise ConfigError(f"{ws.root} has no split yet; run `medsift split {ws.root}` first")
            out = df
        else:
            out = assign_splits(df, test=test, val=val, folds=folds, stratify=strat, seed=seed,
                                duplicate_pairs=pairs, bins=bins)
        check_leakage(out, duplicate_pairs=pairs)
        balance = split_balance(out, label=strat if strat and strat.startswith("label_") else None)
        if not check:
            version = ws.write(out, reason=f"split test={test} val={val} folds={folds} stratify={strat} "
                                            f"bins={bins} seed={seed}")
            atomic_write_bytes(ws.sub("splits") / "balance.csv", balance.to_csv().encode())

        console = Console()
        table = Table(title=f"class balance ({strat or 'no stratification'})")
        short = {"patients": "patients", "images": "images", "pos_images": "pos img", "pct_pos_images": "% pos img",
                 "pos_patients": "pos pat", "pct_pos_patients": "% pos pat"}
        table.add_column("split")
        for col in balance.columns:
            table.add_column(short.get(col, col), justify="right")
        for name in balance.index:
            table.add_row(str(name), *[f"{v:.1f}" if col.startswith("pct") else str(int(v))
                                       for col, v in balance.loc[name].items()])
        console.print(table)
        n_off = int(out["split"].isna().sum())
        if check:
            console.print(f"leakage check passed ({len(pairs)} duplicate pair(s) checked); {n_off} row(s) "
                          f"without a split")
            return
        console.print(f"{len(pairs)} duplicate pair(s) kept together; {n_off} excluded/unreadable row(s) left "
                      f"out; leakage check passed; manifest version {version}; balance in "
                      f"{ws.root / 'splits' / 'balance.csv'}")
