"""Built-in recipes: the benchmarked configs load by name, build their models, and lose to a real file."""

from __future__ import annotations

import pytest

from medsift.engine.config import TrainConfig, load_config, recipe_names
from medsift.errors import ConfigError


def test_every_task_has_a_recipe_named_after_it():
    assert set(recipe_names()) >= {"ct-classify", "ct-multilabel", "ct-segment", "ct-detect"}
    for name in recipe_names():
        cfg = load_config(name)
        assert cfg.task == name.removeprefix("ct-").split("-")[0], name  # ct-<task>[-<variant>]
        assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # round-trips like any saved config


@pytest.mark.parametrize("name", ["ct-classify", "ct-segment", "ct-detect"])
def test_recipe_models_build_and_run(name):
    import torch

    from medsift.tasks import TASKS

    cfg = load_config(name)
    task = TASKS.get(cfg.task)(cfg)
    model = task.build_model(cfg).eval()
    channels = cfg.preprocess_config().channels
    with torch.no_grad():
        out = model(torch.zeros(1, channels, 64, 64))
    assert out is not None


def test_recipe_values_differ_from_the_defaults():
    seg = load_config("ct-segment")
    assert (seg.model.arch, seg.segment["crop"], seg.ema_decay, seg.preprocess["size"]) == \
        ("unet_tiny", 160, 0.998, 512)
    assert load_config("ct-classify").preprocess["context"] == 1 and TrainConfig().preprocess["context"] == 0


def test_unknown_name_lists_the_recipes():
    with pytest.raises(ConfigError, match="ct-segment"):
        load_config("ct-segmnet")


def test_a_file_wins_over_a_recipe_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ct-segment").write_text("task: classify\nlr: 0.05\n")
    cfg = load_config("ct-segment")
    assert (cfg.task, cfg.lr) == ("classify", 0.05)
    assert load_config(None) == TrainConfig()
