"""Registry of detection backends: network + training targets + loss + decoding, by name.

=============  ==============================================================================================
``centernet``  default: light centre-heatmap detector at stride 4 (:mod:`medsift.tasks.det_centernet`)
``seg2box``    small U-Net on box-filled masks, boxes = connected components (:mod:`medsift.tasks.det_seg2box`)
``fcos``       torchvision FCOS, ResNet18-FPN from scratch (:mod:`medsift.tasks.det_torchvision`)
``retinanet``  torchvision RetinaNet, anchors fitted to the training boxes
``fasterrcnn`` torchvision Faster R-CNN, anchors fitted to the training boxes
=============  ==============================================================================================

Every backend's model maps (B, C, S, S) standardised images to its own output; ``decode`` turns the eval-mode
output into a float32 tensor (B, k, 5) of ``x1, y1, x2, y2, score`` in input pixels (unused rows: -1).

Example:
    >>> DET_MODELS.names()
    ['centernet', 'fasterrcnn', 'fcos', 'retinanet', 'seg2box']
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from medsift.registry import Registry

DEFAULT_DET_MODEL = "centernet"


class DetBackend:
    """Interface of a detection backend (subclasses implement every method)."""

    #: the model's ``forward`` needs the targets (torchvision); the task then calls ``output(targets)``
    needs_anchors = False

    def build(self, in_channels: int, *, size: int, width: int, anchors: dict[str, Any] | None, max_dets: int,
              score_floor: float):
        raise NotImplementedError

    def encode(self, boxes: Sequence[np.ndarray], size: int) -> dict[str, Any]:
        """Training targets of a batch (added to the batch dict by the task's collate)."""
        raise NotImplementedError

    def loss(self, batch: dict[str, Any], output):
        raise NotImplementedError

    def decode(self, output, *, k: int):
        raise NotImplementedError


DET_MODELS: Registry[DetBackend] = Registry("detection model")


class CenterNetBackend(DetBackend):
    def build(self, in_channels, *, size, width, anchors, max_dets, score_floor):
        from medsift.tasks.det_centernet import build_centernet

        return build_centernet(in_channels, width=width)

    def encode(self, boxes, size):
        import torch

        from medsift.tasks.det_centernet import encode_targets

        return {k: torch.from_numpy(v) for k, v in encode_targets(boxes, size).items()}

    def loss(self, batch, output):
        from medsift.tasks.det_centernet import centernet_loss

        return centernet_loss(output, batch)

    def decode(self, output, *, k):
        from medsift.tasks.det_centernet import decode

        return decode(output["heatmap"], output["ltrb"], k=k)


class Seg2BoxBackend(DetBackend):
    def build(self, in_channels, *, size, width, anchors, max_dets, score_floor):
        from medsift.tasks.seg_models import build_model

        return build_model("unet_lite", in_channels=in_channels)

    def encode(self, boxes, size):
        import torch

        from medsift.tasks.det_seg2box import box_masks

        return {"box_mask": torch.from_numpy(box_masks(boxes, size))}

    def loss(self, batch, output):
        if not hasattr(self, "_fn"):
            from medsift.tasks.seg_models import build_loss

            self._fn = build_loss("dice_bce")
        return self._fn(output.float(), batch["box_mask"].float())

    def decode(self, output, *, k):
        import torch

        from medsift.tasks.det_seg2box import boxes_from_prob

        prob = torch.sigmoid(output.float())[:, 0].cpu().numpy()
        return torch.from_numpy(np.stack([boxes_from_prob(p, k=k) for p in prob]))


class TorchvisionBackend(DetBackend):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.needs_anchors = kind != "fcos"

    def build(self, in_channels, *, size, width, anchors, max_dets, score_floor):
        from medsift.tasks.det_torchvision import build_torchvision_detector

        return build_torchvision_detector(self.kind, in_channels, size=size, anchors=anchors,
                                          fpn_channels=4 * width, max_dets=max_dets, score_floor=score_floor)

    def encode(self, boxes, size):
        from medsift.tasks.det_torchvision import torchvision_targets

        return {"targets": torchvision_targets(boxes)}

    def loss(self, batch, output):
        device = batch["image"].device
        targets = [{k: v.to(device) for k, v in t.items()} for t in batch["targets"]]
        losses = output(targets)
        return sum(v.float() for v in losses.values())

    def decode(self, output, *, k):
        return output[:, :k]


DET_MODELS.register("centernet")(CenterNetBackend())
DET_MODELS.register("seg2box")(Seg2BoxBackend())
for _kind in ("fcos", "retinanet", "fasterrcnn"):
    DET_MODELS.register(_kind)(TorchvisionBackend(_kind))
