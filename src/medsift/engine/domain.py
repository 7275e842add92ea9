"""Does a model see inputs like those it was trained on? The intensity domain of its rows, checked at use.

A slice reaches the network either **windowed from HU** (DICOM/NIfTI, or an 8-bit export mapped back to HU
because its display window is known and ``preprocess.rewindow_8bit``/``export_window`` asks for it) or **as
exported** (8-bit grey levels used as they are, in whatever window the exporter chose). The two give different
contrast for the same tissue: a model trained on PHE-SICH PNGs (exported in an unknown, wide window) and given
DICOM slices in the 40/80 brain window sees brighter, harder-edged brains than it ever learnt on, and its scores
shift without any error being raised. Training records the mix (:func:`describe`, in ``model.json``) and
evaluation and prediction compare against it (:func:`domain_warnings`); the warning says what to do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medsift.preprocess.config import PreprocessConfig

HU = "hu"
DISPLAY = "display"
#: a domain is "the training domain" when at least this share of training rows had it
MAJORITY = 0.9


def intensity_domains(df, config: PreprocessConfig) -> np.ndarray:
    """(N,) ``"hu"`` or ``"display"`` per row of ``df``, as the slice cache will treat it under ``config``."""
    from medsift.preprocess.cache import reaches_model_in_hu

    return np.array([HU if reaches_model_in_hu(row, config) else DISPLAY for row in df.to_dict("records")],
                    dtype=object)


def describe(df, config: PreprocessConfig) -> dict[str, Any]:
    """``{"rows", "hu", "display"}``: how many of ``df``'s rows reach the model from HU or as exported."""
    domains = intensity_domains(df, config)
    return {"rows": int(len(domains)), HU: int((domains == HU).sum()), DISPLAY: int((domains == DISPLAY).sum())}


def _majority(counts: dict[str, Any]) -> str | None:
    rows = int(counts.get("rows", 0))
    for name in (HU, DISPLAY):
        if rows and int(counts.get(name, 0)) >= MAJORITY * rows:
            return name
    return None


def domain_warnings(trained: dict[str, Any] | None, df, config: PreprocessConfig) -> list[str]:
    """Sentences for the user when ``df``'s rows reach the model in another intensity domain than most of its
    training rows did (``trained``: :func:`describe` of the training split; older runs have none: no check)."""
    if not trained or not len(df):
        return []
    seen = _majority(trained)
    now = describe(df, config)
    other = DISPLAY if seen == HU else HU
    if seen is None or now[other] == 0:
        return []
    share = f"{now[other]} of {now['rows']} inputs (files or slices)"
    if seen == DISPLAY:
        windows = ", ".join(config.windows)
        return [f"{share} carry HU (DICOM/NIfTI or re-windowed exports) and are windowed ({windows}), "
                f"but this model learnt on 8-bit exports used as they were ({trained[DISPLAY]} of {trained['rows']} "
                f"training slices): the contrast differs and the scores may shift. Retrain with "
                f"preprocess.export_window=[CENTER,WIDTH] (the window the training images were exported in) so both "
                f"reach the model in the same window, or validate on labelled slices of this kind first."]
    return [f"{share} are 8-bit exports with no known window, used as they are, but this model learnt on slices "
            f"windowed from HU ({trained[HU]} of {trained['rows']} training slices): the contrast differs and the "
            f"scores may shift. Give the export window (window_center/window_width columns at ingest, or "
            f"preprocess.export_window) or use the original DICOM/NIfTI."]
