"""Segmentation networks and losses, by name.

Every network maps ``(B, in_channels, H, W)`` float to ``(B, 1, H, W)`` logits (one foreground class,
sigmoid outside). ``H`` and ``W`` must be multiples of 16. Every loss takes ``(logits, target)`` with a
float 0/1 target of the same shape.

Networks (MONAI implementations). All use batch norm: training sees lesion-centred crops and inference whole
head boxes, and per-image normalisation (MONAI's instance / group norm defaults) shifts between the two; with
instance norm the ``unet`` predicted nothing on whole validation slices.

* ``unet_tiny`` (default): MONAI ``UNet`` with 8-16-32-64-128 channels, one convolution per level, batch
  norm, ReLU; the first layer is strided, so full-resolution work is light (the fast CPU default).
* ``unet_lite``: the same with a residual unit per level and PReLU (about 2.5x the CPU time per slice).
* ``unet``: MONAI ``UNet`` 16-32-64-128-256, two residual units per level, batch norm (48 ms per 384 x 416 head
  box on 2 threads).
* ``basic_unet``: MONAI ``BasicUNet`` (features 16-16-32-64-128-16).
* ``unetpp``: MONAI ``BasicUNetPlusPlus`` (U-Net++ nested skips).
* ``attention_unet``: MONAI ``AttentionUnet`` (attention gates on the skips).
* ``segresnet``: MONAI ``SegResNet`` (residual encoder, 8 initial filters).
* ``flexible_unet``: MONAI ``FlexibleUNet`` with an EfficientNet-B0 encoder (random init, no download).

Losses (MONAI, ``sigmoid=True``, Dice terms over the whole batch so crops without lesion do not blow up):
``dice_bce`` (Dice + binary cross-entropy), ``dice_focal`` (Dice + focal, gamma 2),
``tversky`` (alpha 0.3 on false positives, beta 0.7 on false negatives: favours recall of thin rims),
``dice_bce_cldice`` (``dice_bce`` plus half of the soft clDice loss, a loss made for thin structures: the
overlap of each mask with the other's soft skeleton, 3 skeleton iterations as in MONAI's ``SoftclDiceLoss``).
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Callable

from medsift.errors import ConfigError
from medsift.registry import Registry

SEG_MODELS: Registry[Callable[..., Any]] = Registry("segmentation model")
SEG_LOSSES: Registry[Callable[..., Any]] = Registry("segmentation loss")
DEFAULT_MODEL = "unet_tiny"
DEFAULT_LOSS = "dice_bce"
#: initial foreground probability of a fresh network (see :func:`build_model`)
DEFAULT_PRIOR = 0.01
#: input sides must be multiples of this (4 stride-2 levels)
SIZE_MULTIPLE = 16


class SegLoss(str, Enum):
    """Loss names (the keys of :data:`SEG_LOSSES`)."""

    DICE_BCE = "dice_bce"
    DICE_FOCAL = "dice_focal"
    TVERSKY = "tversky"
    DICE_BCE_CLDICE = "dice_bce_cldice"


@SEG_MODELS.register("unet_lite")
def _unet_lite(in_channels: int, *, dropout: float = 0.0):
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=in_channels, out_channels=1, channels=(8, 16, 32, 64, 128),
                strides=(2, 2, 2, 2), num_res_units=1, norm="batch", dropout=dropout)


@SEG_MODELS.register("unet_tiny")
def _unet_tiny(in_channels: int, *, dropout: float = 0.0):
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=in_channels, out_channels=1, channels=(8, 16, 32, 64, 128),
                strides=(2, 2, 2, 2), num_res_units=0, norm="batch", act="relu", dropout=dropout)


@SEG_MODELS.register("unet")
def _unet(in_channels: int, *, dropout: float = 0.0):
    from monai.networks.nets import UNet

    # batch norm, not MONAI's default instance norm: training sees lesion-centred crops, inference whole head
    # boxes, and per-image statistics differ between the two (instance norm predicted nothing on whole slices)
    return UNet(spatial_dims=2, in_channels=in_channels, out_channels=1, channels=(16, 32, 64, 128, 256),
                strides=(2, 2, 2, 2), num_res_units=2, norm="batch", dropout=dropout)


@SEG_MODELS.register("basic_unet")
def _basic_unet(in_channels: int, *, dropout: float = 0.0):
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=1,
                     features=(16, 16, 32, 64, 128, 16), norm="batch", dropout=dropout)


@SEG_MODELS.register("unetpp")
def _unetpp(in_channels: int, *, dropout: float = 0.0):
    from torch import nn
    from monai.networks.nets import BasicUNetPlusPlus

    class _Last(nn.Module):  # BasicUNetPlusPlus returns a list (deep supervision); keep the final map
        def __init__(self) -> None:
            super().__init__()
            self.net = BasicUNetPlusPlus(spatial_dims=2, in_channels=in_channels, out_channels=1,
                                         features=(16, 16, 32, 64, 128, 16), norm="batch", dropout=dropout)

        def forward(self, x):
            return self.net(x)[-1]

    return _Last()


@SEG_MODELS.register("attention_unet")
def _attention_unet(in_channels: int, *, dropout: float = 0.0):
    from monai.networks.nets import AttentionUnet

    return AttentionUnet(spatial_dims=2, in_channels=in_channels, out_channels=1, channels=(16, 32, 64, 128),
                         strides=(2, 2, 2), dropout=dropout)


@SEG_MODELS.register("segresnet")
def _segresnet(in_channels: int, *, dropout: float = 0.0):
    from monai.networks.nets import SegResNet

    return SegResNet(spatial_dims=2, in_channels=in_channels, out_channels=1, init_filters=8,
                     blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1), norm="batch", dropout_prob=dropout or None)


@SEG_MODELS.register("flexible_unet")
def _flexible_unet(in_channels: int, *, dropout: float = 0.0):
    from monai.networks.nets import FlexibleUNet

    del dropout  # FlexibleUNet has no dropout option
    return FlexibleUNet(in_channels=in_channels, out_channels=1, backbone="efficientnet-b0", pretrained=False,
                        spatial_dims=2)


def build_model(name: str = DEFAULT_MODEL, *, in_channels: int = 1, dropout: float = 0.0,
                prior: float | None = DEFAULT_PRIOR):
    """A fresh segmentation network ``(B, in_channels, H, W) -> (B, 1, H, W)`` logits; unknown names list
    the valid ones (:class:`~medsift.errors.ConfigError`).

    ``prior``: the network's logits get a learnable offset initialised at ``log(prior / (1 - prior))`` (the
    focal-loss / RetinaNet prior), so training starts by predicting "background" with probability
    ``1 - prior`` instead of 0.5 everywhere. With lesions under 1% of the pixels, Adam would otherwise spend
    hundreds of steps just moving the output bias. None disables it.
    """
    net = SEG_MODELS.get(name)(in_channels, dropout=dropout)
    if prior is None:
        return net
    if not 0.0 < float(prior) < 1.0:
        raise ConfigError(f"prior must be a probability in (0, 1); got {prior!r}")
    return _PriorOffset(net, math.log(prior / (1.0 - prior)))


def _PriorOffset(net, logit: float):
    import torch
    from torch import nn

    class PriorOffset(nn.Module):
        """``net(x) + b`` with a learnable scalar ``b`` initialised at the prior's logit."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.offset = nn.Parameter(torch.tensor(float(logit)))

        def forward(self, x):
            return self.net(x) + self.offset

    return PriorOffset()


