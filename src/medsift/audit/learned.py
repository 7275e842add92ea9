"""Self-supervised orientation and inversion detectors trained on the dataset itself (Oakden-Rayner's method).

The clean majority makes the labels: each training thumbnail is rotated by k * 90 degrees (label k), inverted
with probability 1/2 (label 1), and mirrored left-right at random as a nuisance (a head is nearly symmetric
left-right, so a mirror is not a defect we can or want to see). A tiny CNN learns both heads. Predicted on the
thumbnails as stored, an image the model finds "rotated" or "inverted" is one. Patients are split in two
folds and each fold is scored by the model trained on the other (no image scores itself).

Thumbnails are 64x64 uint8 (area-resized to ``size``); everything runs on the CPU with ``n_threads`` torch
threads (1 by default: on a shared machine more threads spin and run slower).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FOLDS = 2


@dataclass(frozen=True)
class TrainConfig:
    """Training settings of the detectors (steps of ``batch`` thumbnails, AdamW)."""

    steps: int = 300
    batch: int = 64
    lr: float = 3e-3
    size: int = 32
    width: int = 16
    n_threads: int = 1


@dataclass(frozen=True)
class DetectorOutput:
    """Per image: ``p_rot`` float (N, 4) probability of rotation k*90 deg CCW, ``p_inv`` float (N,) probability
    of inversion; ``trained`` bool (N,) whether a model scored it; ``seconds`` of training + inference."""

    p_rot: np.ndarray
    p_inv: np.ndarray
    trained: np.ndarray
    seconds: float


def _net(size: int, width: int = 16):
    import torch.nn as nn

    w = width
    feat = 4 * w * (size // 8) * (size // 8)
    body = nn.Sequential(
        nn.Conv2d(1, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(),
        nn.Flatten(), nn.Dropout(0.2),
    )
    return body, nn.Linear(feat, 4), nn.Linear(feat, 2)


def transform_batch(x, k, flip, inv):
    """Apply per-sample rotation ``k`` (0..3, CCW), left-right ``flip`` and ``inv`` (1 - x) to x (B, 1, H, W) in 0..1.

    Deterministic twin of the random draw in :func:`train_detector`.
    """
    import torch

    out = torch.where(flip.view(-1, 1, 1, 1).bool(), x.flip(-1), x)
    rotated = torch.stack([torch.rot90(out, int(r), dims=(-2, -1)) for r in range(4)])  # (4, B, 1, H, W)
    out = rotated[k, torch.arange(len(k))]
    return torch.where(inv.view(-1, 1, 1, 1).bool(), 1.0 - out, out)


def _prep(thumbs: np.ndarray, size: int):
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(thumbs.astype(np.float32) / 255.0).unsqueeze(1)
    return F.interpolate(x, size=(size, size), mode="area") if size != thumbs.shape[-1] else x


def train_detector(thumbs: np.ndarray, *, rng: np.random.Generator, config: TrainConfig = TrainConfig()):
    """Train the two-headed CNN on ``thumbs`` uint8 (N, 64, 64) assumed mostly upright and not inverted.

    Returns the model as ``(body, rot_head, inv_head)`` in eval mode.
    """
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(config.n_threads)
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2**31 - 1)))
    torch.manual_seed(int(rng.integers(0, 2**31 - 1)))  # layer init; restored below
    body, rot_head, inv_head = _net(config.size, config.width)
    params = list(body.parameters()) + list(rot_head.parameters()) + list(inv_head.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.steps)
    x_all = _prep(thumbs, config.size)
    n = len(x_all)
    for _ in range(config.steps):
        idx = torch.randint(0, n, (min(config.batch, max(n, 2)),), generator=gen)
        b = len(idx)
        k = torch.randint(0, 4, (b,), generator=gen)
        flip = torch.randint(0, 2, (b,), generator=gen)
        inv = torch.randint(0, 2, (b,), generator=gen)
        x = transform_batch(x_all[idx], k, flip, inv)
        h = body(x)
        loss = F.cross_entropy(rot_head(h), k) + F.cross_entropy(inv_head(h), inv)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    for mod in (body, rot_head, inv_head):
        mod.eval()
    return body, rot_head, inv_head


def predict(model, thumbs: np.ndarray, *, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(p_rot (N, 4), p_inv (N,))`` for thumbnails as stored.

    Test-time augmentation: the image is also scored rotated by r * 90 degrees (and mirrored); the prediction for
    rotation ``(j + r) % 4`` of the rotated copy votes for orientation ``j`` of the original. A slice with no
    orientation cues (a round vertex slice) then gets a flat distribution instead of a confident wrong guess.
    """
    import torch

    body, rot_head, inv_head = model
    x = _prep(thumbs, size)
    p_rot, p_inv = [], []
    with torch.no_grad():
        for s in range(0, len(x), 512):
            xb = x[s:s + 512]
            q = torch.zeros(len(xb), 4)
            qi = torch.zeros(len(xb))
            for r in range(4):
                turned = torch.rot90(xb, r, dims=(-2, -1))
                # x = rot_j(u): rot_r(x) = rot_{j+r}(u); mirror(rot_r(x)) = rot_{-(j+r)}(mirror(u))
                for view, sign in ((turned, 1), (turned.flip(-1), -1)):
                    h = body(view)
                    pr = rot_head(h).softmax(-1)
                    q += pr[:, [(sign * (j + r)) % 4 for j in range(4)]]
                    qi += inv_head(h).softmax(-1)[:, 1]
            p_rot.append((q / 8).numpy())
            p_inv.append((qi / 8).numpy())
    return np.concatenate(p_rot), np.concatenate(p_inv)


def cross_fit(thumbs: np.ndarray, groups: np.ndarray, usable: np.ndarray, *, seed: int = 0,
              config: TrainConfig = TrainConfig()) -> DetectorOutput:
    """Train on one half of the patients, score the other half, and vice versa.

    Args:
        thumbs: uint8 (N, 64, 64).
        groups: patient id per image (folds never split a patient).
        usable: bool (N,) images to train on and score (readable, not flat).
        seed: seed of fold assignment, sampling and initialisation.
    """
    import time

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = len(thumbs)
    p_rot = np.zeros((n, 4))
    p_rot[:, 0] = 1.0
    p_inv = np.zeros(n)
    trained = np.zeros(n, dtype=bool)
    uniq = np.unique(groups[usable])
    if len(uniq) == 0:
        return DetectorOutput(p_rot, p_inv, trained, 0.0)
    perm = rng.permutation(len(uniq))
    fold_of = {g: int(perm[i] % FOLDS) for i, g in enumerate(uniq)}
    fold = np.array([fold_of.get(g, -1) for g in groups])
    n_folds = FOLDS if len(uniq) >= FOLDS else 1
    for k in range(n_folds):
        test = usable & ((fold == k) if n_folds > 1 else np.ones(n, bool))
        train = usable & ((fold != k) if n_folds > 1 else np.ones(n, bool))
        if not train.any() or not test.any():
            continue
        model = train_detector(thumbs[train], rng=rng, config=config)
        pr, pi = predict(model, thumbs[test], size=config.size)
        p_rot[test], p_inv[test], trained[test] = pr, pi, True
    return DetectorOutput(p_rot, p_inv, trained, time.perf_counter() - t0)
