"""Source-folder layouts, by name in :data:`LAYOUTS`.

A layout is a function ``scan(src: Path, *, labels: Path | None) -> LayoutScan`` that lists the images of a
folder and what names/side files say about them (see :mod:`medsift.formats.layouts.base`).

Example:
    >>> LAYOUTS.get("phe-sich").__name__
    'scan_phe_sich'
"""

from __future__ import annotations

from typing import Callable

from medsift.formats.layouts.base import Candidate, Kind, LayoutScan, Status
from medsift.formats.layouts.dicom_tree import scan_dicom
from medsift.formats.layouts.folder import scan_folder
from medsift.formats.layouts.nifti_volumes import scan_nifti
from medsift.formats.layouts.phe_sich import scan_phe_sich
from medsift.registry import Registry

ScanFn = Callable[..., LayoutScan]

LAYOUTS: Registry[ScanFn] = Registry("layout")
LAYOUTS.register("phe-sich")(scan_phe_sich)
LAYOUTS.register("folder")(scan_folder)
LAYOUTS.register("dicom")(scan_dicom)
LAYOUTS.register("nifti")(scan_nifti)

__all__ = ["LAYOUTS", "Candidate", "Kind", "LayoutScan", "Status", "ScanFn"]
