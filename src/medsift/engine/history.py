"""Training history: one row per epoch in ``history.csv``, curves in ``curves.png``, TensorBoard events in ``tb/``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from medsift.manifest import atomic_write_bytes


def write_history(rows: Sequence[dict[str, float]], out_dir: Path) -> None:
    """Write ``history.csv`` and ``curves.png`` (losses and validation metrics by epoch) into ``out_dir``."""
    import pandas as pd

    df = pd.DataFrame(list(rows))
    atomic_write_bytes(out_dir / "history.csv", df.to_csv(index=False).encode())
    if df.empty:
        return
    from medsift.report.plots import plot_curves

    atomic_write_bytes(out_dir / "curves.png", plot_curves(df))


class TensorBoardLog:
    """Scalars to TensorBoard event files under ``RUN/tb`` (``tensorboard`` is a dependency).

    Should its import fail in a trimmed environment, ``enabled`` is False and ``note`` says why (the CSV/PNG
    history is always written).
    """

    def __init__(self, out_dir: Path, *, enabled: bool = True) -> None:
        self.writer = None
        self.note = ""
        if not enabled:
            self.note = "TensorBoard disabled"
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except (ImportError, ModuleNotFoundError) as exc:
            self.note = f"TensorBoard events skipped: {exc}; `pip install tensorboard` to enable"
            return
        self.writer = SummaryWriter(log_dir=str(out_dir / "tb"))

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def log(self, row: dict[str, float], step: int) -> None:
        if self.writer is None:
            return
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(key.replace("_", "/", 1) if key.startswith(("train_", "val_")) else key,
                                       value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


