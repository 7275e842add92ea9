"""`medsift synth --patients N --out DIR`: write synthetic head-CT phantoms with ground truth."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def synth(
        out: Path = typer.Option(..., "--out", help="Output folder (layout folders and truth/ are replaced)."),
        patients: int = typer.Option(12, "--patients", min=1, help="Number of synthetic patients."),
        seed: int = typer.Option(0, help="Seed: same seed, same bytes."),
        size: int = typer.Option(256, min=32, help="Pixels per side of each slice."),
        min_slices: int = typer.Option(20, help="Fewest slices per patient."),
        max_slices: int = typer.Option(28, help="Most slices per patient."),
        layouts: str = typer.Option("phe-sich,dicom,nifti,folder",
                                    help="Comma-separated layouts: phe-sich, dicom, nifti, folder."),
        defects: bool = typer.Option(True, "--defects/--no-defects", help="Inject defects into the PHE-SICH layout."),
    ) -> None:
        """Generate phantom head CTs (5 hemorrhage subtypes) in real-data layouts, plus truth tables."""
        import time

        from rich.console import Console
        from rich.table import Table

        from medsift.synth import generate, read_truth_defects, read_truth_slices
        from medsift.synth.truth import summarize

        t0 = time.perf_counter()
        names = [n.strip() for n in layouts.split(",") if n.strip()]
        ds = generate(out, n_patients=patients, seed=seed, size=size, slices=(min_slices, max_slices),
                      layouts=names, defects=defects)
        elapsed = time.perf_counter() - t0
        info = summarize(read_truth_slices(ds.truth_slices), read_truth_defects(ds.truth_defects))
        console = Console()
        overview = Table(title=f"synthetic dataset in {ds.root}")
        overview.add_column("item")
        overview.add_column("value", justify="right")
        overview.add_row("patients", str(info["patients"]))
        overview.add_row("slices (PHE-SICH images incl. duplicates)", str(info["slices"]))
        overview.add_row("slices with hemorrhage", str(info["hemorrhage_slices"]))
        overview.add_row("layouts", ", ".join(names))
        overview.add_row("seconds", f"{elapsed:.1f}")
        console.print(overview)
        sub = Table(title="lesions per subtype")
        for col in ("subtype", "patients", "slices", "boxes"):
            sub.add_column(col, justify="left" if col == "subtype" else "right")
        for name, rec in info["subtypes"].iterrows():
            sub.add_row(str(name), str(rec["patients"]), str(rec["slices"]), str(rec["boxes"]))
        console.print(sub)
        if len(info["defects"]):
            dt = Table(title="injected defects (images)")
            dt.add_column("defect")
            dt.add_column("images", justify="right")
            for kind, count in info["defects"].items():
                dt.add_row(str(kind), str(int(count)))
            console.print(dt)
        else:
            console.print("no defects injected")
        console.print(f"truth: {ds.truth_slices} and {ds.truth_defects}")
