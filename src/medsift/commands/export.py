"""`medsift export WS --to coco|yolo|voc|nnunet|monai --out DIR`: write a dataset another tool loads unchanged."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        workspace: Path = typer.Argument(..., help="Workspace folder (holds manifest.parquet)."),
        to: str = typer.Option(..., "--to", help="Target: coco, yolo, voc, nnunet or monai."),
        out: Path = typer.Option(..., "--out", help="Output folder (new or empty; never a source folder)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a previous medsift export in --out."),
        image_format: str = typer.Option("auto", help="auto, png, nifti (nnunet/monai; auto = NIfTI for HU data) "
                                                      "or jpg (coco/yolo/voc, lossy)."),
        box_source: str = typer.Option("annotations", help="Boxes from 'annotations' (manifest boxes) or 'mask' "
                                                           "(connected components)."),
        mask_label: str = typer.Option("lesion", help="Class name of the mask foreground."),
        min_area: int = typer.Option(1, min=1, help="Smallest mask component (pixels) made a box/instance."),
        dataset_id: int = typer.Option(501, help="nnU-Net dataset id (500..999 for custom datasets)."),
        dataset_name: str = typer.Option("medsift", help="nnU-Net dataset name / datalist name."),
    ) -> None:
        """Export the active rows (status ok, not excluded) by split to COCO, YOLO, VOC, nnU-Net v2 or MONAI."""
        import sys

        from rich.console import Console

        from medsift.errors import ConfigError
        from medsift.export import BoxSource, ExportOptions, ImageFormat, export_workspace

        def choice(enum, value: str, name: str):
            try:
                return enum(value)
            except ValueError:
                raise ConfigError(f"--{name} {value!r} is not valid; valid: "
                                  f"{', '.join(e.value for e in enum)}") from None

        options = ExportOptions(image_format=choice(ImageFormat, image_format, "image-format"),
                                box_source=choice(BoxSource, box_source, "box-source"),
                                mask_label=mask_label, min_area=min_area, dataset_id=dataset_id,
                                dataset_name=dataset_name)
        summary = export_workspace(workspace, out, target=to, overwrite=overwrite, options=options,
                                   progress=sys.stderr.isatty())
        console = Console(highlight=False)
        per_split = ", ".join(f"{k} {v}" for k, v in summary.images.items())
        console.print(f"exported {summary.n_images} images ({per_split}) to {summary.target} at {summary.out_dir}")
        console.print(f"boxes {summary.boxes}, masks {summary.masks}")
        if summary.skipped:
            console.print("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.skipped.items())))
        for key, rel in summary.files.items():
            console.print(f"{key}: {rel}")
        for note in summary.notes[:20]:
            console.print(f"note: {note}")
        if len(summary.notes) > 20:
            console.print(f"... {len(summary.notes) - 20} more notes in {summary.out_dir}/.medsift-export.json")
