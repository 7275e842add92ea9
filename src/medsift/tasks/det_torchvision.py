"""torchvision detectors (FCOS, RetinaNet, Faster R-CNN) on a small ResNet18-FPN, trained from scratch.

No downloaded weights (``weights=None``, ``weights_backbone=None``); the first convolution takes the cache's
channel count; the FPN is ``fpn_channels`` wide (64 by default, 256 in torchvision) to stay trainable on a
CPU. RetinaNet and Faster R-CNN anchors come from the training boxes (:func:`medsift.tasks.det_anchors.fit_anchors`);
FCOS is anchor-free (one point per cell; sizes by FPN level).

The engine calls ``model(images)`` and then ``task.loss(batch, output)``; torchvision detectors need the targets
inside ``forward`` in training mode, so :class:`TorchvisionDetector` returns a :class:`DeferredLoss` there
(the loss is computed when the task hands it the targets). Single-process training only: under DDP the
deferred call would bypass gradient synchronisation.
"""

from __future__ import annotations

from typing import Any, Sequence


class DeferredLoss:
    """Calling it with torchvision targets runs the detector in training mode and returns its loss dict."""

    def __init__(self, detector, images) -> None:
        self.detector, self.images = detector, images

    def __call__(self, targets: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return self.detector(list(self.images), list(targets))


def build_torchvision_detector(kind: str, in_channels: int, *, size: int, anchors: dict[str, Any] | None,
                               fpn_channels: int = 64, max_dets: int = 20, score_floor: float = 0.01):
    """A :class:`TorchvisionDetector` of ``kind`` (``fcos`` | ``retinanet`` | ``fasterrcnn``).

    Args:
        kind: detector family.
        in_channels: image channels (the cache's).
        size: input side in pixels (the internal resize is an identity at this size).
        anchors: ``{"sizes": ((s, ...), ...) one tuple per level, "aspect_ratios": (r, ...)}`` (ignored by FCOS).
        fpn_channels: FPN width.
        max_dets: detections kept per image.
        score_floor: lowest score kept.
    """
    import torch.nn as nn
    from torchvision.models import resnet18
    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

    body = resnet18(weights=None)
    body.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    common = {"min_size": size, "max_size": size, "image_mean": [0.0] * in_channels,
              "image_std": [1.0] * in_channels}
    if kind in ("fcos", "retinanet"):
        backbone = BackboneWithFPN(body, {"layer2": "0", "layer3": "1", "layer4": "2"}, [128, 256, 512],
                                   fpn_channels, extra_blocks=LastLevelP6P7(fpn_channels, fpn_channels))
        n_levels = 5
    elif kind == "fasterrcnn":
        backbone = BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                                   [64, 128, 256, 512], fpn_channels, extra_blocks=LastLevelMaxPool())
        n_levels = 5
    else:
        from medsift.errors import ConfigError

        raise ConfigError(f"torchvision detector must be fcos, retinanet or fasterrcnn; got {kind!r}")
    if kind == "fcos":
        det = FCOS(backbone, num_classes=2, score_thresh=score_floor, detections_per_img=max_dets, **common)
    else:
        sizes = tuple(tuple(s) for s in anchors["sizes"]) if anchors else None
        if sizes is None or len(sizes) != n_levels:
            from medsift.errors import ConfigError

            raise ConfigError(f"{kind} needs {n_levels} anchor size tuples (one per FPN level); got {sizes!r}")
        gen = AnchorGenerator(sizes, (tuple(anchors["aspect_ratios"]),) * n_levels)
        if kind == "retinanet":
            from torchvision.models.detection.retinanet import RetinaNetHead

            head = RetinaNetHead(fpn_channels, gen.num_anchors_per_location()[0], 2)
            det = RetinaNet(backbone, num_classes=2, anchor_generator=gen, head=head, score_thresh=score_floor,
                            detections_per_img=max_dets, **common)
        else:
            det = FasterRCNN(backbone, num_classes=2, rpn_anchor_generator=gen, box_score_thresh=score_floor,
                             box_detections_per_img=max_dets, **common)
    return TorchvisionDetector(det)


def _module():
    import torch.nn as nn

    return nn.Module


class TorchvisionDetector(_module()):
    """Wraps a torchvision detector for the engine.

    ``forward(images (B, C, S, S))``: in training mode a :class:`DeferredLoss`; in eval mode float32
    (B, max_dets, 5) ``x1, y1, x2, y2, score`` (unused rows -1).
    """

    def __init__(self, detector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images):
        import torch

        if self.training:
            return DeferredLoss(self.detector, images)
        outs = self.detector(list(images))
        k = int(getattr(self.detector, "detections_per_img", 0) or
                getattr(getattr(self.detector, "roi_heads", None), "detections_per_img", 20))
        res = torch.full((len(outs), k, 5), -1.0, device=images.device)
        for i, o in enumerate(outs):
            n = min(len(o["scores"]), k)
            res[i, :n, :4] = o["boxes"][:n].float()
            res[i, :n, 4] = o["scores"][:n].float()
        return res


def torchvision_targets(boxes: Sequence[Any]) -> list[dict[str, Any]]:
    """torchvision target dicts (``boxes`` float (n, 4), ``labels`` int64 ones) from per-image box arrays."""
    import torch

    out = []
    for b in boxes:
        t = torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4)
        out.append({"boxes": t, "labels": torch.ones(len(t), dtype=torch.int64)})
    return out
