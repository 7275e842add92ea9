"""Image classifiers for the label tasks, built without downloading anything (``weights=None``).

Every builder takes ``(in_channels, num_outputs, config: ModelConfig)`` and returns an ``nn.Module`` mapping
(B, C, H, W) float images to (B, K) logits. The first convolution is adapted to ``C`` channels (1 window,
3 windows, or 2.5D context stacks). Local weights (``config.pretrained``) load after building, head excluded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from medsift.engine.config import ModelConfig
from medsift.errors import ConfigError
from medsift.registry import Registry

MODELS: Registry[Callable] = Registry("model")

HEAD_PREFIXES = ("fc.", "classifier.")
"""State-dict prefixes of classifier heads (dropped when loading pretrained encoder weights)."""


def _attention_block(kind: str, channels: int):
    import torch.nn as nn

    if kind == "se":
        from monai.networks.blocks import ChannelSELayer

        return ChannelSELayer(spatial_dims=2, in_channels=channels, r=min(16, max(channels // 4, 1)))
    if kind == "cbam":
        return CBAM(channels)
    return nn.Identity()


def CBAM(channels: int, *, reduction: int = 16, kernel: int = 7):
    """Convolutional block attention (Woo et al. 2018): channel then spatial gating of a (B, C, H, W) map."""
    import torch
    import torch.nn as nn

    class _CBAM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            hidden = max(channels // reduction, 4)
            self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
            self.spatial = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

        def forward(self, x):
            gate = torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
            x = x * gate
            s = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
            return x * torch.sigmoid(self.spatial(s))

    return _CBAM()


def _resnet_like(model, in_channels: int, num_outputs: int, config: ModelConfig):
    import torch.nn as nn

    old = model.conv1
    model.conv1 = nn.Conv2d(in_channels, old.out_channels, kernel_size=old.kernel_size, stride=old.stride,
                            padding=old.padding, bias=False)
    for name in ("layer1", "layer2", "layer3", "layer4"):
        layer = getattr(model, name)
        last = list(layer.children())[-1]
        channels = [m for m in last.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features
        if config.attention != "none":
            setattr(model, name, nn.Sequential(layer, _attention_block(config.attention, channels)))
    features = model.fc.in_features
    model.fc = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(features, num_outputs))
    return model


@MODELS.register("resnet18")
def resnet18(in_channels: int, num_outputs: int, config: ModelConfig):
    """torchvision ResNet-18, random init."""
    from torchvision.models import resnet18 as tv

    return _resnet_like(tv(weights=None), in_channels, num_outputs, config)


@MODELS.register("resnet34")
def resnet34(in_channels: int, num_outputs: int, config: ModelConfig):
    """torchvision ResNet-34, random init."""
    from torchvision.models import resnet34 as tv

    return _resnet_like(tv(weights=None), in_channels, num_outputs, config)


@MODELS.register("resnet_small")
def resnet_small(in_channels: int, num_outputs: int, config: ModelConfig):
    """MONAI 2D ResNet-18 layout with base width ``config.width`` (32 = a quarter of ResNet-18's FLOPs)."""
    from monai.networks.nets import ResNet

    w = int(config.width)
    if w < 4:
        raise ConfigError(f"model.width must be >= 4 channels; got {w!r}")
    model = ResNet(block="basic", layers=[2, 2, 2, 2], block_inplanes=[w, 2 * w, 4 * w, 8 * w], spatial_dims=2,
                   n_input_channels=3, conv1_t_size=7, conv1_t_stride=2, num_classes=num_outputs)
    return _resnet_like(model, in_channels, num_outputs, config)


@MODELS.register("efficientnet_b0")
def efficientnet_b0(in_channels: int, num_outputs: int, config: ModelConfig):
    """torchvision EfficientNet-B0, random init (attention: its own squeeze-excitation blocks)."""
    import torch.nn as nn
    from torchvision.models import efficientnet_b0 as tv

    model = tv(weights=None)
    old = model.features[0][0]
    model.features[0][0] = nn.Conv2d(in_channels, old.out_channels, kernel_size=old.kernel_size, stride=old.stride,
                                     padding=old.padding, bias=False)
    features = model.classifier[-1].in_features
    model.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(features, num_outputs))
    return model


