"""Box supervision of the classifier: box maps drawn right, moved with the image, learnt where the boxes are."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine_fixtures import synthetic, tiny_config  # noqa: E402
from medsift.engine.config import ModelConfig  # noqa: E402
from medsift.errors import ConfigError  # noqa: E402
from medsift.preprocess.augment import AugmentParams  # noqa: E402
from medsift.preprocess.batch_augment import BatchAugment  # noqa: E402
from medsift.tasks import TASKS  # noqa: E402
from medsift.tasks.data import box_maps  # noqa: E402


def test_box_maps_fill_the_covered_pixels_and_clip_to_the_image():
    maps = box_maps([np.array([[1.2, 2.0, 3.5, 4.0]]), np.zeros((0, 4)), np.array([[-5, -5, 2, 1], [5, 5, 99, 99]])],
                    (6, 6))
    expected = np.zeros((3, 1, 6, 6), np.float32)
    expected[0, 0, 2:4, 1:4] = 1  # rows 2..3, columns 1..3 (floor of the start, ceil of the end)
    expected[2, 0, 0:1, 0:2] = 1
    expected[2, 0, 5:6, 5:6] = 1
    np.testing.assert_array_equal(maps.numpy(), expected)


def test_maps_follow_every_geometric_step_and_leave_the_image_draws_unchanged():
    g = torch.Generator().manual_seed(0)
    x = torch.rand((8, 1, 32, 32), generator=g) * 0.5
    x[:, :, 6:14, 3:11] = 0.95
    aug = BatchAugment(params=AugmentParams(hflip=0.5, vflip=0.5, rot90=0.5, degrees=25.0, scale=(0.8, 1.2),
                                            translate=0.1))
    alone = aug(x, 11)
    images, maps = aug(x, 11, masks=x.clone())
    assert torch.equal(alone, images)
    assert torch.allclose(images, maps, atol=1e-6)  # geometry only here: the map is the image moved the same way
    assert not torch.allclose(images, x)            # and it did move


def _task(**model):
    config = tiny_config(augment="default", preprocess={"size": 64, "windows": ["brain"]}, epochs=4,
                         model=ModelConfig(arch="resnet_small", width=8, **model))
    return TASKS.get("classify")(config), config


def test_auxiliary_head_trains_in_training_mode_only_and_changes_the_loss():
    df, cache = synthetic(size=64)
    task, config = _task(box_supervision=1.0)
    train = task.build_datasets(df, cache, config)["train"]
    model = task.build_model(config)
    batch = task.collate([train[(i, 100 + i)] for i in range(16)])
    assert batch["box_map"].shape == (16, 1, 64, 64) and batch["box_map"].sum() > 0
    model.train()
    out = model(batch["image"])
    assert out.shape == (16, 1) and model.avgpool.last_map.shape == (16, 1, 2, 2)
    with_aux = task.loss(batch, out)
    without = task.loss({k: v for k, v in batch.items() if k != "box_map"}, out)
    assert float(with_aux.detach()) > float(without.detach())
    with_aux.backward()
    assert model.avgpool.loc.weight.grad.abs().sum() > 0
    model.eval()
    model(batch["image"])
    assert model.avgpool.last_map is None  # inference pays nothing
    assert "avgpool.loc.weight" in model.state_dict()


def test_localisation_is_learnt_where_the_boxes_are(tmp_path):
    from medsift.engine.loop import fit

    df, cache = synthetic(size=64)
    task, config = _task(box_supervision=1.0)
    datasets = task.build_datasets(df, cache, config)
    fit(task, datasets, config, tmp_path, show_progress=False)
    model = task.build_model(config)
    model.load_state_dict(torch.load(tmp_path / "last.pt", weights_only=True)["model"])
    test = datasets["test"]
    rows = [i for i in range(len(test)) if cache.boxes[test.positions[i]].shape[0]]
    batch = task.collate([test[i] for i in rows])
    target = torch.nn.functional.adaptive_max_pool2d(box_maps([cache.boxes[test.positions[i]] for i in rows],
                                                              (64, 64)), (2, 2))
    model.train()  # the map is computed in training mode; batch norm statistics of the batch are fine here
    with torch.no_grad():
        model(batch["image"])
    p = torch.sigmoid(model.avgpool.last_map)
    covered, free = p[target > 0.5], p[target == 0]
    assert covered.mean() > free.mean() + 0.2


def test_box_supervision_without_boxes_is_a_clear_error():
    df, cache = synthetic()
    cache.boxes = [np.zeros((0, 4), np.float32)] * len(cache.boxes)
    task, config = _task(box_supervision=0.5)
    with pytest.raises(ConfigError, match="box_supervision needs annotation boxes"):
        task.build_datasets(df, cache, config)


def test_negative_weight_is_rejected():
    with pytest.raises(ConfigError, match="box_supervision"):
        ModelConfig(box_supervision=-1.0)
