"""A tiny synthetic dataset for tests of any part of medsift.

Example (a session-scoped pytest fixture)::

    @pytest.fixture(scope="session")
    def synth(tmp_path_factory):
        return tiny_dataset(tmp_path_factory.mktemp("synth"))
"""

from __future__ import annotations

from pathlib import Path

from medsift.synth.dataset import SynthDataset, generate

TINY = {"n_patients": 3, "seed": 0, "size": 128, "slices": (12, 14), "defects": True}
"""Arguments of :func:`tiny_dataset`: 3 patients x 12-14 slices of 128 x 128, all layouts, defects on."""


def tiny_dataset(tmp_root: str | Path, *, seed: int = 0) -> SynthDataset:
    """Generate the tiny dataset under ``tmp_root`` (3 patients, 128 px, all layouts, defects; about 1 s)."""
    return generate(tmp_root, **{**TINY, "seed": seed})
