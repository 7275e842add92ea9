"""Engine pieces: device choice, learning-rate schedule, local pretrained weights, contrastive loss."""

from __future__ import annotations

import math

import pytest
import torch

from engine_fixtures import tiny_config
from medsift.engine.config import ModelConfig
from medsift.engine.device import select_device
from medsift.engine.loop import lr_at
from medsift.errors import ConfigError
from medsift.tasks.models import MODELS, build_model, load_encoder_weights


def test_auto_device_falls_back_to_cpu_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert select_device("auto").type in ("cpu", "mps")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        select_device("cuda")


def test_onecycle_schedule_warms_up_then_anneals():
    cfg = tiny_config(lr=1.0, scheduler="onecycle")
    assert lr_at(cfg, 0.0) == pytest.approx(0.04)
    assert lr_at(cfg, 0.1) == pytest.approx(1.0)
    assert lr_at(cfg, 0.55) == pytest.approx(0.002 + 0.998 * 0.5)
    assert lr_at(cfg, 1.0) == pytest.approx(0.002)


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "efficientnet_b0", "resnet_small"])
def test_models_take_any_channel_count(arch):
    model = build_model(ModelConfig(arch=arch, width=8), in_channels=5, num_outputs=3)
    assert tuple(model(torch.zeros(2, 5, 64, 64)).shape) == (2, 3)


@pytest.mark.parametrize("attention", ["se", "cbam"])
def test_attention_blocks_keep_shapes(attention):
    model = build_model(ModelConfig(arch="resnet_small", width=8, attention=attention), in_channels=1, num_outputs=1)
    assert tuple(model(torch.zeros(2, 1, 32, 32)).shape) == (2, 1)


def test_local_weights_load_except_head(tmp_path):
    cfg = ModelConfig(arch="resnet_small", width=8)
    source = build_model(cfg, in_channels=1, num_outputs=128)
    torch.save({"model": source.state_dict()}, tmp_path / "enc.pt")
    target = build_model(ModelConfig(arch="resnet_small", width=8, pretrained=str(tmp_path / "enc.pt")),
                         in_channels=1, num_outputs=1)
    assert torch.equal(target.conv1.weight, source.conv1.weight)
    assert not torch.equal(target.layer1[0].conv1.weight, torch.zeros_like(target.layer1[0].conv1.weight))


def test_first_layer_of_a_3_channel_model_is_adapted_to_1_channel(tmp_path):
    source = build_model(ModelConfig(arch="resnet_small", width=8), in_channels=3, num_outputs=1)
    torch.save({"model": source.state_dict()}, tmp_path / "ctx.pt")
    target = build_model(ModelConfig(arch="resnet_small", width=8), in_channels=1, num_outputs=2)
    report = load_encoder_weights(target, tmp_path / "ctx.pt")
    assert report["adapted"] == ["conv1.weight"]
    # a slice repeated in the three context channels gives the 3-channel model's response to the single slice
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(target.conv1(x), source.conv1(x.repeat(1, 3, 1, 1)), rtol=1e-5, atol=1e-5)
    assert torch.equal(target.layer1[0].conv1.weight, source.layer1[0].conv1.weight)


def test_weights_of_another_architecture_are_refused(tmp_path):
    torch.save({"x.weight": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="matches"):
        load_encoder_weights(build_model(ModelConfig(arch="resnet_small", width=8), in_channels=1, num_outputs=1),
                             tmp_path / "bad.pt")


def test_unknown_model_lists_valid_names():
    with pytest.raises(ConfigError, match="resnet18"):
        MODELS.get("vgg")


def test_nt_xent_is_low_for_matching_pairs():
    from medsift.tasks.simclr import nt_xent

    base = torch.eye(4) * 10
    paired = base.repeat_interleave(2, dim=0)          # views 2i and 2i+1 identical, pairs orthogonal
    loss, top1 = nt_xent(paired, temperature=0.2)
    assert float(top1.mean()) == 1.0
    shuffled = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    assert float(loss.mean()) < float(nt_xent(shuffled)[0].mean())
    # 7 candidates, the positive at cosine 1 and six at cosine 0: -log(e^5 / (e^5 + 6))
    assert float(loss[0]) == pytest.approx(-math.log(math.exp(5) / (math.exp(5) + 6)), rel=1e-5)
