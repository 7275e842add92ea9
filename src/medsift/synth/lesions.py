"""Intracranial hemorrhages drawn into an :class:`~medsift.synth.anatomy.Anatomy`, one function pair per subtype.

Each ``sample_<subtype>(rng, anatomy)`` draws the parameters; ``render_<subtype>(params, anatomy)`` is the
deterministic twin returning a :class:`Lesion` (boolean masks, ``(Z, H, W)``, and the HU of the blood).
Acute blood is 60-80 HU; the perihematomal edema around an IPH is 15-25 HU.

- IPH: an irregular ellipsoid blob in the parenchyma with an edema rim around it.
- IVH: blood layering in the dependent (back) part of a lateral ventricle.
- SAH: blood filling the sulci, fissures and cisterns of a sector of the brain (thin bright strands).
- EDH: a biconvex lens against the inner table of the skull (short arc, thick).
- SDH: a crescent along the inner table (long arc, thin).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from medsift.synth.anatomy import Anatomy


class Subtype(str, Enum):
    """Hemorrhage subtypes, with the manifest's short names (``label_<value>``)."""

    IPH = "iph"
    IVH = "ivh"
    SAH = "sah"
    EDH = "edh"
    SDH = "sdh"


LABEL_MAP: dict[str, int] = {"background": 0, "iph": 1, "edema": 2, "ivh": 3, "sah": 4, "edh": 5, "sdh": 6}
"""Integer codes of the label volumes (``make_patient`` labels["label"], ``nifti/<patient>_label.nii.gz``)."""

BLOOD_CODES: tuple[int, ...] = (LABEL_MAP["iph"], LABEL_MAP["ivh"], LABEL_MAP["sah"], LABEL_MAP["edh"], LABEL_MAP["sdh"])

RSNA_NAMES: dict[Subtype, str] = {
    Subtype.EDH: "epidural", Subtype.IPH: "intraparenchymal", Subtype.IVH: "intraventricular",
    Subtype.SAH: "subarachnoid", Subtype.SDH: "subdural",
}


@dataclass(frozen=True)
class Lesion:
    """A rendered lesion: ``blood`` and (IPH only) ``edema`` bool masks ``(Z, H, W)``, blood HU."""

    subtype: Subtype
    blood: np.ndarray
    blood_hu: float
    edema: np.ndarray | None = None
    edema_hu: float = 20.0


@dataclass(frozen=True)
class IphParams:
    center: tuple[float, float, float]  # z (slices), y, x (pixels)
    radii_mm: tuple[float, float, float]  # z, long, short
    angle: float
    bumps: tuple[float, float]
    rim_mm: float
    blood_hu: float
    edema_hu: float


@dataclass(frozen=True)
class IvhParams:
    sides: tuple[int, ...]  # -1 = image left, +1 = image right
    z_range: tuple[int, int]  # inclusive slice range
    fill: float  # fraction of the ventricle's front-back extent filled from the back
    blood_hu: float


@dataclass(frozen=True)
class SahParams:
    theta: float
    half_arc: float
    z_range: tuple[int, int]
    with_cisterns: bool
    blood_hu: float


@dataclass(frozen=True)
class ExtraAxialParams:
    """EDH or SDH: where along the skull (angle, slice), how long (arc, slices) and how thick (mm)."""

    theta: float
    half_arc: float
    z_center: float
    z_half: float
    thickness_mm: float
    blood_hu: float


def _angle_diff(theta: np.ndarray, theta0: float) -> np.ndarray:
    return np.abs((theta - theta0 + np.pi) % (2 * np.pi) - np.pi)


def _slices_where(mask_by_slice: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask_by_slice)


# --- IPH ------------------------------------------------------------------------------------------------------

def sample_iph(rng: np.random.Generator, anatomy: Anatomy) -> IphParams:
    """A blob 14-36 mm across in deep parenchyma of a mid-height slice, with a 3-7 mm edema rim."""
    a = anatomy
    z_count = a.hu.shape[0]
    candidates = _slices_where((a.height > 0.3) & (a.height < 0.72)) if z_count > 2 else np.arange(z_count)
    if candidates.size == 0:
        candidates = np.arange(z_count)
    zc = int(rng.choice(candidates))
    ax, ay = a.half_axes[zc]
    parenchyma = a.parenchyma[zc]
    yy, xx = np.nonzero(parenchyma)
    # prefer deep white matter: points whose normalised radius is 0.25..0.65
    rn = np.sqrt((a.x[0, yy, xx] / ax) ** 2 + (a.y[0, yy, xx] / ay) ** 2)
    deep = np.flatnonzero((rn > 0.25) & (rn < 0.65))
    pick = int(rng.choice(deep)) if deep.size else int(rng.integers(0, yy.size))
    return IphParams(
        center=(zc + float(rng.uniform(-0.4, 0.4)), float(yy[pick]), float(xx[pick])),
        radii_mm=(float(rng.uniform(6.0, 13.0)), float(rng.uniform(11.0, 22.0)), float(rng.uniform(8.0, 15.0))),
        angle=float(rng.uniform(0, np.pi)),
        bumps=(float(rng.uniform(0.04, 0.14)), float(rng.uniform(0, 2 * np.pi))),
        rim_mm=float(rng.uniform(3.0, 7.0)),
        blood_hu=float(rng.uniform(62.0, 78.0)),
        edema_hu=float(rng.uniform(15.0, 20.0)),
    )


