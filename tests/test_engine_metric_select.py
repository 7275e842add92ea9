"""The best epoch is chosen on a metric the task really reports (multilabel has macro_auc, not auc)."""

import pytest

from medsift.engine.loop import resolve_metric
from medsift.errors import ConfigError


def test_auto_picks_the_tasks_headline_metric():
    assert resolve_metric("auto", {"auc": 0.9, "f1": 0.8, "loss": 0.3}) == "auc"
    assert resolve_metric("auto", {"macro_auc": 0.9, "macro_f1": 0.5, "loss": 0.3}) == "macro_auc"
    assert resolve_metric("auto", {"dice_global": 0.4, "loss": 0.3}) == "dice_global"
    assert resolve_metric("auto", {"map50": 0.4, "map50_95": 0.2}) == "map50"


def test_unreported_metric_is_an_error_listing_the_choices():
    with pytest.raises(ConfigError, match="macro_auc"):
        resolve_metric("auc", {"macro_auc": 0.9, "loss": 0.3})
    assert resolve_metric("val_macro_f1", {"macro_f1": 0.5}) == "macro_f1"


def test_auto_prefers_the_task_headline_when_reported():
    # segment reports a slice-level auc too, but its best epoch is the one with the best Dice
    assert resolve_metric("auto", {"auc": 0.8, "dice_global": 0.4}, headline="dice_global") == "dice_global"
    assert resolve_metric("auto", {"auc": 0.8}, headline="dice_global") == "auc"
