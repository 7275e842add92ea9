"""Device selection and mixed precision."""

from __future__ import annotations

import contextlib
from typing import Iterator

from medsift.errors import ConfigError


def select_device(name: str = "auto"):
    """``auto`` picks cuda, then mps, then cpu; otherwise the named device (``cuda:1``, ``cpu``) if available."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device must be auto, cpu, cuda[:N] or mps; got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for but CUDA is not available; use --device cpu or auto")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} asked for but MPS is not available; use --device cpu or auto")
    return device


def amp_dtype(device, enabled: bool):
    """Autocast dtype for ``device``: bfloat16 where supported on GPU, float16 otherwise; None on CPU/off."""
    import torch

    if not enabled or device.type == "cpu":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16


@contextlib.contextmanager
def autocast(device, dtype) -> Iterator[None]:
    """``torch.autocast`` when ``dtype`` is set, else nothing."""
    import torch

    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