def render_iph(params: IphParams, anatomy: Anatomy) -> Lesion:
    """Blood where the bumpy ellipsoid radius < 1 (parenchyma/CSF only); edema rim ``rim_mm`` beyond it."""
    a, p = anatomy, params
    sp, st = a.params.spacing_mm, a.params.slice_thickness_mm
    z = (np.arange(a.hu.shape[0], dtype=np.float32) - p.center[0])[:, None, None] * st
    dy = (a.y + a.params.center_px[0] - p.center[1]) * sp
    dx = (a.x + a.params.center_px[1] - p.center[2]) * sp
    u = dx * np.cos(p.angle) + dy * np.sin(p.angle)
    v = -dx * np.sin(p.angle) + dy * np.cos(p.angle)
    rz, ru, rv = p.radii_mm
    rn = np.sqrt((z / rz) ** 2 + (u / ru) ** 2 + (v / rv) ** 2)
    amp, ph = p.bumps
    rn = rn / (1.0 + amp * np.cos(3.0 * np.arctan2(v, u) + ph))
    inside = a.parenchyma | a.csf
    blood = (rn < 1.0) & inside
    rim = (rn < 1.0 + p.rim_mm / min(ru, rv)) & inside & ~blood
    rim &= blood.any(axis=(1, 2))[:, None, None]  # edema only on slices that show the blood
    return Lesion(Subtype.IPH, blood, p.blood_hu, rim, p.edema_hu)


# --- IVH ------------------------------------------------------------------------------------------------------

