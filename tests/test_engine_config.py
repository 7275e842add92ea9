"""TrainConfig: YAML round trip, CLI overrides, validation messages."""

from __future__ import annotations

import pytest

from medsift.engine.config import TrainConfig, apply_overrides
from medsift.errors import ConfigError


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig(task="multilabel", labels=("ivh", "sah"), lr=0.002, preprocess={"size": 64, "context": 1})
    path = tmp_path / "config.yaml"
    path.write_text(cfg.to_yaml())
    assert TrainConfig.from_yaml(path) == cfg


def test_overrides_reach_nested_sections():
    cfg = apply_overrides(TrainConfig(), ["epochs=3", "model.arch=resnet34", "preprocess.size=96", "labels=[ivh,sdh]"])
    assert (cfg.epochs, cfg.model.arch, cfg.preprocess["size"], cfg.labels) == (3, "resnet34", 96, ("ivh", "sdh"))


def test_unknown_key_lists_valid_ones():
    with pytest.raises(ConfigError, match="valid"):
        apply_overrides(TrainConfig(), ["learning_rate=0.1"])


def test_comma_separated_labels_are_split():
    assert TrainConfig(labels="ivh,iph,sah").labels == ("ivh", "iph", "sah")


def test_bad_loss_names_choices():
    with pytest.raises(ConfigError, match="focal"):
        TrainConfig(loss="hinge")


def test_exponent_without_a_dot_is_a_number():
    cfg = apply_overrides(TrainConfig(), ["lr=1e-5", "weight_decay=5E-4", "model.arch=resnet18"])
    assert cfg.lr == pytest.approx(1e-5) and cfg.weight_decay == pytest.approx(5e-4)
    assert cfg.model.arch == "resnet18"  # other strings stay strings
