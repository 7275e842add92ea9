"""The segment task on phantoms: crop sampling, 2.5D edges, inference, engine training, evaluation, exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from medsift.errors import ConfigError  # noqa: E402
from medsift.tasks import segment as sg  # noqa: E402
from medsift.tasks import seg_outputs as so  # noqa: E402


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def phantom_ws(tmp_path_factory):
    """3 phantom patients (PHE-SICH layout, 128 px) ingested, split by patient, cached with 2.5D context 1."""
    from medsift.engine.config import TrainConfig
    from medsift.engine.runner import cache_for
    from medsift.ingest import ingest
    from medsift.manifest import active
    from medsift.split import assign_splits
    from medsift.synth.testing import tiny_dataset
    from medsift.workspace import Workspace

    root = tmp_path_factory.mktemp("segtask")
    synth = tiny_dataset(root / "src")
    ingest(synth.phe_sich, layout="phe-sich", workspace=root / "ws")
    ws = Workspace.at(root / "ws")
    ws.write(assign_splits(ws.read(), test=0.34, val=0.34, folds=0, seed=0, stratify=None), reason="test split")
    df = active(ws.read())
    cfg = TrainConfig(task="segment", epochs=1, batch_size=4, lr=3e-3, amp=False, device="cpu", num_workers=0,
                      early_stop_metric="dice_global", patience=0, bootstrap=50, max_steps_per_epoch=2,
                      sampler="balanced", preprocess={"size": 128, "windows": ["brain"], "context": 1})
    cache = cache_for(ws, df, cfg)
    return {"root": root, "df": df, "cfg": cfg, "cache": cache, "synth": synth}


@pytest.fixture(scope="session")
def trained(phantom_ws):
    """A 2-step run through the engine's runner (train_run, evaluate_run) and its test predictions."""
    from medsift.engine.loop import build_loader, predict
    from medsift.engine.runner import evaluate_run, load_run, train_run
    from medsift.tasks import TASKS

    if "segment" not in TASKS:  # until medsift.tasks registers it (see the segment task's docs)
        TASKS._items["segment"] = sg.SegmentTask
    run = phantom_ws["root"] / "run"
    meta = train_run(phantom_ws["root"] / "ws", run, phantom_ws["cfg"], show_progress=False)
    metrics, eval_dir = evaluate_run(run, split="test")
    task, model, _, dev = load_run(run, device="cpu")
    datasets = task.build_datasets(phantom_ws["df"], phantom_ws["cache"], task.config)
    loader = build_loader(datasets["test"], batch_size=4, num_workers=0, collate=task.collate, pin=False, seed=0)
    preds = predict(task, model, loader, dev)
    return {"task": task, "datasets": datasets, "meta": meta, "preds": preds, "run": run, "model": model,
            "metrics": metrics, "eval_dir": eval_dir}


# ------------------------------------------------------------------------------------------------ sampling


def test_head_box_hand_computed():
    img = np.zeros((1, 10, 12), np.uint8)
    img[0, 2:5, 3:9] = 50
    assert sg.head_box(img) == (2, 5, 3, 9)
    assert sg.head_box(np.zeros((4, 6), np.uint8)) == (0, 4, 0, 6)


def test_positive_crops_contain_the_lesion():
    mask = np.zeros((100, 100), np.uint8)
    mask[70:73, 10:13] = 1
    lesion = np.flatnonzero(mask.ravel())
    for seed in range(20):
        p = sg.sample_crop(mask.shape, size=32, lesion=lesion, box=(0, 100, 0, 100),
                           rng=np.random.default_rng(seed), positive_fraction=1.0)
        assert mask[p.y0:p.y0 + 32, p.x0:p.x0 + 32].any()
        assert 0 <= p.y0 <= 68 and 0 <= p.x0 <= 68


def test_background_crops_centre_inside_head_box():
    for seed in range(20):
        p = sg.sample_crop((100, 100), size=20, lesion=None, box=(40, 50, 60, 70),
                           rng=np.random.default_rng(seed))
        cy, cx = p.y0 + 10, p.x0 + 10
        assert 40 <= cy < 50 and 60 <= cx < 70


def test_apply_crop_flips_image_and_mask_together():
    img = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = 1
    x, y = sg.apply_crop(img, mask, sg.CropParams(0, 0, 2, True, 1.0))
    assert x.shape == (1, 2, 2) and y.shape == (1, 2, 2)
    assert np.allclose(x[0] * 255, [[1, 0], [5, 4]])
    assert y[0, 0, 1] == 1 and y.sum() == 1


