"""Shared fixtures: paths to the real data in ../shared (skipped when absent) and tmp workspaces."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """Path of a real dataset in ../shared/data, or skip the test when this machine lacks it."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real data {name} not present at {path}")
    return path


@pytest.fixture(scope="session")
def phe_sich_dir() -> Path:
    return shared_dataset("phe-sich-ct-ids")


@pytest.fixture(scope="session")
def rsna_subtypes_dir() -> Path:
    return shared_dataset("rsna-ich-subtypes")


@pytest.fixture(scope="session")
def rsna_dicom_dir() -> Path:
    return shared_dataset("rsna-dicom")
