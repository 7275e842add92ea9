"""Task 1 on an easy synthetic problem: learns clearly above chance; threshold chosen on val; metric set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine_fixtures import tiny_config, train_tiny
from medsift.engine.loop import build_loader, predict
from medsift.metrics.classification import choose_threshold


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("classify")
    task, datasets, result = train_tiny(out, epochs=3)
    model = task.build_model(task.config)
    model.load_state_dict(torch.load(out / "best.pt", weights_only=True)["model"])

    def run(split):
        loader = build_loader(datasets[split], batch_size=32, num_workers=0, collate=task.collate, pin=False, seed=0)
        return predict(task, model, loader, torch.device("cpu"))

    val, test = run("val"), run("test")
    calibration = task.calibrate(val, datasets["val"])
    metrics = task.evaluate(test, datasets["test"], calibration=calibration, out_dir=out / "eval")
    return {"task": task, "datasets": datasets, "val": val, "calibration": calibration, "metrics": metrics,
            "out": out}


def test_model_beats_chance_clearly_on_unseen_patients(trained):
    m = trained["metrics"]
    assert m["auc"] > 0.9          # chance: 0.5
    assert m["accuracy"] > 0.8     # majority class: about 0.5


def test_threshold_is_max_f1_on_validation(trained):
    task, val = trained["task"], trained["val"]
    y, p, _, _ = task.aligned(val, trained["datasets"]["val"])
    expected = choose_threshold(y[:, 0], p[:, 0], rule="max_f1").threshold
    assert trained["calibration"]["thresholds"] == [pytest.approx(expected)]
    assert trained["metrics"]["threshold"] == pytest.approx(expected)


def test_metrics_have_cis_around_estimates(trained):
    m = trained["metrics"]
    for key in ("accuracy", "precision", "recall", "specificity", "f1", "auc", "pr_auc"):
        assert m[f"{key}_ci_low"] <= m[key] + 1e-12 <= m[f"{key}_ci_high"] + 2e-12, key
    assert m["n_patients"] == 3 and m["n_images"] == 30


def test_confusion_counts_add_up(trained):
    m = trained["metrics"]
    assert m["tp"] + m["fp"] + m["tn"] + m["fn"] == m["n_images"]
    assert m["recall"] == pytest.approx(m["tp"] / (m["tp"] + m["fn"]))


def test_scan_level_pooling_reported(trained):
    m = trained["metrics"]
    assert {"patient_max_auc", "patient_mean_auc", "patient_max_f1"} <= set(m)
    assert (trained["out"] / "eval" / "roc.png").read_bytes()[:4] == b"\x89PNG"


def test_weighted_loss_matches_hand_value():
    from engine_fixtures import synthetic

    from medsift.tasks import TASKS

    config = tiny_config(loss="weighted")
    task = TASKS.get("classify")(config)
    df, cache = synthetic()
    task.build_datasets(df, cache, config)
    task.pos_weight = np.array([3.0], dtype=np.float32)
    batch = {"target": torch.tensor([[1.0], [0.0], [float("nan")]])}
    loss = task.loss(batch, torch.zeros(3, 1))
    # logit 0: -log(0.5) per sample; positive weighted x3, negative x1, nan ignored -> (3 + 1) / 2 * ln 2
    assert float(loss) == pytest.approx(2 * math.log(2))


def test_focal_loss_down_weights_easy_examples():
    from medsift.tasks import TASKS

    task = TASKS.get("classify")(tiny_config(loss="focal", focal_gamma=2.0))
    task.pos_weight = np.array([1.0], dtype=np.float32)
    target = {"target": torch.tensor([[1.0]])}
    easy, hard = task.loss(target, torch.tensor([[4.0]])), task.loss(target, torch.tensor([[-4.0]]))
    p = 1 / (1 + math.exp(-4.0))
    assert float(easy) == pytest.approx(0.5 * (1 - p) ** 2 * -math.log(p), rel=1e-5)
    assert float(hard) > 100 * float(easy)


def test_errors_are_located_at_or_off_the_label_edge(trained):
    import pandas as pd

    m = trained["metrics"]
    assert m["errors"] == m["fp"] + m["fn"]
    table = pd.read_csv(trained["out"] / "eval" / "predictions.csv", dtype={"patient_id": str})
    table = table.sort_values("image_id")  # the synthetic stacks are ordered by image id
    changes = table.groupby("patient_id")["label"].transform(lambda s: (s.diff().fillna(0) != 0).astype(int))
    edge = (changes + changes.shift(-1).where(table["patient_id"].shift(-1) == table["patient_id"], 0)) > 0
    assert table["label_edge"].astype(bool).tolist() == edge.tolist()
    wrong = table["label"] != table["pred"]
    assert m["errors_at_label_edge"] == int((wrong & edge).sum())
    assert m["n_label_edge"] == int(edge.sum()) > 0


def test_box_labels_are_known_only_where_someone_annotated():
    import pandas as pd

    from medsift.tasks.data import label_targets

    df = pd.DataFrame({"annotation_path": ["a.xml", "b.xml", None, None, None],
                       "mask_path": [None, None, "m.png", None, None],
                       "label_source": ["annotation", "annotation", None, None, None],
                       "boxes": [[[1, 1, 4, 4, "iph"]], [], [], [[2, 2, 5, 5, "iph"]], []]})
    y = label_targets(df, ["hemorrhage"])[:, 0]
    # boxed -> 1; annotated without a box -> 0; a mask file counts as annotated; boxes alone say "annotated";
    # nothing at all -> unknown, never negative
    np.testing.assert_array_equal(y[:4], [1.0, 0.0, 0.0, 1.0])
    assert np.isnan(y[4])
