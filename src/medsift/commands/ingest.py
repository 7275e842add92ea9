"""`medsift ingest SRC --layout L --workspace WS`: read a source folder into the workspace manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

MAX_PROBLEMS_SHOWN = 15


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        src: Path = typer.Argument(..., help="Source folder (read only, never modified)."),
        layout: str = typer.Option("auto", "--layout", "-l",
                                   help="Layout of SRC: phe-sich, folder, dicom, nifti, or auto (guessed from "
                                        "names and first bytes; the choice and why are printed)."),
        workspace: Optional[Path] = typer.Option(None, "--workspace", "-w",
                                                 help="Workspace folder (required; created if needed)."),
        source: str = typer.Option("default", help="Name of this source; its rows replace earlier ones of "
                                                   "the same name, other sources are kept."),
        labels: Optional[Path] = typer.Option(None, help="Labels CSV (folder layout): filename + label columns."),
        clinical: Optional[Path] = typer.Option(None, help="Clinical sheet (CSV/XLSX) joined on patient id."),
        jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="Worker processes reading files."),
    ) -> None:
        """Scan SRC with a layout, read every file once, and write WS/manifest.parquet with a status per row."""
        from medsift.errors import ConfigError
        from medsift.formats.layouts import LAYOUTS
        from medsift.ingest import ingest as run_ingest
        from medsift.ingest import read_summary

        if layout != "auto" and layout not in LAYOUTS:
            raise ConfigError(f"unknown --layout {layout!r}; expected auto or one of: {', '.join(LAYOUTS.names())}")
        if workspace is None:
            raise ConfigError("missing --workspace; expected the folder of the workspace to create or extend, "
                              "e.g. --workspace ws/")

        run_ingest(src, layout=layout, workspace=workspace, source=source, labels=labels, clinical=clinical,
                   n_jobs=jobs, show_progress=True)
        print_summary(read_summary(workspace, source), workspace=workspace)


def print_summary(summary: dict, *, workspace: Path) -> None:
    """Rich tables: counts, statuses, the first problems, unpaired side files."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if summary.get("layout_guessed"):
        console.print(f"layout {summary['layout']} (guessed: {summary['layout_guessed']}; "
                      f"pass --layout to choose another)")
    table = Table(title=f"ingest {summary['layout']} -> {workspace} (source {summary['source']})")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("rows", str(summary["rows"]))
    table.add_row("patients", str(summary["patients"]))
    for status, n in sorted(summary["status_counts"].items(), key=lambda kv: kv[0] != "ok"):
        table.add_row(f"status {status}", str(n), style="green" if status == "ok" else "red")
    if summary["annotations_total"]:
        table.add_row("annotation files", str(summary["annotations_total"]))
        table.add_row("  paired", str(summary["annotations_paired"]))
        table.add_row("  unpaired", str(summary["annotations_unpaired"]),
                      style="yellow" if summary["annotations_unpaired"] else None)
    for key, n in summary["unpaired_by_problem"].items():
        table.add_row(f"unpaired {key}", str(n), style="yellow")
    if summary["skipped_files"]:
        table.add_row("skipped (docs/hidden)", str(len(summary["skipped_files"])))
    if summary.get("clinical"):
        table.add_row("clinical patients matched", str(summary["clinical"]["matched_patients"]))
    table.add_row("seconds", f"{summary['seconds']:.1f}")
    console.print(table)
    problems = summary["problems"]
    if problems:
        ptable = Table(title=f"rows with problems ({len(problems)})")
        for col in ("image_id", "status", "detail"):
            ptable.add_column(col, overflow="fold")
        for p in problems[:MAX_PROBLEMS_SHOWN]:
            ptable.add_row(str(p["image_id"]), str(p["status"]), str(p["detail"])[:160])
        console.print(ptable)
        if len(problems) > MAX_PROBLEMS_SHOWN:
            console.print(f"... {len(problems) - MAX_PROBLEMS_SHOWN} more in "
                          f"{Path(workspace) / 'ingest' / summary['source'] / 'summary.json'}")
    _print_unpaired(console, Path(workspace) / "ingest" / summary["source"] / "unpaired_annotations.csv")
    if summary.get("ids_prefixed_with_source"):
        console.print(f"[yellow]image ids clashed with another source: prefixed with '{summary['source']}__'[/]")


def _print_unpaired(console, path: Path) -> None:
    import pandas as pd
    from rich.table import Table

    if not path.is_file():
        return
    unpaired = pd.read_csv(path, dtype=str, keep_default_na=False)
    if unpaired.empty:
        return
    groups = group_side_files(unpaired)
    table = Table(title=f"unpaired side files ({len(unpaired)})")
    for col in ("file", "problem", "detail"):
        table.add_column(col, overflow="fold")
    for files, problem, detail in groups[:MAX_PROBLEMS_SHOWN]:
        table.add_row(files, problem, detail)
    console.print(table)
    if len(groups) > MAX_PROBLEMS_SHOWN:
        console.print(f"... {len(groups) - MAX_PROBLEMS_SHOWN} more groups; every file is listed in {path}")


def group_side_files(unpaired, *, min_group: int = 3) -> list[tuple[str, str, str]]:
    """``(files, problem, detail)`` rows for the console: files of one folder with the same problem and the same
    name up to its last ``_`` (one patient's slices in PHE-SICH naming) become one row, ``first … last (n files)``,
    when there are at least ``min_group`` of them, so 33 annotations of a patient without images read as one
    line. Other files keep a row each; the CSV next to the workspace always lists every file."""
    rows: list[tuple[str, str, str]] = []
    keyed: dict[tuple[str, str, str], list[dict]] = {}
    for rec in unpaired.to_dict("records"):
        path = Path(rec["annotation_path"])
        stem = path.name.split(".")[0]
        prefix = stem.rsplit("_", 1)[0] if "_" in stem else stem
        keyed.setdefault((str(path.parent), prefix, rec["problem"]), []).append(rec)
    for (_, prefix, problem), recs in keyed.items():
        recs = sorted(recs, key=lambda r: Path(r["annotation_path"]).name)
        names = [Path(r["annotation_path"]).name for r in recs]
        if len(recs) >= min_group:
            rows.append((f"{names[0]} … {names[-1]} ({len(recs)} files)", problem,
                         f"{recs[0]['detail']} (and {len(recs) - 1} more of {prefix}_*)"))
        else:
            rows.extend((name, problem, r["detail"]) for name, r in zip(names, recs))
    return rows
