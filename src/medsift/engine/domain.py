"""Does a model see inputs like those it was trained on? Intensity domain and scale, checked at use.

A slice reaches the network either **windowed from HU** (DICOM/NIfTI, or an 8-bit export mapped back to HU
because its display window is known and ``preprocess.rewindow_8bit``/``export_window`` asks for it) or **as
exported** (8-bit grey levels used as they are, in whatever window the exporter chose). The two give different
contrast for the same tissue: a model trained on PHE-SICH PNGs (exported in an unknown, wide window) and given
DICOM slices in the 40/80 brain window sees brighter, harder-edged brains than it ever learnt on, and its scores
shift without any error being raised. Scale likewise: a wider field of view puts more mm in each model
pixel, so lesions look smaller than in training. Training records both (:func:`describe`,
in ``model.json``) and evaluation and prediction compare against them (:func:`domain_warnings`); each warning
says what to do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medsift.preprocess.config import PreprocessConfig

HU = "hu"
DISPLAY = "display"
#: a domain is "the training domain" when at least this share of training rows had it
MAJORITY = 0.9
#: model-pixel sizes (mm) of inputs and training further apart than this factor are flagged
SCALE_TOLERANCE = 1.25


def intensity_domains(df, config: PreprocessConfig) -> np.ndarray:
    """(N,) ``"hu"`` or ``"display"`` per row of ``df``, as the slice cache will treat it under ``config``."""
    from medsift.preprocess.cache import reaches_model_in_hu

    return np.array([HU if reaches_model_in_hu(row, config) else DISPLAY for row in df.to_dict("records")],
                    dtype=object)


def pixel_size_mm(df, config: PreprocessConfig) -> float | None:
    """Median mm per model pixel over ``df``'s rows with a known spacing (the source spacing scaled by the
    resize to ``config.size``), or None when no row knows its spacing or ``crop_head`` sets the scale instead."""
    from medsift.preprocess.resample import median_cached_spacing_mm

    if config.crop_head or not len(df):
        return None
    return median_cached_spacing_mm(df, int(config.size))


def describe(df, config: PreprocessConfig) -> dict[str, Any]:
    """``{"rows", "hu", "display", "mm_per_px"}``: how many of ``df``'s rows reach the model from HU or as
    exported, and the median size of a model pixel in mm (None when unknown)."""
    domains = intensity_domains(df, config)
    return {"rows": int(len(domains)), HU: int((domains == HU).sum()), DISPLAY: int((domains == DISPLAY).sum()),
            "mm_per_px": pixel_size_mm(df, config)}


def _majority(counts: dict[str, Any]) -> str | None:
    rows = int(counts.get("rows", 0))
    for name in (HU, DISPLAY):
        if rows and int(counts.get(name, 0)) >= MAJORITY * rows:
            return name
    return None


def domain_warnings(trained: dict[str, Any] | None, df, config: PreprocessConfig) -> list[str]:
    """Sentences for the user when ``df``'s rows reach the model in another intensity domain, or at another
    scale, than most of its training rows did (``trained``: :func:`describe` of the training split; older runs
    have none: no check)."""
    if not trained or not len(df):
        return []
    now = describe(df, config)
    return [w for w in (_intensity_warning(trained, now, config), _scale_warning(trained, now)) if w]


def _intensity_warning(trained: dict[str, Any], now: dict[str, Any], config: PreprocessConfig) -> str | None:
    seen = _majority(trained)
    other = DISPLAY if seen == HU else HU
    if seen is None or now[other] == 0:
        return None
    share = f"{now[other]} of {now['rows']} inputs (files or slices)"
    if seen == DISPLAY:
        windows = ", ".join(config.windows)
        return (f"{share} carry HU (DICOM/NIfTI or re-windowed exports) and are windowed ({windows}), "
                f"but this model learnt on 8-bit exports used as they were ({trained[DISPLAY]} of {trained['rows']} "
                f"training slices): the contrast differs and the scores may shift. Retrain with "
                f"preprocess.export_window=[CENTER,WIDTH] (the window the training images were exported in) so both "
                f"reach the model in the same window, or validate on labelled slices of this kind first.")
    return (f"{share} are 8-bit exports with no known window, used as they are, but this model learnt on slices "
            f"windowed from HU ({trained[HU]} of {trained['rows']} training slices): the contrast differs and the "
            f"scores may shift. Give the export window (window_center/window_width columns at ingest, or "
            f"preprocess.export_window) or use the original DICOM/NIfTI.")


def _scale_warning(trained: dict[str, Any], now: dict[str, Any]) -> str | None:
    seen, mm = trained.get("mm_per_px"), now.get("mm_per_px")
    if not seen or not mm or 1.0 / SCALE_TOLERANCE <= mm / seen <= SCALE_TOLERANCE:
        return None
    return (f"a model pixel covers {mm:.2f} mm on these inputs (median) but {seen:.2f} mm on the training slices: "
            f"anatomy and lesions appear {seen / mm:.2f} times their training size (another field of view or "
            f"matrix). Scores may shift; preprocess.crop_head brings every head to one scale.")