def test_apply_crop_pads_when_crop_exceeds_slice():
    img = np.full((1, 3, 3), 255, np.uint8)
    x, y = sg.apply_crop(img, np.ones((3, 3), np.uint8), sg.CropParams(0, 0, 5, False, 1.0))
    assert x.shape == (1, 5, 5) and x[0, :3, :3].min() == 1.0 and x[0, 4].max() == 0.0 and y.sum() == 9


def test_same_seed_same_crop():
    mask = np.zeros((64, 64), np.uint8)
    mask[30:34, 30:34] = 1
    lesion = np.flatnonzero(mask.ravel())
    a = sg.sample_crop(mask.shape, size=32, lesion=lesion, box=(0, 64, 0, 64), rng=np.random.default_rng(5))
    b = sg.sample_crop(mask.shape, size=32, lesion=lesion, box=(0, 64, 0, 64), rng=np.random.default_rng(5))
    assert a == b


def test_options_reject_crop_not_multiple_of_16():
    with pytest.raises(ConfigError, match="multiple of 16"):
        sg.SegmentOptions(crop=100)


def test_options_from_train_config_map_model_and_loss():
    from medsift.engine.config import ModelConfig, TrainConfig

    cfg = TrainConfig(task="segment", loss="focal", model=ModelConfig(arch="segresnet"))
    opts = sg.segment_options(cfg)
    assert opts.model == "segresnet" and opts.loss == "dice_focal"


def test_round_box_grows_to_multiple_of_16_inside_image():
    y0, y1, x0, x1 = sg._round_box((10, 30, 100, 120), 128, 128, 16)
    assert (y1 - y0) % 16 == 0 and (x1 - x0) % 16 == 0
    assert y0 <= 10 and y1 >= 30 and x0 <= 100 and x1 >= 120 and x1 <= 128


# ------------------------------------------------------------------------------------------------ inference


