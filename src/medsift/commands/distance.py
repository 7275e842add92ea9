"""`medsift distance WS_A WS_B`: how far apart two labelled datasets (or splits, sites, preprocessings) are."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def distance(
        workspace_a: Path = typer.Argument(..., help="Workspace A."),
        workspace_b: Path = typer.Argument(..., help="Workspace B (may be the same folder with another split)."),
        split_a: Optional[str] = typer.Option(None, help="Use only this split of A (train|val|test)."),
        split_b: Optional[str] = typer.Option(None, help="Use only this split of B."),
        label: str = typer.Option("label_hemorrhage", help="Label column that defines the classes."),
        enhance_a: Optional[str] = typer.Option(None, help="Preprocess A with an enhancement (equalize|clahe)."),
        enhance_b: Optional[str] = typer.Option(None, help="Preprocess B with an enhancement (equalize|clahe)."),
        max_samples: int = typer.Option(600, min=2, help="Images sampled per dataset (exact OT is O(n^3))."),
        seed: int = typer.Option(0),
    ) -> None:
        """Optimal-transport dataset distance (OTDD-style, POT) plus simpler distribution statistics."""
        import json

        from rich.console import Console

        from medsift.label.distance import dataset_distance
        from medsift.manifest import active
        from medsift.workspace import Workspace

        def rows(ws: Workspace, split: Optional[str]):
            df = active(ws.read())
            return df if split is None else df[df["split"] == split]

        wa, wb = Workspace.at(workspace_a), Workspace.at(workspace_b)
        rep = dataset_distance(rows(wa, split_a), rows(wb, split_b),
                               cache_a=wa.sub("cache", f"thumbs32-{enhance_a or 'none'}-{split_a or 'all'}"),
                               cache_b=wb.sub("cache", f"thumbs32-{enhance_b or 'none'}-{split_b or 'all'}"),
                               label=label, max_samples=max_samples, enhance_a=enhance_a, enhance_b=enhance_b,
                               seed=seed)
        Console().print_json(json.dumps(rep.as_dict()))
