"""One synthetic patient: anatomy + hemorrhages + partial-volume blur + CT noise, in integer HU."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from medsift.errors import ConfigError
from medsift.synth.anatomy import render_anatomy, sample_anatomy
from medsift.synth.lesions import LABEL_MAP, Subtype, random_lesion

HU_MIN, HU_MAX = -1024.0, 3071.0
PAINT_ORDER: tuple[Subtype, ...] = (Subtype.EDH, Subtype.SDH, Subtype.IPH, Subtype.IVH, Subtype.SAH)
SUBTYPE_WEIGHTS: dict[Subtype, float] = {Subtype.IPH: 0.3, Subtype.IVH: 0.2, Subtype.SAH: 0.2,
                                         Subtype.EDH: 0.15, Subtype.SDH: 0.15}
BLUR_SIGMA_PX: tuple[float, float, float] = (0.25, 0.6, 0.6)
NOISE_HU = 3.0


def _kernel_l2(sigma: float, truncate: float = 3.0) -> float:
    """L2 norm of scipy's discrete 1D Gaussian kernel: the factor by which it scales white-noise std."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    return float(np.sqrt((k ** 2).sum()))


def sample_subtypes(rng: np.random.Generator) -> tuple[Subtype, ...]:
    """1-3 distinct subtypes, IPH the most likely (weights :data:`SUBTYPE_WEIGHTS`)."""
    names = list(SUBTYPE_WEIGHTS)
    weights = np.array([SUBTYPE_WEIGHTS[s] for s in names])
    k = int(rng.integers(1, 4))
    idx = rng.choice(len(names), size=k, replace=False, p=weights / weights.sum())
    return tuple(names[i] for i in sorted(idx))


def make_patient(rng: np.random.Generator, *, size: int, n_slices: int,
                 subtypes: Sequence[str | Subtype] | None = None, slice_thickness_mm: float = 5.0,
                 field_of_view_mm: float = 250.0) -> tuple[np.ndarray, dict[str, Any]]:
    """Generate one head-CT volume with hemorrhages.

    Args:
        rng: the only source of randomness.
        size: pixels per side of each slice.
        n_slices: number of axial slices (slice 0 = skull base).
        subtypes: hemorrhage subtypes to draw (one lesion each); ``None`` draws 1-3 of them.
        slice_thickness_mm: distance between slices, mm.
        field_of_view_mm: width of a slice, mm (pixel spacing = ``field_of_view_mm / size``).

    Returns:
        ``(hu, labels)``: ``hu`` float32 ``(Z, H, W)`` holding integer HU in [-1024, 3071]; ``labels`` a dict:
        ``label`` uint8 ``(Z, H, W)`` codes of :data:`~medsift.synth.lesions.LABEL_MAP` (before blur),
        ``instance`` uint8 ``(Z, H, W)`` blood of lesion ``k`` marked ``k`` (1-based, edema excluded),
        ``lesions`` list of subtype names, one per instance, ``subtypes`` tuple of subtype names,
        bool masks ``head``, ``skull``, ``intracranial``, ``brain`` (parenchyma), ``ventricles``, ``csf``,
        and ``spacing_mm`` ``(slice_thickness, row, column)``.
    """
    from scipy import ndimage

    if size < 32 or n_slices < 1:
        raise ConfigError(f"make_patient needs size >= 32 and n_slices >= 1; got size={size}, n_slices={n_slices}")
    if subtypes is None:
        chosen = sample_subtypes(rng)
    else:
        try:
            chosen = tuple(Subtype(s) for s in subtypes)
        except ValueError:
            raise ConfigError(f"unknown subtype in {list(subtypes)}; valid: {[s.value for s in Subtype]}") from None
    params = sample_anatomy(rng, size=size, n_slices=n_slices, field_of_view_mm=field_of_view_mm,
                            slice_thickness_mm=slice_thickness_mm)
    anatomy = render_anatomy(params, size=size, n_slices=n_slices)
    hu = anatomy.hu.copy()
    label = np.zeros(hu.shape, dtype=np.uint8)
    instance = np.zeros(hu.shape, dtype=np.uint8)
    lesions: list[str] = []
    for subtype in [s for s in PAINT_ORDER if s in chosen]:
        lesion = random_lesion(rng, subtype, anatomy)
        blood = lesion.blood & (label == 0)
        if not blood.any():
            continue
        lesions.append(subtype.value)
        label[blood] = LABEL_MAP[subtype.value]
        instance[blood] = len(lesions)
        hu[blood] = lesion.blood_hu + 2.0 * rng.standard_normal(int(blood.sum()), dtype=np.float32)
        if lesion.edema is not None:
            edema = lesion.edema & (label == 0)
            label[edema] = LABEL_MAP["edema"]
            hu[edema] = lesion.edema_hu + 2.0 * rng.standard_normal(int(edema.sum()), dtype=np.float32)
    # Partial-volume blur and CT noise in one filter: white noise blurred with the image becomes correlated noise.
    gain = 1.0 / np.prod([_kernel_l2(s) for s in BLUR_SIGMA_PX])  # keeps NOISE_HU after the blur
    hu += (NOISE_HU * gain) * rng.standard_normal(hu.shape, dtype=np.float32)
    hu = ndimage.gaussian_filter(hu, sigma=BLUR_SIGMA_PX, mode="nearest", truncate=3.0)
    hu = np.clip(np.rint(hu), HU_MIN, HU_MAX).astype(np.float32)
    labels: dict[str, Any] = {
        "label": label,
        "instance": instance,
        "lesions": lesions,
        "subtypes": tuple(dict.fromkeys(lesions)),
        "head": anatomy.head,
        "skull": anatomy.skull,
        "intracranial": anatomy.intracranial,
        "brain": anatomy.parenchyma,
        "ventricles": anatomy.ventricles,
        "csf": anatomy.csf,
        "spacing_mm": (float(slice_thickness_mm), float(params.spacing_mm), float(params.spacing_mm)),
    }
    return hu, labels
