"""A light centre-heatmap detector (CenterNet / TTFNet style) that trains in minutes on a CPU.

One class, a few boxes per slice: a small residual encoder (strides 2..32) with a top-down path back to
stride 4 predicts, per output cell, a lesion-centre heatmap and the distances (left, top, right, bottom,
pixels) from the cell centre to the box sides. Targets (:func:`encode_targets`): an elliptical Gaussian per
box (sigma = ``alpha`` x side / 6) whose peak cell is exactly 1; the side distances are supervised on every
cell of the Gaussian (weighted by it) with a GIoU loss, so each box teaches many cells at once - the
reason this learns much faster than a generic detector from scratch. Decoding (:func:`decode`) keeps the
3x3 local maxima of the heatmap, the ``k`` best of them, and turns their distances into boxes.

Example:
    >>> import torch
    >>> heat = torch.full((1, 1, 8, 8), -9.0); heat[0, 0, 2, 5] = 3.0
    >>> ltrb = torch.zeros(1, 4, 8, 8)  # exp(0) * stride = one stride each side
    >>> decode(heat, ltrb, stride=4, k=1)[0, 0].tolist()  # doctest: +ELLIPSIS
    [18.0, 6.0, 26.0, 14.0, 0.95...]
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: output stride of the heatmap (input pixels per cell)
STRIDE = 4
#: TTFNet's Gaussian size factor: sigma = ALPHA * side / 6
ALPHA = 0.54
#: initial heatmap logit (prior probability ~0.1 %, keeps the focal loss stable at the start)
PRIOR_LOGIT = -6.9


def _nn():
    import torch.nn as nn

    class Block(nn.Module):
        """Residual basic block (3x3, 3x3) with a 1x1 projection when shape changes."""

        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.skip = (nn.Identity() if cin == cout and stride == 1 else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.act(self.body(x) + self.skip(x))

    return nn, Block


def build_centernet(in_channels: int = 1, *, width: int = 16):
    """The :class:`CenterNetLite` network (``width`` = channels of the stride-2 stem; stages 2w, 4w, 8w, 8w)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    _, Block = _nn()
    w = int(width)

    class CenterNetLite(nn.Module):
        """(B, C, S, S) -> ``{"heatmap": (B, 1, S/4, S/4) logits, "ltrb": (B, 4, S/4, S/4) log(distance/4)}``."""

        stride = STRIDE

        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w),
                                      nn.ReLU(inplace=True))
            chans = [2 * w, 4 * w, 8 * w, 8 * w]
            self.stages = nn.ModuleList()
            cin = w
            for c in chans:
                self.stages.append(nn.Sequential(Block(cin, c, 2), Block(c, c, 1)))
                cin = c
            f = 2 * w
            self.lateral = nn.ModuleList(nn.Conv2d(c, f, 1) for c in chans)
            self.smooth = nn.Sequential(nn.Conv2d(f, f, 3, 1, 1, bias=False), nn.BatchNorm2d(f),
                                        nn.ReLU(inplace=True))
            self.head_heat = nn.Sequential(nn.Conv2d(f, f, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(f, 1, 1))
            self.head_box = nn.Sequential(nn.Conv2d(f, f, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(f, 4, 1))
            with torch.no_grad():
                self.head_heat[-1].bias.fill_(PRIOR_LOGIT)
                self.head_box[-1].weight.mul_(0.1)
                self.head_box[-1].bias.fill_(math.log(2.0))

        def forward(self, x):
            feats = []
            y = self.stem(x)
            for stage in self.stages:
                y = stage(y)
                feats.append(y)
            top = self.lateral[-1](feats[-1])
            for lat, feat in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
                top = F.interpolate(top, size=feat.shape[-2:], mode="nearest") + lat(feat)
            top = self.smooth(top)
            return {"heatmap": self.head_heat(top), "ltrb": self.head_box(top)}

    return CenterNetLite()


def encode_targets(boxes: Sequence[np.ndarray], size: int, *, stride: int = STRIDE,
                   alpha: float = ALPHA) -> dict[str, np.ndarray]:
    """Training targets of a batch of box lists.

    Args:
        boxes: per image, float (n, 4) xyxy boxes in input pixels.
        size: input side S (pixels); the grid is ``S // stride`` cells.
        stride: pixels per cell.
        alpha: Gaussian size factor (sigma = alpha * side / 6, at least 0.5 cell).

    Returns:
        ``heatmap`` float32 (B, 1, G, G) in 0..1 with exact 1 at each box's centre cell; ``box`` float32
        (B, 4, G, G) xyxy (input pixels) of the box each cell regresses; ``weight`` float32 (B, 1, G, G)
        regression weight (the Gaussian value, 0 outside boxes; smaller boxes win overlapping cells).
    """
    g = int(size) // int(stride)
    b = len(boxes)
    heat = np.zeros((b, 1, g, g), np.float32)
    target = np.zeros((b, 4, g, g), np.float32)
    weight = np.zeros((b, 1, g, g), np.float32)
    centres = (np.arange(g, dtype=np.float32) + 0.5) * stride
    for i, bx in enumerate(boxes):
        bx = np.asarray(bx, np.float32).reshape(-1, 4)
        areas = (bx[:, 2] - bx[:, 0]) * (bx[:, 3] - bx[:, 1])
        for j in np.argsort(-areas, kind="stable"):  # larger first; smaller boxes overwrite shared cells
            x1, y1, x2, y2 = bx[j]
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            sx = max(alpha * (x2 - x1) / 6 / stride, 0.5)
            sy = max(alpha * (y2 - y1) / 6 / stride, 0.5)
            gx = np.exp(-((centres / stride - cx / stride) ** 2) / (2 * sx * sx))
            gy = np.exp(-((centres / stride - cy / stride) ** 2) / (2 * sy * sy))
            gauss = gy[:, None] * gx[None, :]
            ix, iy = min(int(cx // stride), g - 1), min(int(cy // stride), g - 1)
            gauss[iy, ix] = 1.0
            heat[i, 0] = np.maximum(heat[i, 0], gauss)
            inside = (centres[None, :] >= x1) & (centres[None, :] <= x2) & \
                     (centres[:, None] >= y1) & (centres[:, None] <= y2)
            inside[iy, ix] = True
            cells = inside & (gauss > 0.05)
            weight[i, 0][cells] = gauss[cells]
            for c, v in enumerate((x1, y1, x2, y2)):
                target[i, c][cells] = v
    return {"heatmap": heat, "box": target, "weight": weight}


def cell_centres(g: int, stride: int, *, device=None):
    """(2, G, G) tensor of cell centre coordinates (x, y) in input pixels."""
    import torch

    c = (torch.arange(g, dtype=torch.float32, device=device) + 0.5) * stride
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([xx, yy])


def ltrb_to_boxes(ltrb, stride: int):
    """Raw ``ltrb`` head output (B, 4, G, G) -> xyxy boxes (B, 4, G, G) in input pixels."""
    import torch

    dist = torch.exp(ltrb.float().clamp(-6.0, 6.0)) * stride
    ctr = cell_centres(ltrb.shape[-1], stride, device=ltrb.device)
    return torch.cat([ctr - dist[:, :2], ctr + dist[:, 2:]], dim=1)


def focal_heatmap_loss(logits, target, *, alpha: float = 2.0, beta: float = 4.0):
    """CenterNet's penalty-reduced pixel focal loss, summed and divided by the number of centre cells."""
    import torch
    import torch.nn.functional as F

    logits = logits.float()
    pos = target.eq(1.0).float()
    neg = 1.0 - pos
    logp, log1mp = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos_loss = -(pos * (1 - p) ** alpha * logp).sum()
    neg_loss = -(neg * (1 - target) ** beta * p ** alpha * log1mp).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp_min(1.0)


def giou_box_loss(pred_boxes, target_boxes, weight):
    """GIoU loss of (B, 4, G, G) xyxy boxes, averaged with (B, 1, G, G) weights (0 where no box)."""
    from torchvision.ops import generalized_box_iou_loss

    w = weight.reshape(-1)
    keep = w > 0
    if not bool(keep.any()):
        return pred_boxes.sum() * 0.0
    p = pred_boxes.permute(0, 2, 3, 1).reshape(-1, 4)[keep]
    t = target_boxes.permute(0, 2, 3, 1).reshape(-1, 4)[keep]
    return (generalized_box_iou_loss(p, t, reduction="none") * w[keep]).sum() / w[keep].sum()


def centernet_loss(output, batch, *, box_weight: float = 5.0):
    """Heatmap focal loss + ``box_weight`` x GIoU loss (TTFNet's weighting)."""
    heat = focal_heatmap_loss(output["heatmap"], batch["heatmap"])
    boxes = ltrb_to_boxes(output["ltrb"], STRIDE)
    return heat + box_weight * giou_box_loss(boxes, batch["box"], batch["weight"])


def decode(heatmap, ltrb, *, stride: int = STRIDE, k: int = 20):
    """Top-``k`` boxes per image from raw network outputs.

    Args:
        heatmap: (B, 1, G, G) logits.
        ltrb: (B, 4, G, G) raw distance outputs (log(distance / stride)).
        stride: input pixels per cell.
        k: boxes kept per image (3x3 local maxima of the heatmap, best first).

    Returns:
        float32 tensor (B, k, 5): ``x1, y1, x2, y2`` (input pixels, clipped to the input) and ``score`` 0..1.
    """
    import torch
    import torch.nn.functional as F

    prob = torch.sigmoid(heatmap.float())
    peaks = prob * (F.max_pool2d(prob, 3, stride=1, padding=1) == prob).float()
    b, _, g, _ = prob.shape
    k = min(int(k), g * g)
    scores, idx = peaks.reshape(b, -1).topk(k, dim=1)
    boxes = ltrb_to_boxes(ltrb, stride).reshape(b, 4, -1)
    picked = torch.gather(boxes, 2, idx[:, None, :].expand(b, 4, k)).permute(0, 2, 1)
    picked = picked.clamp(0.0, float(g * stride))
    return torch.cat([picked, scores[..., None]], dim=2)
