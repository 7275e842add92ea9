"""A phantom workspace with hidden labels and one tiny trained run, shared by the label end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def build_labelled_run(root: Path) -> dict:
    """6 phantom patients (64 px, 8 slices, PHE-SICH layout) ingested, split 2 test / 1 val / 3 train with 2
    folds, every other train slice's label hidden, and a 2-epoch 32 px classifier trained on it."""
    from medsift.engine.config import ModelConfig, TrainConfig
    from medsift.engine.runner import train_run
    from medsift.ingest import ingest
    from medsift.split import assign_splits
    from medsift.synth.dataset import generate
    from medsift.workspace import Workspace

    ds = generate(root / "src", n_patients=6, size=64, slices=(8, 8), layouts=("phe-sich",), defects=False, seed=0)
    ingest(ds.phe_sich, layout="phe-sich", workspace=root / "ws", n_jobs=1)
    ws = Workspace.at(root / "ws")
    df = assign_splits(ws.read(), test=0.34, val=0.17, folds=2, seed=0, stratify=None)
    train = np.flatnonzero((df["split"] == "train").to_numpy())
    hidden = df["image_id"].iloc[train[::2]].tolist()
    truth = dict(zip(df["image_id"], df["label_hemorrhage"]))
    df.loc[df["image_id"].isin(hidden), "label_hemorrhage"] = pd.NA
    ws.write(df, reason="split; half of the train labels hidden")
    cfg = TrainConfig(task="classify", epochs=2, batch_size=16, lr=3e-3, num_workers=0, threads=1, amp=False,
                      device="cpu", augment="none", patience=0, bootstrap=20,
                      model=ModelConfig(arch="resnet_small", width=8), preprocess={"size": 32, "windows": ["brain"]})
    train_run(ws.root, root / "run", cfg, show_progress=False)
    return {"root": root, "ws": ws.root, "run": root / "run", "hidden": hidden, "truth": truth, "config": cfg}