@SEG_LOSSES.register(SegLoss.DICE_BCE.value)
def _dice_bce():
    from monai.losses import DiceCELoss

    return DiceCELoss(sigmoid=True, batch=True, smooth_nr=1e-5, smooth_dr=1e-5)


@SEG_LOSSES.register(SegLoss.DICE_FOCAL.value)
def _dice_focal():
    from monai.losses import DiceFocalLoss

    return DiceFocalLoss(sigmoid=True, batch=True, gamma=2.0, smooth_nr=1e-5, smooth_dr=1e-5)


@SEG_LOSSES.register(SegLoss.TVERSKY.value)
def _tversky():
    from monai.losses import TverskyLoss

    return TverskyLoss(sigmoid=True, batch=True, alpha=0.3, beta=0.7, smooth_nr=1e-5, smooth_dr=1e-5)


def _neighbour_extreme(img, dim: int, largest: bool):
    """Max (``largest``) or min of each pixel and its two neighbours along ``dim`` (-1 or -2); pixels outside
    the image do not count. A stack of three shifted views reduced in one call: forward and backward together
    take about half the CPU time of chained ``torch.maximum`` and two thirds of ``max_pool2d`` (measured on
    8 x 160 x 160, 1 thread)."""
    import torch
    import torch.nn.functional as F

    pad = (1, 1, 0, 0) if dim == -1 else (0, 0, 1, 1)
    padded = F.pad(img, pad, value=-math.inf if largest else math.inf)
    n = img.shape[dim]
    shifted = torch.stack([padded.narrow(dim, k, n) for k in range(3)])
    return shifted.amax(0) if largest else shifted.amin(0)


