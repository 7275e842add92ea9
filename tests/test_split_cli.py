"""`medsift split WS` on a tiny workspace: writes a new version, keeps audit duplicates together, prints balance."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from medsift.manifest import new_manifest
from medsift.workspace import Workspace


def _workspace(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"image_id": f"{p:02d}_{s}", "patient_id": f"{p:02d}", "image_path": "/x", "format": "png",
             "label_hemorrhage": int(rng.random() < 0.4)} for p in range(20) for s in range(3)]
    ws = Workspace.at(tmp_path / "ws")
    ws.write(new_manifest(rows), reason="ingest")
    return ws


def _app():
    import typer

    from medsift.commands import split as split_cmd

    app = typer.Typer()
    split_cmd.register(app)

    @app.callback()
    def _root() -> None:
        pass

    return app


def test_cli_split_writes_version_and_balance(tmp_path):
    ws = _workspace(tmp_path)
    pd.DataFrame({"image_id": ["00_0"], "check": ["duplicate"], "severity": ["warning"], "score": [1.0],
                  "detail": ["phash"], "related_id": ["07_1"]}).to_csv(ws.sub("audit") / "findings.csv", index=False)
    res = CliRunner().invoke(_app(), ["split", str(ws.root), "--test", "0.2", "--folds", "5", "--seed", "1"])
    assert res.exit_code == 0, res.output
    assert "class balance" in res.output and "1 duplicate pair" in res.output
    df = ws.read()
    assert [v["reason"].split()[0] for v in ws.versions()] == ["ingest", "split"]
    assert df.loc[df["patient_id"].isin(["00", "07"]), "split"].nunique() == 1
    assert df["split"].notna().all()
    balance = pd.read_csv(ws.root / "splits" / "balance.csv", index_col=0)
    assert balance.loc["all", "patients"] == 20


def test_cli_check_fails_on_leaked_patient_and_writes_nothing(tmp_path):
    from medsift.errors import LeakageError

    ws = _workspace(tmp_path)
    df = ws.read()
    df["split"] = "train"
    df.loc[df.index[0], "split"] = "test"   # patient 00 now in train and test
    ws.write(df, reason="hand-made split")
    res = CliRunner().invoke(_app(), ["split", str(ws.root), "--check"])
    assert isinstance(res.exception, LeakageError) and "00 in ['test', 'train']" in str(res.exception)
    assert len(ws.versions()) == 2
