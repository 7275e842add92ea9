"""Grad-CAM heat maps (MONAI's implementation) and their overlay on the input slice."""

from __future__ import annotations

import numpy as np


def grad_cam(model, image, *, layer: str, class_index: int = 0) -> np.ndarray:
    """Grad-CAM of output ``class_index`` for one image.

    Args:
        model: the classifier (eval mode is set here).
        image: float tensor (1, C, H, W), already normalised as for the model.
        layer: name of the target layer (``layer4`` for ResNets, ``features`` for EfficientNet).
        class_index: output logit to explain.

    Returns:
        float32 (H, W) heat in 0..1.
    """
    from monai.visualize import GradCAM

    model.eval()
    cam = GradCAM(nn_module=model, target_layers=layer)
    heat = cam(x=image, class_idx=class_index)
    heat = heat.detach().float().cpu().numpy()[0, 0]
    lo, hi = float(heat.min()), float(heat.max())
    return ((heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)).astype(np.float32)


def overlay(gray: np.ndarray, heat: np.ndarray, *, alpha: float = 0.4) -> np.ndarray:
    """RGB uint8 (H, W, 3): ``gray`` (H, W) in 0..1 blended with the jet colour map of ``heat`` (H, W) 0..1."""
    from matplotlib import colormaps

    gray = np.clip(np.asarray(gray, dtype=np.float32), 0, 1)
    colour = colormaps["jet"](np.clip(heat, 0, 1))[..., :3]
    rgb = (1 - alpha) * np.repeat(gray[..., None], 3, axis=2) + alpha * colour
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def layer_name(model) -> str:
    """Grad-CAM target layer name of the models in :mod:`medsift.tasks.models`."""
    return "layer4" if hasattr(model, "layer4") else "features"


def save_png(path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 array as PNG atomically."""
    import io

    from PIL import Image

    from medsift.manifest import atomic_write_bytes

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