def soft_skeleton(img, iterations: int):
    """Soft skeleton of ``(B, C, H, W)`` probabilities, as in clDice (Shit et al., CVPR 2021) and MONAI's
    ``monai.losses.cldice.soft_skel``: iterated soft erosion (min over the 4-neighbour cross) and opening
    (erosion, then max over the 3 x 3 square). Written with shifted minima and maxima because MONAI's
    ``max_pool2d`` version is slower on CPU (clDice forward + backward with 6 iterations: 180 ms against 140 ms
    for 8 crops of 160 x 160, 1 thread); the values equal MONAI's to float precision (tested)."""
    import torch
    import torch.nn.functional as F

    def erode(x):
        return torch.minimum(_neighbour_extreme(x, -2, False), _neighbour_extreme(x, -1, False))

    def dilate(x):
        return _neighbour_extreme(_neighbour_extreme(x, -2, True), -1, True)

    skeleton = F.relu(img - dilate(erode(img)))
    for _ in range(iterations):
        img = erode(img)
        delta = F.relu(img - dilate(erode(img)))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


def soft_cldice_loss(logits, target, *, iterations: int = 3, smooth: float = 1.0):
    """1 - clDice per sample, averaged: the harmonic mean of topology precision (the predicted skeleton inside the
    true mask) and topology sensitivity (the true skeleton inside the prediction). MONAI's ``SoftclDiceLoss``
    formula with ``smooth_nr = smooth_dr = 1``; the target's skeleton carries no gradient."""
    import torch

    prob = torch.sigmoid(logits)
    with torch.no_grad():
        skel_true = soft_skeleton(target, iterations)
    skel_pred = soft_skeleton(prob, iterations)
    axes = list(range(1, prob.ndim))
    precision = ((skel_pred * target).sum(axes) + smooth) / (skel_pred.sum(axes) + smooth)
    sensitivity = ((skel_true * prob).sum(axes) + smooth) / (skel_true.sum(axes) + smooth)
    return (1.0 - 2.0 * precision * sensitivity / (precision + sensitivity + 1e-4)).mean()


@SEG_LOSSES.register(SegLoss.DICE_BCE_CLDICE.value)
def _dice_bce_cldice():
    dice_bce = _dice_bce()

    def loss(logits, target):
        return dice_bce(logits, target) + 0.5 * soft_cldice_loss(logits, target)

    return loss


def build_loss(name: str | SegLoss = DEFAULT_LOSS):
    """A loss module ``(logits, target) -> scalar`` for one-channel binary segmentation."""
    return SEG_LOSSES.get(SegLoss(name).value if isinstance(name, SegLoss) else str(name))()


def count_parameters(model) -> int:
    """Trainable parameters of a torch module."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