class _Local(torch.nn.Module):
    """A 1x1 convolution: local and translation-equivariant, so cropping and flipping commute with it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 1)
        torch.nn.init.constant_(self.conv.weight, 4.0)
        torch.nn.init.constant_(self.conv.bias, -1.0)

    def forward(self, x):
        return self.conv(x)


def test_head_crop_inference_matches_full_pass_inside_and_is_background_outside():
    x = torch.zeros(1, 1, 64, 64)
    x[..., 20:40, 10:30] = torch.rand(1, 1, 20, 20)
    model = _Local()
    full = sg.predict_logits(model, x, options=sg.SegmentOptions(head_crop=False))
    box = torch.as_tensor([[20, 40, 10, 30]])
    cropped = sg.predict_logits(model, x, boxes=box, options=sg.SegmentOptions(head_crop=True))
    y0, y1, x0, x1 = sg._round_box((20, 40, 10, 30), 64, 64, 16)
    assert torch.allclose(cropped[..., y0:y1, x0:x1], full[..., y0:y1, x0:x1])
    assert float(cropped[..., 0, 63]) == -20.0


def test_tta_and_sliding_window_agree_with_plain_pass_for_a_local_model():
    x = torch.rand(2, 1, 64, 64)
    model = _Local()
    plain = sg.predict_logits(model, x, options=sg.SegmentOptions(head_crop=False))
    tta = sg.predict_logits(model, x, options=sg.SegmentOptions(head_crop=False, tta=True))
    sw = sg.predict_logits(model, x, options=sg.SegmentOptions(head_crop=False, roi=32))
    assert torch.allclose(plain, tta, atol=1e-6) and torch.allclose(plain, sw, atol=1e-5)


# ------------------------------------------------------------------------------------------------ 2.5D


def test_25d_channels_repeat_the_edge_slice_at_volume_ends(phantom_ws):
    task = sg.SegmentTask(phantom_ws["cfg"])
    df = phantom_ws["df"]
    ds = task.dataset(df, phantom_ws["cache"], augment=False)
    pid = ds.patients[0]
    mine = np.flatnonzero(ds.patients == pid)
    order = mine[np.argsort(ds.slice_index[mine])]
    first, second, last = order[0], order[1], order[-1]
    img = lambda i: np.asarray(ds.images[ds.positions[i]])  # noqa: E731
    assert np.array_equal(img(first)[0], img(first)[1])       # no slice before the first: itself repeated
    assert np.array_equal(img(last)[2], img(last)[1])         # no slice after the last
    assert np.array_equal(img(second)[0], img(first)[1])      # the previous neighbour of slice 2 is slice 1
    assert ds.center_channel == 1


def test_sample_weights_give_lesion_slices_half_the_draws(phantom_ws):
    task = sg.SegmentTask(phantom_ws["cfg"])
    ds = task.dataset(phantom_ws["df"], phantom_ws["cache"], augment=True)
    w = task.sample_weights(ds)
    assert w[ds.has_lesion()].sum() / w.sum() == pytest.approx(0.5)


def test_val_metrics_of_perfect_predictions(phantom_ws):
    task = sg.SegmentTask(phantom_ws["cfg"])
    ds = task.dataset(phantom_ws["df"], phantom_ws["cache"], augment=False)
    probs = np.stack([np.asarray(ds.masks[p]) * 255 for p in ds.positions]).astype(np.uint8)
    out = task.val_metrics({"index": np.arange(len(ds))[::-1], "prob": probs[::-1]}, ds)
    assert out["dice_global"] == 1.0 and out["dice_per_image"] == 1.0 and out["auc"] == 1.0


# ------------------------------------------------------------------------------------------------ engine


def test_runner_trains_calibrates_and_evaluates(trained):
    assert (trained["run"] / "best.pt").is_file()
    assert trained["meta"]["epochs_run"] == 1
    assert 0.1 <= trained["meta"]["calibration"]["threshold"] <= 0.9
    assert trained["meta"]["state"]["segment"]["model"] == "unet_tiny"
    assert trained["preds"]["prob"].dtype == np.uint8
    data = json.loads((trained["eval_dir"] / "metrics.json").read_text())
    assert trained["eval_dir"].name.endswith("-test")
    assert data["n_images"] == len(trained["datasets"]["test"])
    assert (trained["eval_dir"] / "slice_confusion.png").is_file()


def test_predict_files_writes_masks_and_overlays(trained, phantom_ws, tmp_path):
    from medsift.formats.masks import read_mask_png
    from medsift.tasks.seg_predict import predict_segment_files

    files = sorted((phantom_ws["synth"].phe_sich / "images").glob("*.png"))[:2]
    out = predict_segment_files(trained["run"], files, out_dir=tmp_path, overlay=True, device="cpu")
    assert [Path(r["path"]).name for r in out] == [f.name for f in files]
    for r in out:
        assert read_mask_png(r["mask"]).sum() == r["lesion_pixels"]
        assert Path(r["overlay"]).is_file() and 0.0 <= r["max_prob"] <= 1.0


def test_a_head_cropped_run_trains_evaluates_and_predicts_masks_on_the_file(phantom_ws, tmp_path):
    """``preprocess.crop_head`` for segmentation: train, evaluate, and mask files at each file's size."""
    import dataclasses

    from PIL import Image

    from medsift.engine.config import apply_overrides
    from medsift.engine.runner import evaluate_run, train_run
    from medsift.formats.masks import read_mask_png
    from medsift.tasks.seg_predict import predict_segment_files

    from medsift.engine.runner import cache_for
    from medsift.tasks import TASKS
    from medsift.workspace import Workspace

    cfg = apply_overrides(dataclasses.replace(phantom_ws["cfg"]), ["preprocess.crop_head=true"])
    run = tmp_path / "run"
    train_run(phantom_ws["root"] / "ws", run, cfg, show_progress=False)
    metrics, _ = evaluate_run(run, split="test")
    assert 0.0 <= metrics["dice_global"] <= 1.0 and metrics["n_images"] > 0
    # evaluate's exported masks are in file pixels: perfect predictions export (about) the source mask files
    df = phantom_ws["df"]
    task = TASKS.get("segment")(cfg)
    ds = task.build_datasets(df, cache_for(Workspace.at(phantom_ws["root"] / "ws"), df, cfg), cfg)["test"]
    assert any(sq is not None for _, sq in ds.file_frames)
    probs = np.stack([np.asarray(ds.masks[p]) * 255 for p in ds.positions]).astype(np.uint8)
    task.evaluate({"index": np.arange(len(ds)), "prob": probs}, ds, calibration={"threshold": 0.5},
                  out_dir=tmp_path / "eval")
    sources = dict(zip(df["image_id"].astype(str), df["mask_path"]))
    lesions = 0
    for iid in ds.image_ids:
        exported = read_mask_png(tmp_path / "eval" / "predictions" / "masks" / f"{iid}.png") > 0
        source = read_mask_png(sources[iid]) > 0
        assert exported.shape == source.shape
        if source.sum() >= 20:   # post-processing drops specks; a lesion comes back where it was drawn
            lesions += 1
            assert 2 * (exported & source).sum() / (exported.sum() + source.sum()) > 0.85
    assert lesions >= 3
    src = sorted((phantom_ws["synth"].phe_sich / "images").glob("*.png"))[:1]
    out = predict_segment_files(run, src, out_dir=tmp_path / "pred", overlay=True, device="cpu")
    size = Image.open(src[0]).size[::-1]
    assert read_mask_png(out[0]["mask"]).shape == size
    assert np.asarray(Image.open(out[0]["overlay"])).shape[:2] == size