def LocalizationPool(pool, channels: int):
    """Global pooling that also scores each cell of the feature map it pools (auxiliary box supervision).

    Replaces a classifier's ``avgpool``: the forward pass is unchanged (``pool(x)``); in training mode a 1x1
    convolution maps the (B, C, h, w) features to (B, 1, h, w) localisation logits kept in ``last_map`` for the
    task's loss. Inference pays nothing. Lives inside the model, so checkpoints carry it and Grad-CAM's target
    layer is untouched.
    """
    import torch.nn as nn

    class _LocalizationPool(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool = pool
            self.loc = nn.Conv2d(channels, 1, kernel_size=1)
            self.last_map = None

        def forward(self, x):
            self.last_map = self.loc(x) if self.training else None
            return self.pool(x)

    return _LocalizationPool()


@MODELS.register("head_features_gbm")
def head_features_gbm(in_channels: int, num_outputs: int, config: ModelConfig):
    """Gradient-boosted trees on hand-made head-CT features (:mod:`medsift.tasks.gbm`); trained without epochs."""
    from medsift.tasks.gbm import HeadFeatureGBM

    return HeadFeatureGBM(in_channels, num_outputs)


head_features_gbm.tabular = True  # the factory says what its model says: fitted by fit_gbm, not the epoch loop


def is_tabular(arch: str) -> bool:
    """True when ``arch`` builds a model fitted outside the epoch loop (its ``tabular`` flag), e.g. boosted trees;
    False for names of other tasks' registries (detectors, segmenters)."""
    return arch in MODELS and bool(getattr(MODELS.get(arch), "tabular", False))


def _head_in_features(model) -> int:
    import torch.nn as nn

    head = getattr(model, head_name(model))
    return [m for m in head.modules() if isinstance(m, nn.Linear)][-1].in_features


def build_model(config: ModelConfig, *, in_channels: int, num_outputs: int):
    """Build ``config.arch`` (with a :func:`LocalizationPool` when ``config.box_supervision`` > 0) and load
    ``config.pretrained`` (local state dict) when given."""
    model = MODELS.get(config.arch)(in_channels, num_outputs, config)
    if float(config.box_supervision) > 0:
        if not hasattr(model, "avgpool"):
            raise ConfigError(f"model.box_supervision needs a model with an avgpool stage; {config.arch} has none")
        model.avgpool = LocalizationPool(model.avgpool, _head_in_features(model))
    if config.pretrained:
        load_encoder_weights(model, config.pretrained)
    return model


def load_encoder_weights(model, path: str | Path) -> dict[str, list[str]]:
    """Load a local state dict into ``model`` except its classifier head; return missing/unexpected/adapted keys.

    Accepts a plain state dict or a checkpoint dict with ``model``/``encoder`` entries (``weights_only`` load).
    Convolution kernels that differ only in their input channels (a 3-channel 2.5D model's first layer into a
    1-channel model, or the reverse) are adapted with :func:`adapt_input_channels`.

    Raises:
        ConfigError: file missing, or no tensor in it matches the model (wrong architecture or channels).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"pretrained weights {path} do not exist (no download is attempted)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("encoder", "model", "state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    own = model.state_dict()
    usable, adapted = {}, []
    for k, v in state.items():
        if k.startswith(HEAD_PREFIXES) or k not in own:
            continue
        if tuple(own[k].shape) == tuple(v.shape):
            usable[k] = v
        elif v.ndim == 4 and own[k].ndim == 4 and v.shape[0] == own[k].shape[0] and v.shape[2:] == own[k].shape[2:]:
            usable[k] = adapt_input_channels(v, int(own[k].shape[1]))
            adapted.append(k)
    if not usable:
        raise ConfigError(f"no weight in {path} matches the model (architecture/channels differ); "
                          f"e.g. file keys {list(state)[:3]}, model keys {list(own)[:3]}")
    result = model.load_state_dict(usable, strict=False)
    return {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys),
            "skipped": sorted(set(state) - set(usable)), "adapted": adapted}


def adapt_input_channels(weight, channels: int):
    """A conv kernel (O, C_in, k, k) re-shaped to ``channels`` inputs: the mean over the source channels, repeated
    and scaled by C_in / channels, so a constant input gives the same response (3 -> 1: the sum of the three)."""
    source = int(weight.shape[1])
    return weight.mean(dim=1, keepdim=True).repeat(1, channels, 1, 1) * (source / channels)


def feature_layer(model):
    """The last convolutional stage (Grad-CAM target): ``layer4`` of ResNets, ``features`` of EfficientNet."""
    if hasattr(model, "layer4"):
        return model.layer4
    if hasattr(model, "features"):
        return model.features
    raise ConfigError(f"no known feature layer on {type(model).__name__}; expected layer4 or features")


def head_name(model) -> str:
    """Attribute name of the classifier head (``fc`` or ``classifier``)."""
    return "fc" if hasattr(model, "fc") else "classifier"
