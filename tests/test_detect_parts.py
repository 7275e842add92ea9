"""Parts of the detect task: targets and decoding, anchors, seg2box, box augmentation, metrics on toy cases."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from medsift.errors import ConfigError  # noqa: E402
from medsift.tasks import det_centernet as cn  # noqa: E402
from medsift.tasks.det_anchors import box_statistics, fit_anchors  # noqa: E402
from medsift.tasks.det_seg2box import box_masks, boxes_from_prob  # noqa: E402
from medsift.tasks.detect import DetectDataset, DetectOptions, DetectTask  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: the CI machine is a shared 2-core box (two threads there run slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _config(**over):
    from medsift.engine.config import ModelConfig, TrainConfig

    base = dict(task="detect", epochs=1, batch_size=8, lr=5e-3, amp=False, device="cpu", num_workers=0, threads=1,
                augment="none", early_stop_metric="map50", patience=0, bootstrap=50,
                model=ModelConfig(arch="centernet", width=8), preprocess={"size": 64, "windows": ["brain"]})
    base.update(over)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------------------- centernet


def test_decode_hand_made_heatmap():
    heat = torch.full((1, 1, 16, 16), -9.0)
    heat[0, 0, 3, 10] = 2.0          # the best peak: cell centre (42, 14) px
    heat[0, 0, 12, 2] = 0.0          # second peak: cell centre (10, 50) px, p = 0.5
    heat[0, 0, 12, 3] = -1.0         # a neighbour of the second peak: not a local maximum
    ltrb = torch.zeros(1, 4, 16, 16)
    ltrb[0, :, 3, 10] = torch.log(torch.tensor([2.0, 1.0, 3.0, 0.5]))  # distances 8, 4, 12, 2 px
    out = cn.decode(heat, ltrb, stride=4, k=3)[0].numpy()
    np.testing.assert_allclose(out[0], [34, 10, 54, 16, 1 / (1 + np.exp(-2))], rtol=1e-5)
    np.testing.assert_allclose(out[1], [6, 46, 14, 54, 0.5], rtol=1e-5)
    assert out[2, 4] < 1e-3          # the suppressed neighbour never appears with its 0.27 score
    assert not np.isclose(out[:, 4], 1 / (1 + np.exp(1))).any()


def test_encode_targets_peak_and_box_cells():
    t = cn.encode_targets([np.array([[8.0, 16.0, 40.0, 32.0]]), np.zeros((0, 4))], 64, stride=4)
    heat, box, weight = t["heatmap"], t["box"], t["weight"]
    assert heat.shape == (2, 1, 16, 16) and box.shape == (2, 4, 16, 16)
    # centre (24, 24) px -> cell (6, 6) is exactly 1 and the only 1
    assert heat[0, 0, 6, 6] == 1.0 and (heat[0] == 1.0).sum() == 1
    np.testing.assert_array_equal(box[0, :, 6, 6], [8, 16, 40, 32])
    assert weight[0, 0, 6, 6] == 1.0 and weight[0, 0, 0, 0] == 0.0
    # regression cells lie inside the box
    ys, xs = np.nonzero(weight[0, 0])
    assert ((xs + 0.5) * 4 >= 8).all() and ((xs + 0.5) * 4 <= 40).all() and ((ys + 0.5) * 4 >= 16).all()
    assert heat[1].max() == 0 and weight[1].max() == 0      # an image without boxes: all background


def test_perfect_outputs_decode_to_the_encoded_box():
    boxes = np.array([[10.0, 20.0, 30.0, 44.0]])
    t = cn.encode_targets([boxes], 64)
    heat = torch.from_numpy(np.where(t["heatmap"] == 1, 8.0, -8.0)).float()
    ctr = cn.cell_centres(16, 4).numpy()
    tb = t["box"][0]
    dist = np.stack([ctr[0] - tb[0], ctr[1] - tb[1], tb[2] - ctr[0], tb[3] - ctr[1]])
    ltrb = torch.from_numpy(np.log(np.clip(dist, 1e-3, None) / 4))[None].float()
    out = cn.decode(heat, ltrb, k=1)[0, 0].numpy()
    np.testing.assert_allclose(out[:4], boxes[0], atol=1e-3)


def test_focal_loss_is_lower_for_the_right_heatmap():
    target = torch.from_numpy(cn.encode_targets([np.array([[8.0, 8.0, 24.0, 24.0]])], 32)["heatmap"])
    good = torch.where(target == 1, torch.tensor(6.0), torch.tensor(-6.0))
    bad = torch.where(target == 1, torch.tensor(-6.0), torch.tensor(6.0))
    assert cn.focal_heatmap_loss(good, target) < 0.01 < cn.focal_heatmap_loss(bad, target)


# ------------------------------------------------------------------------------------------- anchors, seg2box


def test_box_statistics_and_anchor_fit_hand_computed():
    stats = box_statistics([np.array([[0, 0, 10, 20]]), np.zeros((0, 4)), np.array([[0, 0, 40, 40], [5, 5, 15, 10]])])
    assert (stats["n_images"], stats["images_with_boxes"], stats["n_boxes"], stats["max_boxes_per_image"]) == \
        (3, 2, 3, 2)
    assert stats["aspect_p50"] == pytest.approx(2.0 if False else 1.0)  # aspects 2, 1, 0.5 -> median 1
    anchors = fit_anchors(stats, levels=3)
    assert len(anchors["sizes"]) == 3 and all(len(s) == 3 for s in anchors["sizes"])
    assert anchors["sizes"][0][0] < anchors["sizes"][-1][0]
    assert 1.0 in anchors["aspect_ratios"]
    with pytest.raises(ConfigError, match="at least one training box"):
        fit_anchors(box_statistics([np.zeros((0, 4))]), levels=3)


def test_seg2box_masks_round_trip_to_boxes():
    mask = box_masks([np.array([[2.0, 3.0, 7.0, 5.0], [10.0, 10.0, 14.0, 16.0]])], 20)[0, 0]
    assert mask.sum() == 5 * 2 + 4 * 6
    det = boxes_from_prob(mask * 0.8, k=3)
    got = sorted(map(tuple, det[:2, :4].tolist()))
    assert got == [(2, 3, 7, 5), (10, 10, 14, 16)]
    assert det[2, 4] == -1 and np.allclose(det[:2, 4], 0.8)


def test_seg2box_low_map_still_gives_a_ranked_box():
    prob = np.full((10, 10), 0.01, np.float32)
    prob[4:6, 4:7] = 0.3
    det = boxes_from_prob(prob, k=2)
    np.testing.assert_allclose(det[0], [4, 4, 7, 6, 0.3], rtol=1e-6)


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="centernet"):
        DetectOptions(model="yolo9000")


# ------------------------------------------------------------------------------------------- augmentation


def test_boxes_move_with_the_image_under_augmentation():
    from medsift.preprocess.augment import build_augment

    img = np.zeros((3, 1, 32, 32), np.uint8)
    img[0, 0, 4:12, 2:10] = 200                       # box [2, 4, 10, 12]
    ds = DetectDataset(img, [0], [np.array([[2.0, 4.0, 10.0, 12.0]])],
                       augment=lambda seed: build_augment(task="detect", size=32, strength="none", seed=seed,
                                                          hflip=1.0))
    item = ds[(0, 7)]
    np.testing.assert_allclose(item["boxes"].numpy(), [[22, 4, 30, 12]], atol=1e-4)
    x1, y1, x2, y2 = item["boxes"][0].int().tolist()
    assert item["image"][0, y1:y2, x1:x2].min() > 0.7 and item["image"][0].sum() == pytest.approx(
        item["image"][0, y1:y2, x1:x2].sum())


def test_training_augmentation_keeps_boxes_tight_around_the_lesion():
    from medsift.tasks.detect import box_augment_factory

    img = np.zeros((1, 1, 64, 64), np.uint8)
    img[0, 0, 20:36, 24:44] = 255
    ds = DetectDataset(img, [0], [np.array([[24.0, 20.0, 44.0, 36.0]])],
                       augment=box_augment_factory(size=64, strength="default"))
    moved = 0
    for seed in range(6):
        item = ds[(0, seed)]
        x1, y1, x2, y2 = item["boxes"][0].tolist()
        bright = np.argwhere(item["image"][0].numpy() > 0.5)
        # no rotation / elastic warp: the box stays the lesion's own box (within resampling blur)
        assert abs(bright[:, 1].min() - x1) <= 1.5 and abs(bright[:, 1].max() + 1 - x2) <= 1.5
        assert abs(bright[:, 0].min() - y1) <= 1.5 and abs(bright[:, 0].max() + 1 - y2) <= 1.5
        moved += abs(x1 - 24) + abs(y1 - 20) > 0.5
    assert moved >= 3


# ------------------------------------------------------------------------------------------- metrics


class _Toy:
    """A 3-image dataset in original pixels = cache pixels (scale 1)."""

    def __init__(self):
        gt = [np.array([[0, 0, 10, 10]]), np.array([[20, 20, 30, 30]]), np.zeros((0, 4))]
        self.ds = DetectDataset(np.zeros((3, 1, 32, 32), np.uint8), [0, 1, 2], gt,
                                image_ids=["a", "b", "c"], patients=["p1", "p1", "p2"])
        self.task = DetectTask(_config(bootstrap=20))

    def preds(self, rows):
        det = np.full((3, 4, 5), -1.0, np.float32)
        for i, k, row in rows:
            det[i, k] = row
        return {"det": det, "index": np.arange(3)}


def test_map_on_a_hand_computed_toy_case():
    toy = _Toy()
    # a: hit 0.9; b: false alarm 0.8 then hit 0.7 -> precision 1 up to recall 0.5, 2/3 up to recall 1
    preds = toy.preds([(0, 0, [0, 0, 10, 10, 0.9]), (1, 0, [0, 0, 5, 5, 0.8]), (1, 1, [20, 20, 30, 30, 0.7])])
    m = toy.task.evaluate(preds, toy.ds, calibration={"threshold": 0.75})
    assert m["map50"] == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101, abs=1e-4)  # COCO 101-point interpolation
    assert m["froc_1fp"] == pytest.approx(1.0) and m["froc_0_5fp"] == pytest.approx(1.0)


def test_image_level_table_counts_images_without_boxes(tmp_path):
    toy = _Toy()
    # a: 0.9 (TP), b: 0.3 (FN at 0.5), c (no box): 0.6 (FP)
    preds = toy.preds([(0, 0, [0, 0, 10, 10, 0.9]), (1, 0, [20, 20, 30, 30, 0.3]), (2, 0, [1, 1, 4, 4, 0.6])])
    m = toy.task.evaluate(preds, toy.ds, calibration={"threshold": 0.5}, out_dir=tmp_path)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 1, 1, 0)
    assert m["image_recall"] == 0.5 and m["image_specificity"] == 0.0 and m["n_images"] == 3
    import pandas as pd

    table = pd.read_csv(tmp_path / "image_level.csv")
    assert table.set_index("image_id")["outcome"].to_dict() == {"a": "TP", "b": "FN", "c": "FP"}
    rows = pd.read_csv(tmp_path / "predictions.csv")
    assert len(rows) == 3 and set(rows.columns) >= {"image_id", "score", "x1", "y1", "x2", "y2"}
    assert sorted(p.name for p in (tmp_path / "draws").iterdir()) == ["fn_b.png", "fp_c.png", "tp_a.png"]


def test_calibration_reaches_the_target_recall_on_validation():
    toy = _Toy()
    preds = toy.preds([(0, 0, [0, 0, 10, 10, 0.9]), (1, 0, [20, 20, 30, 30, 0.3]), (2, 0, [1, 1, 4, 4, 0.6])])
    cal = toy.task.calibrate(preds, toy.ds)
    assert cal["threshold"] == pytest.approx(0.3) and cal["val_image_recall"] == 1.0


# ------------------------------------------------------------------------------------------- training


def _rect_images(n: int, size: int, seed: int):
    rng = np.random.default_rng(seed)
    imgs = rng.normal(40, 8, (n, 1, size, size)).clip(0, 255).astype(np.uint8)
    boxes = []
    for i in range(n):
        if i % 4 == 3:
            boxes.append(np.zeros((0, 4), np.float32))
            continue
        w, h = rng.integers(size // 4, size // 2, 2)
        x, y = rng.integers(2, size - w - 2), rng.integers(2, size - h - 2)
        imgs[i, 0, y:y + h, x:x + w] = 200
        boxes.append(np.array([[x, y, x + w, y + h]], np.float32))
    return imgs, boxes


def test_centernet_overfits_a_few_images():
    from medsift.tasks.det_evaluate import iou_matrix

    torch.manual_seed(0)
    imgs, boxes = _rect_images(6, 48, seed=1)
    task = DetectTask(_config(preprocess={"size": 48, "windows": ["brain"]}))
    task.mean, task.std = [imgs.mean() / 255], [imgs.std() / 255]
    ds = DetectDataset(imgs, np.arange(6), boxes)
    model = task.build_model(task.config)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    batch = task.collate([ds[i] for i in range(6)])
    model.train()
    for _ in range(60):
        loss = task.loss(batch, model(batch["image"]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        det = task.predict_batch(model, batch)["det"]
    for i in range(6):
        if len(boxes[i]):
            assert iou_matrix(det[i, :1, :4], boxes[i])[0, 0] > 0.5, (i, det[i, 0], boxes[i])
            assert det[i, 0, 4] > 0.3
        else:
            assert det[i, 0, 4] < 0.3


@pytest.mark.parametrize("kind", ["fcos", "retinanet", "fasterrcnn"])
def test_torchvision_backends_train_step_and_decode(kind):
    torch.manual_seed(0)
    imgs, boxes = _rect_images(2, 64, seed=2)
    task = DetectTask(_config(model={"arch": kind, "width": 8}))
    if task.backend.needs_anchors:
        from dataclasses import replace

        task.options = replace(task.options, anchors=fit_anchors(box_statistics(boxes), levels=5))
    model = task.build_model(task.config)
    batch = task.collate([DetectDataset(imgs, [0, 1], boxes)[i] for i in range(2)])
    model.train()
    loss = task.loss(batch, model(batch["image"]))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    model.eval()
    with torch.no_grad():
        det = task.predict_batch(model, batch)["det"]
    assert det.shape == (2, task.options.max_dets, 5)


def test_detection_scores_only_rows_someone_annotated():
    """A slice with no annotation file, no mask and no box (another site's DICOM) is not a lesion-free slice:
    evaluation and training leave it out; an annotated slice without boxes stays as a negative."""
    import pandas as pd

    from medsift.engine.config import TrainConfig

    task = DetectTask(TrainConfig(task="detect", model={"arch": "centernet"}))
    df = pd.DataFrame({"image_id": ["boxed", "clear", "nobody"], "annotation_path": ["a.xml", "b.xml", None],
                       "mask_path": [None, None, None], "label_source": ["annotation", "annotation", None],
                       "boxes": [[[1, 1, 4, 4, "iph"]], [], []]})
    assert task.scored_rows(df)["image_id"].tolist() == ["boxed", "clear"]
