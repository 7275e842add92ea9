"""A head-CT phantom in Hounsfield units: scalp, skull, extra-axial CSF, grey/white matter, sulci,
fissures, cisterns and ventricles.

Image axes: a volume is ``(Z, H, W)``; ``z`` grows toward the vertex (slice 0 = skull base), ``y`` (rows)
grows toward the back of the head (anterior is at the top of the image, as CT is displayed) and ``x``
(columns) grows toward the patient's left. Every structure is a smooth function of the slice height, so
neighbouring slices look alike. The head is egg-shaped (wider at the back) and the ventricles differ front
to back, so an up-down flip of a slice is detectable.

:func:`sample_anatomy` draws the parameters of one head; :func:`render_anatomy` is its deterministic twin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Tissue values, HU (before partial-volume blur and noise).
AIR_HU = -1000.0
SCALP_HU = 30.0
BONE_TABLE_HU = 1450.0
BONE_DIPLOE_HU = 800.0
CSF_HU = 6.0
GREY_HU = 38.0
WHITE_HU = 30.0
DEEP_GREY_HU = 34.0


@dataclass(frozen=True)
class AnatomyParams:
    """Parameters of one phantom head. Lengths in mm, angles in radians, heights as 0 (skull base)..1 (vertex)."""

    spacing_mm: float
    slice_thickness_mm: float
    h_range: tuple[float, float]
    center_px: tuple[float, float]
    half_width_mm: float
    half_length_mm: float
    egg: float
    harmonics: tuple[tuple[float, float], ...]
    skull_mm: float
    skull_harmonic: tuple[float, float]
    scalp_mm: float
    gap_mm: float
    cortex_mm: float
    sulcus_count: int
    sulcus_depth_mm: float
    sulcus_phase: tuple[float, float, float]
    ventricle_scale: float
    ventricle_asym: float
    texture_seed: int


@dataclass(frozen=True)
class Anatomy:
    """A rendered head: HU volume, tissue masks and the geometry lesions are placed with.

    Attributes:
        hu: float32 ``(Z, H, W)`` HU before blur and noise.
        head, skull, intracranial, parenchyma, ventricles, csf, cistern: bool ``(Z, H, W)`` masks
            (``csf`` = sulci, fissures, cisterns and the thin extra-axial CSF layer; ``cistern`` = basal
            cisterns and Sylvian fissures only).
        depth_inner: float32 ``(Z, H, W)`` distance in pixels inward from the inner table of the skull
            along the ray from the head centre (negative outside the cranial cavity).
        theta: float32 ``(1, H, W)`` angle of the ray (0 = patient left, +pi/2 = back of the head).
        x, y: float32 ``(1, H, W)`` pixel offsets from the head centre.
        half_axes: float32 ``(Z, 2)`` head half-width and half-length per slice, pixels.
        height: float32 ``(Z,)`` slice height 0 (skull base) .. 1 (vertex).
        params: what was rendered.
    """

    hu: np.ndarray
    head: np.ndarray
    skull: np.ndarray
    intracranial: np.ndarray
    parenchyma: np.ndarray
    ventricles: np.ndarray
    csf: np.ndarray
    cistern: np.ndarray
    depth_inner: np.ndarray
    theta: np.ndarray
    x: np.ndarray
    y: np.ndarray
    half_axes: np.ndarray
    height: np.ndarray
    params: AnatomyParams


def sample_anatomy(rng: np.random.Generator, *, size: int, n_slices: int,
                   field_of_view_mm: float = 250.0, slice_thickness_mm: float = 5.0) -> AnatomyParams:
    """Draw one plausible head. ``size`` pixels square over ``field_of_view_mm``; slices ``slice_thickness_mm`` apart."""
    spacing = field_of_view_mm / size
    coverage = n_slices * slice_thickness_mm / 150.0  # a head is ~150 mm from skull base to vertex
    h0 = float(rng.uniform(0.0, 0.06))
    h1 = float(min(0.97, h0 + max(coverage, 0.6)))
    return AnatomyParams(
        spacing_mm=spacing,
        slice_thickness_mm=slice_thickness_mm,
        h_range=(h0, h1),
        center_px=(size / 2 + float(rng.uniform(-0.03, 0.03)) * size, size / 2 + float(rng.uniform(-0.03, 0.03)) * size),
        half_width_mm=float(rng.uniform(72.0, 80.0)),
        half_length_mm=float(rng.uniform(88.0, 98.0)),
        egg=float(rng.uniform(0.08, 0.13)),
        harmonics=tuple((float(rng.uniform(0.0, 0.012)), float(rng.uniform(0, 2 * np.pi))) for _ in range(4)),
        skull_mm=float(rng.uniform(5.0, 7.0)),
        skull_harmonic=(float(rng.uniform(0.0, 0.15)), float(rng.uniform(0, 2 * np.pi))),
        scalp_mm=float(rng.uniform(3.5, 6.0)),
        gap_mm=float(rng.uniform(0.8, 2.0)),
        cortex_mm=float(rng.uniform(2.5, 3.5)),
        sulcus_count=int(rng.integers(26, 38)),
        sulcus_depth_mm=float(rng.uniform(9.0, 15.0)),
        sulcus_phase=tuple(float(v) for v in rng.uniform(0, 2 * np.pi, size=3)),
        ventricle_scale=float(rng.uniform(0.8, 1.3)),
        ventricle_asym=float(rng.uniform(-0.12, 0.12)),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )


def _ellipse(u: np.ndarray, v: np.ndarray, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    a = np.maximum(a, 1e-3)
    b = np.maximum(b, 1e-3)
    return (u / a) ** 2 + (v / b) ** 2 < 1.0


def _bell(h: np.ndarray, center: float, half: float) -> np.ndarray:
    """1 at ``center``, 0 beyond ``half`` away, smooth in between (shape (Z,))."""
    return np.clip(1.0 - ((h - center) / half) ** 2, 0.0, 1.0)


def render_anatomy(params: AnatomyParams, *, size: int, n_slices: int) -> Anatomy:
    """Render the head described by ``params`` as a ``(n_slices, size, size)`` HU volume with masks."""
    p = params
    z = np.arange(n_slices, dtype=np.float32)
    h = (p.h_range[0] + (p.h_range[1] - p.h_range[0]) * (z + 0.5) / n_slices).astype(np.float32)
    scale = np.sqrt(np.clip(1.0 - ((h - 0.36) / 0.7) ** 2, 0.05, 1.0)).astype(np.float32)
    ax0 = p.half_width_mm / p.spacing_mm
    ay0 = p.half_length_mm / p.spacing_mm
    ax, ay = ax0 * scale, ay0 * scale
    cy, cx = p.center_px
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x = (xx - cx)[None]
    y = (yy - cy)[None]
    # In-plane shape computed once in 2D; each slice is the same outline scaled by ``scale``.
    ax_egg = ax0 * (1.0 + p.egg * np.clip(y / ay0, -1.0, 1.0))
    xn0, yn0 = x / ax_egg, y / ay0
    theta = np.arctan2(yn0, xn0).astype(np.float32)
    wobble = 1.0 + sum(a * np.cos((k + 2) * theta + ph) for k, (a, ph) in enumerate(p.harmonics))
    r2d = (np.sqrt(xn0 ** 2 + yn0 ** 2) / wobble).astype(np.float32)
    dist = np.sqrt(x ** 2 + y ** 2).astype(np.float32)
    s3 = scale[:, None, None]
    ax3 = ax[:, None, None]
    yn = yn0 / s3
    ratio = np.where(r2d > 1e-4, dist / np.maximum(r2d, 1e-4), ax0).astype(np.float32)
    depth = ratio * s3 - dist  # pixels inward from the outer skull surface, (Z, H, W)
    mm = 1.0 / p.spacing_mm
    base_thick = (1.0 + 0.5 * np.clip((0.25 - h) / 0.25, 0.0, 1.0)).astype(np.float32)[:, None, None]
    sk_a, sk_ph = p.skull_harmonic
    thick2d = (p.skull_mm * mm * (1.0 - 0.3 * np.cos(2 * theta) + sk_a * np.cos(3 * theta + sk_ph))).astype(np.float32)
    thick = np.maximum(thick2d * base_thick, 2.5)
    scalp = max(p.scalp_mm * mm, 1.5)
    gap = max(p.gap_mm * mm, 0.8)
    depth_inner = depth - thick
    depth_brain = depth_inner - gap

    head = depth >= -scalp
    skull = (depth >= 0) & (depth < thick)
    intracranial = depth_inner >= 0
    brain = depth_brain >= 0

    hu = np.full((n_slices, size, size), AIR_HU, dtype=np.float32)
    hu[head] = SCALP_HU
    frac = np.clip(depth / thick, 0.0, 1.0)
    bone = BONE_DIPLOE_HU + (BONE_TABLE_HU - BONE_DIPLOE_HU) * (2.0 * frac - 1.0) ** 2
    hu = np.where(skull, bone, hu)
    hu[intracranial] = CSF_HU

    rng = np.random.default_rng(p.texture_seed)
    texture = _smooth_field(rng, (n_slices, size, size), sigma_px=6.0 * mm, amplitude=1.5)
    grey = depth_brain < p.cortex_mm * mm
    hu = np.where(brain, np.where(grey, GREY_HU, WHITE_HU) + texture, hu)

    # Sulci: thin radial CSF clefts from the brain surface, wandering smoothly with angle and height.
    ph1, ph2, ph3 = p.sulcus_phase
    h3 = h[:, None, None]
    sulc_band = brain & (depth_brain < p.sulcus_depth_mm * mm)
    zi, yi, xi = np.nonzero(sulc_band)
    th = theta[0, yi, xi]
    hz = h[zi]
    wander = 0.9 * np.sin(3 * th + ph1 + 5.0 * hz) + 0.5 * np.sin(7 * th + ph2 - 3.0 * hz)
    stripes = np.sin(p.sulcus_count * th + ph3 + wander + 4.0 * hz)
    half_width_px = 0.7 + 0.15 * size / 256
    eps = np.clip(half_width_px * p.sulcus_count / np.maximum(dist[0, yi, xi], 1.0), 0.0, 1.0)
    sulc_depth = p.sulcus_depth_mm * mm * (0.6 + 0.4 * np.sin(5 * th + ph2 + 2.0 * hz))
    keep = (depth_brain[zi, yi, xi] < sulc_depth) & (np.abs(stripes) < eps)
    sulci = np.zeros_like(brain)
    sulci[zi[keep], yi[keep], xi[keep]] = True
    # Interhemispheric fissure (front and back), longer toward the vertex.
    fissure = brain & (np.abs(x) < 0.6 + 0.2 * size / 256) & ((yn < -0.25) | (yn > 0.4 - 0.3 * h3))

    def on_slices(env: np.ndarray, draw, *, reach: float = 1.0) -> np.ndarray:
        """Run ``draw(env, xn, yn, idx)`` only on slices where the height envelope ``env`` is positive, and
        only on the central window ``|xn|, |yn| <= reach`` (structures that stay near the middle)."""
        out = np.zeros_like(brain)
        idx = np.flatnonzero(env > 0.02)
        if idx.size:
            r0 = max(int(cy - reach * ay0 * 1.05) - 1, 0)
            r1 = min(int(cy + reach * ay0 * 1.05) + 2, size)
            c0 = max(int(cx - reach * ax0 * 1.2) - 1, 0)
            c1 = min(int(cx + reach * ax0 * 1.2) + 2, size)
            e = env[idx][:, None, None]
            win = (slice(None), slice(r0, r1), slice(c0, c1))
            sub = draw(e, xn0[win] / s3[idx], yn0[win] / s3[idx], idx)
            out[idx, r0:r1, c0:c1] = sub & brain[idx, r0:r1, c0:c1]
        return out

    # Sylvian fissures and basal cisterns (low slices).
    cistern = on_slices(_bell(h, 0.33, 0.12), lambda e, xn, yn, i: (
        (np.abs(yn + 0.08 - 0.1 * np.abs(xn)) < 0.012 + 0.018 * e) & (np.abs(xn) > 0.25) & (np.abs(xn) < 0.25 + 0.6 * e)))
    cistern |= on_slices(_bell(h, 0.2, 0.1), lambda e, xn, yn, i: (
        np.abs(np.sqrt((xn / 0.2) ** 2 + ((yn - 0.1) / 0.2) ** 2) - 1.0) < 0.08 + 0.1 * e), reach=0.45)

    # Ventricles: two banana-shaped lateral ventricles (narrow frontal horns, wide occipital horns) + third.
    def lateral(e: np.ndarray, xn: np.ndarray, yn: np.ndarray, idx: np.ndarray) -> np.ndarray:
        out = np.zeros(xn.shape[:1] + xn.shape[1:], dtype=bool)
        for side in (-1.0, 1.0):
            s = p.ventricle_scale * (1.0 + side * p.ventricle_asym)
            ang = side * np.deg2rad(12.0)
            u = (yn + 0.02) * np.cos(ang) - (xn - side * 0.16) * np.sin(ang)  # along the ventricle (front -> back)
            v = (yn + 0.02) * np.sin(ang) + (xn - side * 0.16) * np.cos(ang)
            length = 0.42 * np.sqrt(e)
            width = s * 0.09 * e * (0.55 + 0.6 * np.clip((u / length + 1.0) / 2.0, 0, 1))
            out |= _ellipse(u, v, length, width + 0.5 / ax3[idx])
        return out

    ventricles = on_slices(_bell(h, 0.5, 0.2), lateral, reach=0.6)
    ventricles |= on_slices(_bell(h, 0.34, 0.1), lambda e, xn, yn, i: (
        _ellipse(xn * ax0 * s3[i], yn - 0.12, 0.5 + 1.2 * e * mm, 0.12 * e) & (e > 0.05)), reach=0.4)
    ventricles &= depth_brain > 4.0 * mm
    # Deep grey nuclei lateral to the ventricles.
    nuclei = on_slices(_bell(h, 0.42, 0.14), lambda e, xn, yn, i: (
        (_ellipse(xn - 0.32, yn - 0.05, 0.1 * e, 0.2 * e) | _ellipse(xn + 0.32, yn - 0.05, 0.1 * e, 0.2 * e)) & (e > 0.05)),
        reach=0.5)
    hu = np.where(nuclei, DEEP_GREY_HU + texture, hu)

    csf = (intracranial & ~brain) | sulci | fissure | cistern
    csf &= ~ventricles
    hu = np.where(csf | ventricles, CSF_HU - 1.0 * (ventricles & ~csf), hu).astype(np.float32)

    # Skull base (lowest slices): petrous ridges running forward to the midline, and the air-filled
    # sphenoid sinus with its bony wall in front of them. Makes low slices differ front to back.
    def petrous(e: np.ndarray, xn: np.ndarray, yn: np.ndarray, idx: np.ndarray) -> np.ndarray:
        out = np.zeros(xn.shape, dtype=bool)
        for side in (-1.0, 1.0):
            p0 = np.array([side * 0.78, 0.18])
            p1 = np.array([side * 0.16, -0.1])
            d = p1 - p0
            t = np.clip(((xn - p0[0]) * d[0] + (yn - p0[1]) * d[1]) / float(d @ d), 0.0, 1.0)
            dist2 = (xn - p0[0] - t * d[0]) ** 2 + (yn - p0[1] - t * d[1]) ** 2
            out |= (dist2 < (0.012 + 0.05 * e) ** 2) & (e > 0.15)
        return out

    base_env = _bell(h, 0.03, 0.16)
    base_bone = on_slices(base_env, petrous)
    base_bone |= on_slices(base_env, lambda e, xn, yn, i: (
        _ellipse(xn, yn + 0.3, 0.05 + 0.12 * e, 0.04 + 0.09 * e) & (e > 0.25)), reach=0.5)
    sinus = on_slices(base_env, lambda e, xn, yn, i: (_ellipse(xn, yn + 0.3, 0.1 * e, 0.07 * e) & (e > 0.25)), reach=0.5)
    base_bone &= ~sinus
    hu = np.where(base_bone, BONE_DIPLOE_HU + 300.0 + 10.0 * texture, hu)
    hu = np.where(sinus, AIR_HU, hu).astype(np.float32)
    skull = skull | base_bone
    intracranial = intracranial & ~base_bone & ~sinus
    csf &= intracranial
    ventricles &= intracranial
    brain &= intracranial
    parenchyma = brain & ~csf & ~ventricles
    return Anatomy(
        hu=hu, head=head, skull=skull, intracranial=intracranial, parenchyma=parenchyma,
        ventricles=ventricles, csf=csf, cistern=cistern & ~ventricles,
        depth_inner=depth_inner.astype(np.float32), theta=theta,
        x=x.astype(np.float32), y=y.astype(np.float32), half_axes=np.stack([ax, ay], axis=1).astype(np.float32),
        height=h, params=p,
    )


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int, int], *, sigma_px: float,
                  amplitude: float) -> np.ndarray:
    """Low-frequency texture, about ``amplitude`` HU standard deviation, varying smoothly from slice to slice.

    Two 2D fields (white noise on a coarse grid, blurred and upsampled) are mixed with slice-dependent
    weights ``cos(a z)``, ``sin(a z)``, so neighbouring slices share most of their texture.
    """
    from scipy import ndimage

    z, hgt, wid = shape
    step = max(int(round(sigma_px)), 2)
    coarse = rng.standard_normal((2, hgt // step + 2, wid // step + 2)).astype(np.float32)
    coarse = ndimage.gaussian_filter(coarse, sigma=(0, 0.7, 0.7))
    coarse /= np.maximum(coarse.std(axis=(1, 2), keepdims=True), 1e-6)
    fields = ndimage.zoom(coarse, (1, step, step), order=1)[:, :hgt, :wid]
    phase = 0.35 * np.arange(z, dtype=np.float32)
    mix = np.cos(phase)[:, None, None] * fields[0] + np.sin(phase)[:, None, None] * fields[1]
    return (amplitude * mix).astype(np.float32)
