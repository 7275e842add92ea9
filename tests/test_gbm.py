"""Hand-made head-CT features and the LightGBM model on them (``model.arch: head_features_gbm``)."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.errors import ConfigError
from medsift.tasks.head_features import FEATURE_NAMES, head_features, intracranial_mask


def _head(size: int = 128, *, blob_at: tuple[int, int] | None = None) -> np.ndarray:
    """A disk of brain (30 HU) inside a 4-px skull ring at the window top (80 HU), air outside (0 HU);
    optionally a 6-px-radius 70-HU blob centred at ``blob_at``."""
    yy, xx = np.indices((size, size))
    r = np.hypot(yy - size / 2, xx - size / 2)
    hu = np.zeros((size, size), np.float32)
    hu[r < 50] = 30.0
    hu[(r >= 46) & (r < 50)] = 80.0
    if blob_at is not None:
        hu[np.hypot(yy - blob_at[0], xx - blob_at[1]) < 6] = 70.0
    return hu


def _feature(values: np.ndarray, name: str) -> float:
    return float(values[FEATURE_NAMES.index(name)])


def test_intracranial_mask_is_the_disk_inside_the_skull():
    inside, bone = intracranial_mask(_head(), low_hu=0.0, top_hu=80.0)
    expected = np.pi * 45 ** 2  # radius 46 less the one-pixel margin kept from the bone
    assert abs(inside.sum() - expected) / expected < 0.05
    assert bone.sum() > 0 and not (inside & bone).any()


def test_area_is_in_square_cm_and_scales_with_pixel_size():
    one = head_features(_head(), mm_per_px=1.0, low_hu=0.0, top_hu=80.0)
    half = head_features(_head(), mm_per_px=0.5, low_hu=0.0, top_hu=80.0)
    assert one.shape == (len(FEATURE_NAMES),) and one.dtype == np.float32
    assert _feature(one, "intracranial_area_cm2") == pytest.approx(4 * _feature(half, "intracranial_area_cm2"))


def test_no_blood_gives_no_blob():
    f = head_features(_head(), mm_per_px=0.5, low_hu=0.0, top_hu=80.0)
    assert _feature(f, "blood55_count") == 0.0 and _feature(f, "blood65_log_area_total") == 0.0


def test_blob_depth_tells_a_bleed_at_the_skull_from_a_deep_one():
    at_skull = head_features(_head(blob_at=(64, 17)), mm_per_px=1.0, low_hu=0.0, top_hu=80.0)
    deep = head_features(_head(blob_at=(64, 64)), mm_per_px=1.0, low_hu=0.0, top_hu=80.0)
    assert _feature(at_skull, "blood65_count") == pytest.approx(0.1)  # one blob (count / 10)
    assert _feature(at_skull, "blood65_depth_min_largest_mm") < 2.0
    assert _feature(at_skull, "blood65_area_at_skull_k") > 0.0 == _feature(at_skull, "blood65_area_deep_k")
    assert _feature(deep, "blood65_depth_min_largest_mm") > 25.0
    assert _feature(deep, "blood65_area_deep_k") > 0.0 == _feature(deep, "blood65_area_at_skull_k")
    # an off-centre blob unbalances left and right; a centred one does not
    assert _feature(at_skull, "blood65_lr_imbalance") > 0.9 > 0.2 > _feature(deep, "blood65_lr_imbalance")


@pytest.fixture(scope="session")
def gbm_run(tmp_path_factory):
    """16 phantom patients (128 px, 8 slices) split by patient, the GBM trained on hemorrhage vs none."""
    from medsift.engine.config import ModelConfig, TrainConfig
    from medsift.engine.runner import train_run
    from medsift.ingest import ingest
    from medsift.split import assign_splits
    from medsift.synth.dataset import generate
    from medsift.workspace import Workspace

    root = tmp_path_factory.mktemp("gbm")
    ds = generate(root / "src", n_patients=16, size=128, slices=(8, 8), layouts=("phe-sich",), defects=False, seed=3)
    ingest(ds.phe_sich, layout="phe-sich", workspace=root / "ws", n_jobs=1)
    ws = Workspace.at(root / "ws")
    ws.write(assign_splits(ws.read(), test=0.25, val=0.25, folds=0, seed=0), reason="split")
    cfg = TrainConfig(task="classify", batch_size=16, num_workers=0, threads=1, device="cpu", bootstrap=50,
                      model=ModelConfig(arch="head_features_gbm"), preprocess={"size": 128, "windows": ["brain"]})
    meta = train_run(ws.root, root / "run", cfg, show_progress=False)
    return {"root": root, "ws": ws.root, "run": root / "run", "meta": meta}


def test_gbm_run_learns_hemorrhage_on_unseen_patients(gbm_run):
    from medsift.engine.runner import evaluate_run

    metrics, eval_dir = evaluate_run(gbm_run["run"], split="test", gradcam=2)
    assert metrics["auc"] > 0.8, metrics["auc"]
    assert (eval_dir / "predictions.csv").is_file() and not (eval_dir / "gradcam").exists()
    assert "trees, val AUC" in (gbm_run["run"] / "train.log").read_text()


def test_calibration_scores_from_training_match_the_saved_model(gbm_run):
    """fit_gbm hands its val scores to the runner (the features are not measured twice); the saved model, run
    over the val loader as evaluation runs it, must give the same scores, so the same metrics and threshold."""
    from medsift.engine.loop import build_loader, predict
    from medsift.engine.runner import cache_for, load_run
    from medsift.manifest import active
    from medsift.workspace import Workspace

    task, model, meta, device = load_run(gbm_run["run"])
    ws = Workspace.at(gbm_run["ws"])
    df = active(ws.read())
    val = task.build_datasets(df, cache_for(ws, df, task.config), task.config)["val"]
    preds = predict(task, model, build_loader(val, batch_size=8, num_workers=0, collate=task.collate, pin=False,
                                              seed=0), device)
    again = task.val_metrics(preds, val)
    assert set(again) == set(meta["val"])
    for key, value in meta["val"].items():  # the log-loss moves with any change of a single score
        assert again[key] == pytest.approx(value, abs=1e-5), key
    assert task.calibrate(preds, val)["thresholds"] == pytest.approx(meta["calibration"]["thresholds"], abs=1e-5)


def test_tabular_flag_of_an_arch_comes_from_its_factory():
    from medsift.tasks.models import is_tabular

    assert is_tabular("head_features_gbm") and not is_tabular("resnet18") and not is_tabular("unet_tiny")


def test_gbm_checkpoint_is_weights_only_and_reloads_to_the_same_logits(gbm_run):
    import torch

    from medsift.engine.runner import load_run

    state = torch.load(gbm_run["run"] / "best.pt", weights_only=True)["model"]
    assert isinstance(state["_extra_state"]["boosters"][0], str)
    task, model, _, _ = load_run(gbm_run["run"])
    image = torch.rand(3, 1, 128, 128)
    again = load_run(gbm_run["run"])[1]
    assert torch.equal(model(image), again(image)) and model(image).shape == (3, 1)


def test_untrained_gbm_refuses_to_predict():
    import torch

    from medsift.tasks.gbm import HeadFeatureGBM

    with pytest.raises(ConfigError, match="not been trained"):
        HeadFeatureGBM(1, 2)(torch.zeros(1, 1, 32, 32))


def test_pixel_size_from_the_manifest_or_a_nominal_field_of_view():
    import pandas as pd

    from medsift.tasks.gbm import pixel_size_mm

    df = pd.DataFrame({"width": [512, 512, 256], "spacing_mm": [0.5, 0.4, None]})
    assert pixel_size_mm(df, 256) == pytest.approx(0.9)  # median of 1.0 and 0.8
    assert pixel_size_mm(pd.DataFrame({"width": [512]}), 512) == pytest.approx(0.45)


def test_label_tools_read_the_features_as_the_gbm_embedding(gbm_run):
    from medsift.label.features import run_outputs
    from medsift.tasks.head_features import FEATURE_NAMES

    out = run_outputs(gbm_run["run"], gbm_run["ws"])
    assert out.embeddings.shape == (len(out.image_ids), len(FEATURE_NAMES))
    assert out.probs.shape == (len(out.image_ids), 1) and ((out.probs > 0) & (out.probs < 1)).all()


def test_a_label_without_validation_positives_gets_a_fixed_forest(tmp_path):
    """With one class in val there is no early-stopping signal: ROUNDS_WITHOUT_VAL trees, said in train.log."""
    from types import SimpleNamespace

    import pandas as pd

    from medsift.engine.config import ModelConfig, TrainConfig
    from medsift.tasks.gbm import ROUNDS_WITHOUT_VAL, HeadFeatureGBM, fit_gbm

    heads = [_head(64, blob_at=(32, 32) if k % 2 else None) for k in range(60)]
    images = (np.stack(heads)[:, None] / 80.0 * 255).astype(np.uint8)

    class Part(SimpleNamespace):
        def __len__(self):
            return len(self.positions)

    y_train = (np.arange(40) % 2).astype(np.float32)[:, None]
    datasets = {"train": Part(images=images, positions=np.arange(40), targets=y_train),
                "val": Part(images=images, positions=np.arange(40, 60), targets=np.zeros((20, 1), np.float32))}
    cfg = TrainConfig(task="classify", threads=1, model=ModelConfig(arch="head_features_gbm"),
                      preprocess={"size": 64, "windows": ["brain"]})
    task = SimpleNamespace(labels=("hemorrhage",), mean=[0.0], std=[1.0])
    df = pd.DataFrame({"split": ["train"] * 40, "width": [64] * 40})
    result = fit_gbm(task, HeadFeatureGBM(1, 1), datasets, cfg, tmp_path, df=df)
    assert result.history[0]["best_iteration"] == ROUNDS_WITHOUT_VAL
    assert "validation holds one class" in (tmp_path / "train.log").read_text()


def test_predict_on_files_gives_probabilities_and_refuses_gradcam(gbm_run):
    from medsift.engine.inference import predict_files
    from medsift.workspace import Workspace

    files = Workspace.at(gbm_run["ws"]).read()["image_path"].head(2).tolist()
    results = predict_files(gbm_run["run"], files)
    assert len(results) == 2 and all(0.0 < r["prob_hemorrhage"] < 1.0 for r in results)
    with pytest.raises(ConfigError, match="Grad-CAM needs a convolutional network"):
        predict_files(gbm_run["run"], files, gradcam_dir=gbm_run["root"] / "gc")


def test_a_finished_gbm_run_is_not_overwritten(gbm_run):
    from medsift.engine.config import TrainConfig
    from medsift.engine.runner import train_run

    config = TrainConfig.from_yaml(gbm_run["run"] / "config.yaml")
    with pytest.raises(ConfigError, match="already holds a run"):
        train_run(gbm_run["ws"], gbm_run["run"], config, show_progress=False)


def test_gbm_refuses_torchrun_before_touching_the_workspace(gbm_run, tmp_path, monkeypatch):
    from medsift.engine import distributed
    from medsift.engine.config import TrainConfig
    from medsift.engine.runner import train_run

    # a 2-process launch as torchrun would report it (the process group itself is not needed to refuse)
    monkeypatch.setattr(distributed, "init_distributed", lambda: distributed.DistInfo(rank=0, world=2))
    config = TrainConfig.from_yaml(gbm_run["run"] / "config.yaml")
    with pytest.raises(ConfigError, match="without torchrun"):
        train_run(gbm_run["ws"], tmp_path / "run", config, show_progress=False)
    assert not (tmp_path / "run").exists()