def sample_ivh(rng: np.random.Generator, anatomy: Anatomy) -> IvhParams:
    """Blood in one or both lateral ventricles, over a run of slices, filling 30-60 % from the back."""
    zs = _slices_where(anatomy.ventricles.any(axis=(1, 2)))
    if zs.size == 0:
        zs = np.array([anatomy.hu.shape[0] // 2])
    length = int(rng.integers(2, max(3, zs.size) + 1))
    start = int(rng.integers(zs[0], max(zs[0], zs[-1] - length + 1) + 1))
    sides = ((-1,), (1,), (-1, 1))[int(rng.integers(0, 3))]
    return IvhParams(sides=sides, z_range=(start, min(start + length - 1, int(zs[-1]))),
                     fill=float(rng.uniform(0.3, 0.6)), blood_hu=float(rng.uniform(60.0, 76.0)))


def render_ivh(params: IvhParams, anatomy: Anatomy) -> Lesion:
    """Ventricle pixels of the chosen side(s) behind the level ``fill`` of the way from the back, per slice."""
    a, p = anatomy, params
    z_count, hgt, wid = a.hu.shape
    blood = np.zeros(a.hu.shape, dtype=bool)
    rows = np.arange(hgt)
    for side in p.sides:
        half = (a.x[0] > 0) if side > 0 else (a.x[0] <= 0)
        for z in range(p.z_range[0], p.z_range[1] + 1):
            vent = a.ventricles[z] & half
            row_any = vent.any(axis=1)
            if not row_any.any():
                continue
            y0, y1 = rows[row_any][0], rows[row_any][-1]
            level = y1 - p.fill * (y1 - y0)
            blood[z] |= vent & (rows[:, None] >= level)
    return Lesion(Subtype.IVH, blood, p.blood_hu)


# --- SAH ------------------------------------------------------------------------------------------------------

def sample_sah(rng: np.random.Generator, anatomy: Anatomy) -> SahParams:
    """Blood in the CSF spaces of a 60-140 degree sector over 3-6 slices (with the basal cisterns when low)."""
    z_count = anatomy.hu.shape[0]
    cand = _slices_where((anatomy.height > 0.15) & (anatomy.height < 0.7))
    zc = int(rng.choice(cand)) if cand.size else z_count // 2
    half = int(rng.integers(1, 3))
    return SahParams(theta=float(rng.uniform(-np.pi, np.pi)), half_arc=float(np.deg2rad(rng.uniform(30, 70))),
                     z_range=(max(0, zc - half), min(z_count - 1, zc + half)),
                     with_cisterns=bool(rng.uniform() < 0.5), blood_hu=float(rng.uniform(60.0, 75.0)))


def render_sah(params: SahParams, anatomy: Anatomy) -> Lesion:
    """Sulcal/cisternal CSF of the sector and slices, widened by one pixel in plane."""
    from scipy import ndimage

    a, p = anatomy, params
    sector = _angle_diff(a.theta, p.theta) < p.half_arc
    zmask = np.zeros((a.hu.shape[0], 1, 1), dtype=bool)
    zmask[p.z_range[0]:p.z_range[1] + 1] = True
    # sulcal and cisternal CSF, not the thin layer under the skull
    spaces = a.csf & (a.depth_inner > 1.0)
    blood = spaces & sector & zmask
    if p.with_cisterns:
        blood |= a.cistern & zmask
    # strands one pixel wider (in plane) so they stay visible after partial-volume blur
    cross = ndimage.generate_binary_structure(2, 1)[None]
    blood = ndimage.binary_dilation(blood, structure=cross) & (a.csf | a.parenchyma) & (a.depth_inner > 1.0) & zmask
    return Lesion(Subtype.SAH, blood, p.blood_hu)


# --- EDH / SDH ------------------------------------------------------------------------------------------------

def _sample_extra_axial(rng: np.random.Generator, anatomy: Anatomy, *, arc_deg: tuple[float, float],
                        thick_mm: tuple[float, float], z_half: tuple[float, float],
                        hu: tuple[float, float]) -> ExtraAxialParams:
    cand = _slices_where((anatomy.height > 0.3) & (anatomy.height < 0.8))
    zc = float(rng.choice(cand)) if cand.size else anatomy.hu.shape[0] / 2
    # mostly lateral convexities (|theta| near 0 or pi), where these bleeds sit
    side = float(rng.choice([0.0, np.pi]))
    return ExtraAxialParams(theta=side + float(rng.uniform(-0.9, 0.9)),
                            half_arc=float(np.deg2rad(rng.uniform(*arc_deg))), z_center=zc,
                            z_half=float(rng.uniform(*z_half)), thickness_mm=float(rng.uniform(*thick_mm)),
                            blood_hu=float(rng.uniform(*hu)))


def sample_edh(rng: np.random.Generator, anatomy: Anatomy) -> ExtraAxialParams:
    """Biconvex lens: 20-35 degree half-arc, 10-18 mm thick at the centre, over +-1.5..2.8 slices."""
    return _sample_extra_axial(rng, anatomy, arc_deg=(20, 35), thick_mm=(10, 18), z_half=(1.5, 2.8), hu=(62, 80))


def sample_sdh(rng: np.random.Generator, anatomy: Anatomy) -> ExtraAxialParams:
    """Crescent: 55-85 degree half-arc, 4-9 mm thick, over +-2.5..4.5 slices."""
    return _sample_extra_axial(rng, anatomy, arc_deg=(55, 85), thick_mm=(4, 9), z_half=(2.5, 4.5), hu=(58, 74))


def _render_extra_axial(p: ExtraAxialParams, a: Anatomy, *, power: float) -> np.ndarray:
    """Blood between the inner table and ``thickness(theta, z)``; profile ``1 - |t|**power`` along arc and z."""
    u = np.clip(_angle_diff(a.theta, p.theta) / p.half_arc, 0.0, 1.0)  # (1, H, W)
    w = np.clip(np.abs(np.arange(a.hu.shape[0], dtype=np.float32) - p.z_center) / p.z_half, 0.0, 1.0)
    thick_px = p.thickness_mm / a.params.spacing_mm
    profile = (1.0 - u ** power) * (1.0 - w ** power)[:, None, None]
    return a.intracranial & (a.depth_inner < thick_px * profile)


def render_edh(params: ExtraAxialParams, anatomy: Anatomy) -> Lesion:
    """Lens: thickness falls off as ``1 - t**2`` along the arc and across slices (biconvex)."""
    return Lesion(Subtype.EDH, _render_extra_axial(params, anatomy, power=2.0), params.blood_hu)


def render_sdh(params: ExtraAxialParams, anatomy: Anatomy) -> Lesion:
    """Crescent: nearly constant thickness (``1 - t**6``) along a long arc, following the skull."""
    return Lesion(Subtype.SDH, _render_extra_axial(params, anatomy, power=6.0), params.blood_hu)


SAMPLERS = {Subtype.IPH: sample_iph, Subtype.IVH: sample_ivh, Subtype.SAH: sample_sah,
            Subtype.EDH: sample_edh, Subtype.SDH: sample_sdh}
RENDERERS = {Subtype.IPH: render_iph, Subtype.IVH: render_ivh, Subtype.SAH: render_sah,
             Subtype.EDH: render_edh, Subtype.SDH: render_sdh}


def random_lesion(rng: np.random.Generator, subtype: Subtype, anatomy: Anatomy) -> Lesion:
    """Sample the parameters of one lesion of ``subtype`` and render it."""
    subtype = Subtype(subtype)
    return RENDERERS[subtype](SAMPLERS[subtype](rng, anatomy), anatomy)
