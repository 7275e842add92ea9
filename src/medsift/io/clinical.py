"""Clinical sheets (CSV/XLSX): one row per patient, joined to the manifest on ``patient_id``.

The patient column is the first of ``patient_id``, ``patientid``, ``patient``, ``patient id``, ``id``,
``case``, ``subject`` (case-insensitive). Ids match exactly first, then after normalising
(trimmed, lower case, leading zeros of numbers dropped: ``"1"`` matches ``"0001"``). Other columns join as
``clinical_<name>`` (lower case, non-alphanumerics as ``_``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from medsift.errors import ConfigError, FormatError

PATIENT_COLUMNS = ("patient_id", "patientid", "patient", "patient id", "patient_no", "id", "case", "subject")


def normalize_id(value: Any) -> str:
    """``" 0001 " -> "1"``, ``"P-007" -> "p-7"``, ``12.0 -> "12"``."""
    text = str(value).strip().lower()
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    return re.sub(r"\d+", lambda m: str(int(m.group())), text)


def read_clinical(path: str | Path) -> pd.DataFrame:
    """Read a sheet (``.csv``/``.tsv``/``.xlsx``/``.xls``) as text columns with a ``patient_id`` column.

    Raises:
        ConfigError: unknown file type or no patient column (message lists the columns found).
        FormatError: the file cannot be parsed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm", ".xls"):
            sheet = pd.read_excel(path, dtype=str)
        elif suffix in (".csv", ".tsv", ".txt"):
            sheet = pd.read_csv(path, dtype=str, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise ConfigError(f"clinical sheet {path.name}: expected .csv, .tsv or .xlsx; got {suffix!r}")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: cannot read clinical sheet ({exc})") from None
    lower = {str(c).strip().lower(): c for c in sheet.columns}
    col = next((lower[n] for n in PATIENT_COLUMNS if n in lower), None)
    if col is None:
        raise ConfigError(f"clinical sheet {path.name} has no patient column; expected one of "
                          f"{list(PATIENT_COLUMNS)}, got {list(sheet.columns)}")
    out = pd.DataFrame({"patient_id": sheet[col].astype(str).str.strip()})
    for c in sheet.columns:
        if c == col or str(c).startswith("Unnamed"):
            continue
        name = "clinical_" + re.sub(r"[^0-9a-z]+", "_", str(c).strip().lower()).strip("_")
        out[name] = sheet[c]
    out = out[out["patient_id"].str.len() > 0]
    duplicated = sorted(out.loc[out["patient_id"].duplicated(), "patient_id"].unique())
    if duplicated:
        raise FormatError(f"clinical sheet {path.name}: patients {duplicated[:10]} have several rows; "
                          f"expected one row per patient")
    return out


def join_clinical(manifest: pd.DataFrame, sheet: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Left-join ``sheet`` (from :func:`read_clinical`) onto ``manifest`` by patient.

    Returns the joined manifest and a report ``{matched_patients, manifest_patients_without_row,
    sheet_rows_without_images, unmatched_sheet_ids}``.
    """
    exact = set(sheet["patient_id"])
    by_norm = {normalize_id(p): p for p in sheet["patient_id"]}
    key = {p: (p if p in exact else by_norm.get(normalize_id(p))) for p in manifest["patient_id"].unique()}
    sheet = sheet.rename(columns={"patient_id": "_clinical_key"})
    joined = manifest.assign(_clinical_key=manifest["patient_id"].map(key))
    joined = joined.merge(sheet, on="_clinical_key", how="left").drop(columns="_clinical_key")
    joined.index = manifest.index
    used = {v for v in key.values() if v is not None}
    unmatched = sorted(exact - used)
    report = {
        "matched_patients": len(used),
        "manifest_patients_without_row": sorted(p for p, v in key.items() if v is None),
        "sheet_rows_without_images": len(unmatched),
        "unmatched_sheet_ids": unmatched[:50],
    }
    return joined, report
