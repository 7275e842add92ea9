"""Session-scoped synthetic workspaces for the audit and clean tests (built once per test session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class AuditedSynth:
    workspace: Path
    truth_defects: Path
    result: object


@pytest.fixture(scope="session")
def audited_synth(tmp_path_factory) -> AuditedSynth:
    """Tiny phantoms with every defect kind, ingested and fully audited (learned detectors on, short training)."""
    from medsift.audit import run_audit, write_audit
    from medsift.audit.learned import TrainConfig
    from medsift.ingest import ingest
    from medsift.synth import generate
    from medsift.workspace import Workspace

    root = tmp_path_factory.mktemp("audit_synth")
    ds = generate(root / "data", n_patients=4, seed=0, size=128, slices=(12, 14), layouts=["phe-sich"])
    ws = Workspace.at(root / "ws")
    ingest(ds.phe_sich, layout="phe-sich", workspace=ws.root, source="synth", n_jobs=1)
    result = run_audit(ws.read(), workspace=ws.root, n_jobs=1, train_config=TrainConfig(steps=150))
    write_audit(result, ws.root)
    return AuditedSynth(ws.root, ds.truth_defects, result)
