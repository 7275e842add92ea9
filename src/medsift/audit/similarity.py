"""Image-to-image similarity from the shared thumbnails: blurred descriptors, volume neighbours, aligned SSIM/PSNR.

Shared by the duplicate and sequence checks (computed once per audit, cached on the context).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medsift.audit.base import AuditContext

DESC = 16          # descriptor side (pixels)
INFORMATIVE_STD = 2.0  # grey levels; thumbnails flatter than this carry no content to compare


def descriptors(thumbs: np.ndarray) -> np.ndarray:
    """Shift-tolerant descriptors: 64x64 thumbnails blurred (sigma 1.5 px) and block-averaged to 16x16.

    Returns float32 (N, 256) in grey levels.
    """
    from scipy import ndimage

    def one_block(t: np.ndarray) -> np.ndarray:
        n, h, w = t.shape
        blurred = ndimage.gaussian_filter(t.astype(np.float32), sigma=(0, 1.5, 1.5))
        f = h // DESC
        return blurred.reshape(n, DESC, f, DESC, f).mean(axis=(2, 4)).reshape(n, DESC * DESC)

    return _in_blocks(one_block, thumbs, DESC * DESC)


BLOCK = 1024
"""Thumbnails processed at once by the descriptor functions: float copies of all N thumbnails (and complex FFTs,
16x the uint8 size) would need ~13 GB at 100,000 slices."""


def _in_blocks(fn, thumbs: np.ndarray, width: int) -> np.ndarray:
    """``fn`` (per-image, (n, H, W) -> (n, width)) applied to ``BLOCK`` thumbnails at a time; float32 (N, width)."""
    out = np.empty((len(thumbs), width), dtype=np.float32)
    for s in range(0, len(thumbs), BLOCK):
        out[s:s + BLOCK] = fn(thumbs[s:s + BLOCK])
    return out


def rms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Root-mean-square difference of descriptor rows (grey levels)."""
    return np.sqrt(np.mean((a - b) ** 2, axis=-1))


def volume_order(m: pd.DataFrame) -> pd.DataFrame:
    """Rows with a volume key and slice order: ``pos`` (row), ``vol``, ``rank`` (0.. in slice order), ``size``."""
    vol = (m["source"].astype(str) + "|" + m["patient_id"].astype(str) + "|"
           + m["series_id"].astype("string").fillna(m["study_id"].astype("string").fillna("")).astype(str))
    idx = pd.to_numeric(m["slice_index"], errors="coerce") if "slice_index" in m else pd.Series(np.nan, index=m.index)
    t = pd.DataFrame({"pos": np.arange(len(m)), "vol": vol.to_numpy(), "idx": idx.to_numpy(dtype=float)})
    t = t[np.isfinite(t["idx"])].sort_values(["vol", "idx", "pos"], kind="stable")
    t["rank"] = t.groupby("vol").cumcount()
    t["size"] = t.groupby("vol")["pos"].transform("size")
    return t


def neighbours(ctx: AuditContext) -> dict:
    """Per image: previous/next slice row of its volume (-1 if none) and descriptor distances to them (cached).

    Only informative images (readable, not flat) take part: a blank or broken slice is skipped over, so it
    does not make its neighbours look out of place.
    """
    if "neighbours" in ctx.cache:
        return ctx.cache["neighbours"]
    n = len(ctx.manifest)
    desc = ctx.cache.get("desc")
    if desc is None:
        desc = ctx.cache["desc"] = descriptors(ctx.thumbs)
    t = volume_order(ctx.manifest)
    t = t[informative(ctx)[t["pos"].to_numpy()]]
    prev = np.full(n, -1)
    nxt = np.full(n, -1)
    pos, vol = t["pos"].to_numpy(), t["vol"].to_numpy()
    same = vol[1:] == vol[:-1]
    nxt[pos[:-1][same]] = pos[1:][same]
    prev[pos[1:][same]] = pos[:-1][same]
    d_prev = np.where(prev >= 0, rms(desc, desc[np.maximum(prev, 0)]), np.nan)
    d_next = np.where(nxt >= 0, rms(desc, desc[np.maximum(nxt, 0)]), np.nan)
    out = {"prev": prev, "next": nxt, "d_prev": d_prev, "d_next": d_next, "desc": desc}
    ctx.cache["neighbours"] = out
    return out


def informative(ctx: AuditContext) -> np.ndarray:
    """Readable images whose thumbnail is not (nearly) flat."""
    flat = ctx.thumbs.reshape(len(ctx.thumbs), -1)
    std = np.zeros(len(flat))
    for s in range(0, len(flat), BLOCK):  # std works in float64: 32 kB per thumbnail at once
        std[s:s + BLOCK] = flat[s:s + BLOCK].std(axis=1)
    return ctx.readable & (std > INFORMATIVE_STD)


def aligned_ssim_psnr(a: np.ndarray, b: np.ndarray, *, crop: int = 6) -> tuple[float, float, tuple[float, float]]:
    """SSIM and PSNR (dB) of two uint8 thumbnails after sub-pixel alignment of ``b`` onto ``a`` (phase correlation,
    Fourier shift), on the centre (``crop`` px border dropped). Returns ``(ssim, psnr, (dy, dx))``."""
    from scipy import ndimage
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from skimage.registration import phase_cross_correlation

    fa, fb = a.astype(np.float64), b.astype(np.float64)
    shift, _, _ = phase_cross_correlation(fa, fb, upsample_factor=10, normalization=None)
    fb = np.real(np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(fb), shift)))
    A, B = fa[crop:-crop, crop:-crop], fb[crop:-crop, crop:-crop]
    s = float(structural_similarity(A, B, data_range=255.0))
    mse = float(np.mean((A - B) ** 2))
    p = 99.0 if mse < 1e-10 else float(peak_signal_noise_ratio(A, B, data_range=255.0))
    return s, p, (float(shift[0]), float(shift[1]))


FOURIER_K = 8  # descriptor keeps spatial frequencies |k| <= 8 cycles per thumbnail


def fourier_descriptors(thumbs: np.ndarray) -> np.ndarray:
    """Translation-invariant descriptors: log(1 + |FFT2|) of the 64x64 thumbnails at the lowest frequencies.

    A copy shifted by a few pixels (and re-noised) keeps its Fourier magnitude, while the neighbouring slice of
    the same volume does not, so near-duplicates stand out. Returns float32 (N, 17 * 17).
    """
    c, k = thumbs.shape[1] // 2, FOURIER_K

    def one_block(t: np.ndarray) -> np.ndarray:
        mag = np.abs(np.fft.fftshift(np.fft.fft2(t.astype(np.float32)), axes=(1, 2)))
        return np.log1p(mag[:, c - k:c + k + 1, c - k:c + k + 1]).reshape(len(t), -1).astype(np.float32)

    return _in_blocks(one_block, thumbs, (2 * k + 1) ** 2)