def test_predicted_mask_lies_on_the_file_it_came_from(trained, phantom_ws, tmp_path):
    """A file of another size than the model's 128 x 128 frame (here 96 x 160, not square) gets a mask of its own
    size, covering the same place: the file's content stretched is the model's view."""
    from PIL import Image

    from medsift.formats.masks import read_mask_png
    from medsift.preprocess.resample import resize_image
    from medsift.tasks.seg_predict import predict_segment_files, to_file_frame

    def decodes(path):
        try:
            Image.open(path).load()
        except OSError:                      # the phantom set carries a truncated file on purpose
            return False
        return True

    src = [p for p in sorted((phantom_ws["synth"].phe_sich / "images").glob("*.png")) if decodes(p)][:12]
    out_same = predict_segment_files(trained["run"], src, out_dir=tmp_path / "same", device="cpu")
    k = 0
    same = read_mask_png(out_same[k]["mask"])
    grey = np.asarray(Image.open(src[k]).convert("L"), dtype=np.float32)
    wide = tmp_path / "wide.png"
    Image.fromarray(np.rint(resize_image(grey, (96, 160))).astype(np.uint8)).save(wide)
    out = predict_segment_files(trained["run"], [wide], out_dir=tmp_path / "wide", overlay=True, device="cpu")
    mask = read_mask_png(out[0]["mask"])
    assert mask.shape == (96, 160) and out[0]["lesion_pixels"] == int((mask > 0).sum())
    # the overlay lies on the file too: its size, the file's grey, tinted red exactly where the written mask is
    rgb = np.asarray(Image.open(out[0]["overlay"]).convert("RGB")).astype(int)
    wide_grey = np.asarray(Image.open(wide).convert("L")).astype(int)
    assert rgb.shape == (96, 160, 3)
    tinted = (rgb[..., 0] > rgb[..., 1] + 20) & (rgb[..., 0] > rgb[..., 2] + 20)
    assert np.array_equal(tinted, mask > 0)
    assert np.abs(rgb[..., 1] - wide_grey)[mask == 0].mean() < 6      # the model's view, resized back
    # the resize back: a block of the 128 x 128 frame lands on the same fraction of the file
    block = np.zeros((128, 128), np.uint8)
    block[32:64, 64:96] = 1
    back = to_file_frame(block, (96, 160))
    assert back.shape == (96, 160) and back[24:48, 80:120].all() and back.sum() == 24 * 40
    assert to_file_frame(block, (128, 128)) is block and to_file_frame(block, (None, None)) is block
    assert same.shape == grey.shape


