"""Checkpoints: state dicts and plain Python numbers only, so ``torch.load(weights_only=True)`` reads them."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from medsift.errors import MedsiftError
from medsift.manifest import atomic_write_bytes


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, state dicts, numbers, strings, lists) atomically to ``path``."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def load_checkpoint(path: str | Path, *, map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no pickled objects are executed)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise MedsiftError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise MedsiftError(f"checkpoint {path} refused: it holds pickled objects, not only tensors and plain "
                           f"values ({str(exc).splitlines()[-1][:200]})") from None


def unwrap(model):
    """The plain module inside a DDP wrapper."""
    return getattr(model, "module", model)
