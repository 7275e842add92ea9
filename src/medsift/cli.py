"""`medsift` entry point. Thin: each verb lives in ``medsift/commands/<verb>.py`` with a ``register(app)``.

Heavy libraries (torch, skimage, ...) are imported inside the command functions, so ``medsift --help``
stays fast. Errors raised on purpose (:class:`~medsift.errors.MedsiftError`) print as one red line, exit 2.
"""

from __future__ import annotations

import importlib
import sys

import typer

from medsift.errors import MedsiftError

# Explicit list of command modules (one verb or a small family of verbs each). Order = help order.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "versions",
    "agreement",
    "distance",
    "ingest",
    "audit",
    "clean",
    "report",
    "review",
    "export",
    "split",
    "synth",
    "augment_preview",
    "pretrain",
    "train",
    "evaluate",
    "predict",
    "pseudo_label",
    "queue",
    "label_noise",
    "ensemble",
)

app = typer.Typer(
    name="medsift",
    help="Medical-imaging datasets from raw folder to audited data and honestly evaluated models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """Medical-imaging datasets from raw folder to audited data and honestly evaluated models."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"medsift.commands.{_name}").register(app)


def main() -> None:
    """Console-script entry: typer handles usage errors (exit 2 with the usage line); medsift's own errors print
    as one red line with exit code 2 instead of a traceback."""
    try:
        app()
    except MedsiftError as exc:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