def test_predict_on_a_nifti_volume_writes_a_label_volume_on_its_grid(trained, phantom_ws, tmp_path):
    import nibabel as nib

    from medsift.formats.masks import read_mask_png
    from medsift.tasks.seg_predict import predict_segment_files

    volume = sorted(phantom_ws["synth"].nifti.rglob("*.nii.gz"))[0]
    source = nib.load(volume)
    out = predict_segment_files(trained["run"], [volume], out_dir=tmp_path, device="cpu")
    assert len(out) == source.shape[2] and len({r["mask_volume"] for r in out}) == 1
    label = nib.load(out[0]["mask_volume"])
    assert label.shape == source.shape[:3] and np.allclose(label.affine, source.affine)
    data = np.asarray(label.dataobj)
    assert data.dtype == np.uint8
    for r in out:  # slice k of the volume is the k-th PNG mask, in the reader's (X, Y, Z) -> (Y, X) convention
        np.testing.assert_array_equal(data[:, :, r["slice"]].T, (read_mask_png(r["mask"]) > 0).astype(np.uint8))
    assert int(data.sum()) == sum(r["lesion_pixels"] for r in out)
    # the stacking itself, with masks that are not empty and not symmetric: a corner block on slice 1 lands at
    # voxels (x 0..2, y 0..4), where the reader shows slice 1's rows 0..4 and columns 0..2
    import pandas as pd

    from medsift.tasks.seg_predict import _write_label_volumes

    height, width = source.shape[1], source.shape[0]
    masks = [np.zeros((height, width), np.uint8) for _ in range(2)]
    masks[1][0:5, 0:3] = 1
    df = pd.DataFrame({"format": ["nifti", "nifti"], "image_path": [str(volume)] * 2})
    rows = [{"slice": 0}, {"slice": 1}]
    _write_label_volumes(tmp_path / "unit", df, rows, masks)
    data = np.asarray(nib.load(rows[1]["mask_volume"]).dataobj)
    assert data.sum() == 15 and data[0:3, 0:5, 1].all() and not data[:, :, 0].any()


def test_evaluate_writes_contract_metrics_and_overlays(trained, tmp_path):
    task, ds = trained["task"], trained["datasets"]["test"]
    out = task.evaluate(trained["preds"], ds, calibration={"threshold": 0.5}, out_dir=tmp_path)
    data = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("dice_global", "iou_global", "sensitivity_global", "specificity_global", "dice_per_image",
                "dice_per_patient", "hd95", "n_images", "n_patients"):
        assert key in data
    for key in ("dice_global", "dice_per_patient"):
        assert f"{key}_ci_low" in data and f"{key}_ci_high" in data
    assert data["n_images"] == len(ds)
    assert out["slice_tp"] + out["slice_fp"] + out["slice_fn"] + out["slice_tn"] == len(ds)
    assert sorted(p.name.split("_")[0] for p in (tmp_path / "overlays").iterdir())[:1] == ["best"]


def test_evaluate_exports_round_trip(trained, tmp_path):
    from medsift.formats.masks import read_mask_png

    task, ds = trained["task"], trained["datasets"]["test"]
    # perfect predictions make the expected exported masks known: the ground truth itself
    probs = np.stack([np.asarray(ds.masks[p]) * 255 for p in ds.positions]).astype(np.uint8)
    task.evaluate({"index": np.arange(len(ds)), "prob": probs}, ds, calibration={"threshold": 0.5},
                  out_dir=tmp_path)
    truth = {iid: np.asarray(ds.masks[p]) > 0 for iid, p in zip(ds.image_ids, ds.positions)}
    rle = so.read_coco_rle(tmp_path / "predictions" / "coco_rle.json")
    assert set(rle) == set(truth)
    for iid, m in truth.items():
        post = rle[iid]
        assert np.array_equal(read_mask_png(tmp_path / "predictions" / "masks" / f"{iid}.png"), post)
        assert not (post & ~m).any()  # post-processing only removes pixels
    pid = ds.patients[0]
    vol = so.read_nifti_volume(tmp_path / "predictions" / "nifti" / f"{pid}.nii.gz")
    mine = np.flatnonzero(ds.patients == pid)
    order = mine[np.argsort(ds.slice_index[mine])]
    assert vol.shape[0] == len(order)
    assert np.array_equal(vol[0], rle[ds.image_ids[order[0]]])


# ------------------------------------------------------------------------------------------------ outputs


def test_overlay_colours_truth_prediction_and_overlap():
    img = np.zeros((8, 8), np.uint8)
    t = np.zeros((8, 8), bool)
    t[1:4, 1:4] = True
    p = np.zeros((8, 8), bool)
    p[2:6, 2:6] = True
    rgb = so.overlay(img, t, p)
    assert tuple(rgb[1, 1]) == so.GT_COLOR                      # truth-only outline
    assert tuple(rgb[5, 5]) == so.PRED_COLOR                    # prediction-only outline
    assert rgb[3, 3, 0] > 100 and rgb[3, 3, 1] > 100 and rgb[3, 3, 2] < 60  # overlap: yellow


def test_pick_cases_best_median_worst():
    cases = so.pick_cases([0.5, 0.9, 0.1, np.nan, 0.7], per_group=1)
    assert cases == {"best": [1], "median": [0], "worst": [2]}


