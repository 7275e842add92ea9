"""Deterministic seeds: every random stream of a run derives from ``(seed, epoch, purpose)``."""

from __future__ import annotations

import numpy as np


def derive_seed(*parts: int) -> int:
    """A 31-bit seed mixed from integers with numpy's SeedSequence (stable across platforms)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def seed_torch(seed: int) -> None:
    """Seed torch's global generator (dropout, weight init) and ask for deterministic kernels where cheap."""
    import torch

    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
