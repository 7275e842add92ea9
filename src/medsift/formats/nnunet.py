"""nnU-Net v2 raw dataset format: folder and file names, ``dataset.json``, ``splits_final.json``.

Layout (nnU-Net v2 ``documentation/dataset_format.md``)::

    nnUNet_raw/DatasetNNN_Name/
        dataset.json                  channel_names, labels, numTraining, file_ending
        imagesTr/<case>_0000<ending>  one file per input channel (one channel here)
        labelsTr/<case><ending>       integer label map, 0 = background, consecutive labels
        imagesTs/<case>_0000<ending>  optional, not used by nnU-Net training
    nnUNet_preprocessed/DatasetNNN_Name/splits_final.json
                                      [{"train": [case, ...], "val": [case, ...]}, ...] one entry per fold

Images and labels share one ``file_ending`` per dataset and must be losslessly stored
(``.png`` read by NaturalImage2DIO, ``.nii.gz`` by NibabelIO/SimpleITKIO).

Example:
    >>> dataset_folder_name(501, "PHE SICH")
    'Dataset501_PHE-SICH'
    >>> image_file_name("0004_15", ".png")
    '0004_15_0000.png'
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from medsift.errors import ConfigError, FormatError

REQUIRED_DATASET_JSON_KEYS: tuple[str, ...] = ("channel_names", "labels", "numTraining", "file_ending")
FILE_ENDINGS: tuple[str, ...] = (".png", ".bmp", ".tif", ".nii.gz", ".nrrd", ".mha")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def case_identifier(image_id: str) -> str:
    """A file-name-safe case identifier (letters, digits, ``_ . -``; other runs become ``-``)."""
    case = _SAFE.sub("-", str(image_id)).strip("-.")
    if not case:
        raise ConfigError(f"image id {image_id!r} gives an empty nnU-Net case identifier")
    return case


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``DatasetNNN_Name`` with a 3-digit id (1..999) and a file-name-safe name."""
    if not 1 <= int(dataset_id) <= 999:
        raise ConfigError(f"nnU-Net dataset id must be 1..999 (custom datasets: 500+); got {dataset_id!r}")
    clean = _SAFE.sub("-", str(name)).strip("-.")
    if not clean:
        raise ConfigError(f"nnU-Net dataset name {name!r} has no usable characters")
    return f"Dataset{int(dataset_id):03d}_{clean}"


def image_file_name(case: str, file_ending: str, *, channel: int = 0) -> str:
    """``<case>_<XXXX><ending>``: the 4-digit channel id nnU-Net strips to find the case."""
    return f"{case}_{int(channel):04d}{file_ending}"


def label_file_name(case: str, file_ending: str) -> str:
    """``<case><ending>``: the segmentation of one training case."""
    return f"{case}{file_ending}"


def dataset_json(*, channel_names: Mapping[int, str], labels: Mapping[str, int], num_training: int,
                 file_ending: str, name: str | None = None, description: str | None = None,
                 extra: Mapping[str, Any] | None = None) -> dict:
    """The ``dataset.json`` dict nnU-Net v2 requires.

    Args:
        channel_names: ``{channel: name}``; the name picks the normalisation (``CT`` = global HU
            percentile clipping + z-score, ``zscore`` = per-image z-score, ...).
        labels: ``{name: int}`` with ``background`` = 0 and consecutive integers.
        num_training: number of training cases (files in ``labelsTr``).
        file_ending: one of :data:`FILE_ENDINGS` (nnU-Net needs lossless formats).

    Raises:
        FormatError: labels not 0..K consecutive with background 0, unknown file ending, no channels.
    """
    if file_ending not in FILE_ENDINGS:
        raise FormatError(f"nnU-Net file_ending must be one of {FILE_ENDINGS}; got {file_ending!r}")
    if not channel_names:
        raise FormatError("nnU-Net dataset.json needs at least one channel in channel_names")
    values = sorted(int(v) for v in labels.values())
    if labels.get("background") != 0 or values != list(range(len(values))):
        raise FormatError(f"nnU-Net labels must map 'background' to 0 and use consecutive integers; got "
                          f"{dict(labels)}")
    out: dict[str, Any] = {
        "channel_names": {str(int(k)): str(v) for k, v in sorted(channel_names.items())},
        "labels": {str(k): int(v) for k, v in sorted(labels.items(), key=lambda kv: kv[1])},
        "numTraining": int(num_training),
        "file_ending": file_ending,
    }
    if name:
        out["name"] = name
    if description:
        out["description"] = description
    out.update(extra or {})
    return out


def splits_from_folds(case_folds: Mapping[str, int]) -> list[dict[str, list[str]]]:
    """``splits_final.json`` content from ``{case: fold}``: fold k validates on its cases, trains on the rest.

    Raises:
        FormatError: fewer than 2 folds (nothing to train on in a fold).
    """
    folds = sorted({int(f) for f in case_folds.values()})
    if len(folds) < 2:
        raise FormatError(f"cross-validation splits need at least 2 folds; got folds {folds}")
    cases = sorted(case_folds)
    return [{"train": [c for c in cases if int(case_folds[c]) != k],
             "val": [c for c in cases if int(case_folds[c]) == k]} for k in folds]


def split_from_sets(train: Sequence[str], val: Sequence[str]) -> list[dict[str, list[str]]]:
    """``splits_final.json`` content with one fold: the given train and validation cases."""
    overlap = sorted(set(train) & set(val))
    if overlap:
        raise FormatError(f"cases in both train and val: {overlap[:5]}")
    return [{"train": sorted(train), "val": sorted(val)}]