def test_nifti_export_orders_slices_and_keeps_spacing(tmp_path):
    import nibabel as nib

    a, b = np.zeros((4, 5), bool), np.ones((4, 5), bool)
    paths = so.export_nifti_volumes(tmp_path, ["P", "P"], [3, 1], [a, b], spacing_mm=[0.5, 0.5],
                                    slice_thickness_mm=[5.0, 5.0])
    vol = so.read_nifti_volume(paths[0])
    assert vol.shape == (2, 4, 5) and vol[0].all() and not vol[1].any()
    assert np.allclose(nib.load(str(paths[0])).header.get_zooms(), (0.5, 0.5, 5.0))


def test_ensemble_of_one_segment_run_twice_scores_like_the_run(trained, phantom_ws, tmp_path):
    from typer.testing import CliRunner

    from medsift.cli import app

    res = CliRunner().invoke(app, ["ensemble", str(phantom_ws["root"] / "ws"), "--out", str(tmp_path), "--run",
                                   str(trained["run"]), "--run", str(trained["run"]), "--bootstrap", "50"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "dice_global" in res.output
    m = json.loads((tmp_path / "metrics.json").read_text())
    # the mean of two identical maps is the map; the threshold is chosen on val the way the run chose its own
    assert m["threshold_from"] == "val" and m["n_runs"] == 2
    assert m["ensemble_threshold"] == pytest.approx(trained["meta"]["calibration"]["threshold"])
    assert m["ensemble_dice_global"] == pytest.approx(trained["metrics"]["dice_global"])
    assert m["ensemble_n_images"] == trained["metrics"]["n_images"]
    assert m["run0_dice_global"] == m["run1_dice_global"]
    assert (tmp_path / "eval" / "per_image.csv").is_file() and (tmp_path / "eval" / "predictions" / "masks").is_dir()


# ------------------------------------------------------------------------------- classify -> segment cascade


def test_slice_gate_zeroes_the_maps_of_slices_scored_below_the_threshold():
    from medsift.label.seg_cascade import gate_maps

    maps = np.full((3, 2, 2), 100, np.uint8)
    gated = gate_maps(maps, ["a", "b", "c"], {"a": 0.9, "b": 0.1, "c": 0.5}, 0.5)
    assert gated[:, 0, 0].tolist() == [100, 0, 100] and maps[1].max() == 100
    with pytest.raises(ConfigError, match="no score for 1 slices"):
        gate_maps(maps, ["a", "b", "d"], {"a": 0.9, "b": 0.1, "c": 0.5}, 0.5)


def test_gate_threshold_keeps_the_asked_share_of_lesion_slices():
    from medsift.label.seg_cascade import sensitive_threshold

    scores = [0.9, 0.8, 0.1, 0.05, 0.7, 0.3, 0.2]
    lesion = [True, True, False, False, True, True, True]  # lesion slices scored 0.9 0.8 0.7 0.3 0.2
    assert sensitive_threshold(scores, lesion, 1.0) == 0.2
    assert sensitive_threshold(scores, lesion, 0.8) == 0.3  # 4 of 5 kept
    assert sensitive_threshold(scores, lesion, 0.79) == 0.3  # 3.95 -> keep 4 (drop at most floor(1.05) = 1)
    with pytest.raises(ConfigError, match="no validation slice with a lesion"):
        sensitive_threshold(scores, [False] * 7, 0.98)


@pytest.fixture(scope="module")
def gate_run(phantom_ws):
    from medsift.engine.config import ModelConfig, TrainConfig
    from medsift.engine.runner import train_run

    cfg = TrainConfig(task="classify", epochs=1, batch_size=8, max_steps_per_epoch=2, num_workers=0, threads=1,
                      bootstrap=20, augment="none", model=ModelConfig(arch="resnet_small", width=8),
                      preprocess={"size": 32, "windows": ["brain"], "context": 1})
    run = phantom_ws["root"] / "gate-run"
    train_run(phantom_ws["root"] / "ws", run, cfg, show_progress=False)
    return run


def test_cascade_with_an_open_gate_scores_like_the_run_itself(trained, phantom_ws, gate_run, tmp_path):
    from typer.testing import CliRunner

    from medsift.cli import app

    res = CliRunner().invoke(app, ["ensemble", str(phantom_ws["root"] / "ws"), "--out", str(tmp_path), "--run",
                                   str(trained["run"]), "--slice-gate", str(gate_run), "--gate-threshold", "0",
                                   "--bootstrap", "20"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["slices_gated"] == 0 and m["gate_threshold"] == 0.0
    assert m["cascade_dice_global_raw"] == pytest.approx(m["ungated_dice_global_raw"])
    assert m["seg_threshold"] == pytest.approx(trained["meta"]["calibration"]["threshold"])
    assert m["cascade_dice_global"] == pytest.approx(trained["metrics"]["dice_global"])
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["n_images"] == trained["metrics"]["n_images"]


def test_cascade_with_a_closed_gate_keeps_no_lesion_pixel(trained, phantom_ws, gate_run, tmp_path):
    from medsift.label.seg_cascade import classifier_threshold, evaluate_seg_cascade

    assert 0.0 <= classifier_threshold(gate_run) <= 1.0
    m = evaluate_seg_cascade([trained["run"]], gate_run, phantom_ws["root"] / "ws", tmp_path, gate_threshold=1.01,
                             bootstrap=20)
    assert m["cascade_sensitivity_global"] == 0.0 and m["cascade_dice_global_raw"] == 0.0
    assert m["lesion_slices_gated"] >= 1 and m["slices_gated"] >= m["lesion_slices_gated"]


def test_cascade_gate_at_full_validation_sensitivity(trained, phantom_ws, gate_run, tmp_path):
    from medsift.label.seg_cascade import evaluate_seg_cascade

    m = evaluate_seg_cascade([trained["run"]], gate_run, phantom_ws["root"] / "ws", tmp_path, gate_sensitivity=1.0,
                             bootstrap=20)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["gate_from"] == "val sensitivity 1" and 0.0 <= m["gate_threshold"] <= 1.0
    assert m["slices_gated"] >= 0 and m["cascade_n_images"] == trained["metrics"]["n_images"]


def test_predict_with_a_slice_gate_empties_the_masks_of_gated_slices(trained, phantom_ws, gate_run):
    from typer.testing import CliRunner

    from medsift.cli import app

    files = sorted((phantom_ws["synth"].phe_sich / "images").glob("*.png"))[:3]
    cmd = ["predict", str(trained["run"]), *map(str, files), "--json", "--slice-gate", str(gate_run)]
    open_gate = CliRunner().invoke(app, [*cmd, "--gate-threshold", "0"])
    closed = CliRunner().invoke(app, [*cmd, "--gate-threshold", "1.01"])
    assert open_gate.exit_code == 0 and closed.exit_code == 0, open_gate.output + closed.output
    rows_open = [json.loads(x) for x in open_gate.output.strip().splitlines()]
    rows_closed = [json.loads(x) for x in closed.output.strip().splitlines()]
    assert [r["gate_prob"] for r in rows_open] == [r["gate_prob"] for r in rows_closed]
    assert all(0.0 <= r["gate_prob"] <= 1.0 for r in rows_open)
    assert all(r["lesion_pixels"] == 0 and r["max_prob"] == 0.0 for r in rows_closed)
    assert sum(r["max_prob"] for r in rows_open) > 0


def test_spacing_follows_the_cache_resize_so_mm_and_ml_stay_true(tmp_path):
    """128-px NIfTI phantoms cached at 64 px: each cached pixel covers twice the source spacing, so HD95 in mm
    and volumes in mL are measured with the doubled spacing (not the source's, which would halve HD95 and
    quarter the volumes)."""
    from medsift.engine.config import TrainConfig
    from medsift.ingest import ingest
    from medsift.manifest import active, float_column
    from medsift.preprocess.cache import build_cache
    from medsift.preprocess.config import PreprocessConfig
    from medsift.synth.testing import tiny_dataset

    synth = tiny_dataset(tmp_path / "src")
    df = active(ingest(synth.nifti, layout="nifti", workspace=tmp_path / "ws", n_jobs=1))
    task = sg.SegmentTask(TrainConfig(task="segment"))
    source = float_column(df, "spacing_mm")
    assert np.isfinite(source).all()
    for size, factor in ((64, 2.0), (128, 1.0)):
        cache = build_cache(df, tmp_path / f"c{size}", PreprocessConfig(size=size, windows=("brain",)), n_jobs=1,
                            progress=False)
        ds = task.dataset(df, cache, augment=False)
        kept = df[df["image_id"].astype(str).isin(set(ds.image_ids))]
        np.testing.assert_allclose(ds.spacing_mm, float_column(kept, "spacing_mm") * factor)
