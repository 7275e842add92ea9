"""Readers: pixels of manifest rows and loose files (PNG/JPEG, DICOM, NIfTI) and clinical sheets.

Public API: :func:`load_slice`, :func:`load_mask`, :func:`read_image_file` (in :mod:`medsift.io.slices`);
format helpers live in ``images``, ``dicom``, ``nifti``, ``clinical``.
"""

from medsift.io.slices import load_mask, load_slice, read_image_file

__all__ = ["load_slice", "load_mask", "read_image_file"]
