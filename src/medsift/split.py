"""Patient-level splits: stratified train/val/test and cross-validation folds, and the leakage check.

The unit is the patient, never the image: a random split by image puts one patient's neighbouring slices in
train and validation and inflates every metric. Patients linked by a near-duplicate pair (from the audit) are
merged into one group first, so a duplicate never straddles two splits.

Procedure of :func:`assign_splits` (all draws from ``numpy.random.default_rng(seed)`` / sklearn
``random_state=seed``):

1. Active rows only (``status == "ok"`` and not ``excluded``); other rows get empty ``split``/``fold``.
2. Groups = patients, merged through ``duplicate_pairs`` (connected components).
3. Each group gets a stratum: for a ``label_*`` column, 1 if any of its slices is positive (unknown counts
   as negative), positive groups further split into ``bins`` quantile bins of their positive-slice share;
   for another column, its most common value.
4. ``test`` then ``val`` fractions of the groups are drawn inside each stratum (largest-remainder rounding,
   so every stratum keeps its share).
5. ``fold`` 0..folds-1 is given to the non-test groups (train and val) with sklearn ``StratifiedKFold`` on
   the group table.

Example:
    >>> df = assign_splits(manifest, test=0.2, val=0.1, folds=5, seed=0)  # doctest: +SKIP
    >>> check_leakage(df)                                                  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from medsift.errors import ConfigError, LeakageError
from medsift.manifest import LABEL_PREFIX, SPLITS, STATUS_OK

DUPLICATE_CHECK = "duplicate"


def active_mask(df: pd.DataFrame) -> np.ndarray:
    """bool (N,): rows that take part in splits (status ok and not excluded)."""
    ok = df["status"].astype("string").fillna("") == STATUS_OK if "status" in df.columns else pd.Series(True, index=df.index)
    excl = df["excluded"].astype("boolean").fillna(False) if "excluded" in df.columns else pd.Series(False, index=df.index)
    return (ok & ~excl).to_numpy(dtype=bool)


def duplicate_pairs_from_findings(findings: pd.DataFrame) -> list[tuple[str, str]]:
    """``(image_id, related_id)`` pairs of the audit findings with ``check == "duplicate"``.

    Args:
        findings: table with columns image_id, check, related_id (``WS/audit/findings.csv``).
    """
    needed = {"image_id", "check", "related_id"}
    if not needed <= set(findings.columns):
        raise ConfigError(f"findings table needs columns {sorted(needed)}; got {sorted(findings.columns)}")
    dup = findings[(findings["check"].astype(str) == DUPLICATE_CHECK) & findings["related_id"].notna()]
    dup = dup[dup["related_id"].astype(str).str.len() > 0]
    return [(str(a), str(b)) for a, b in zip(dup["image_id"], dup["related_id"])]


def patient_groups(df: pd.DataFrame, duplicate_pairs: Iterable[tuple[str, str]] | None = None) -> pd.Series:
    """Group id per row: patients linked through duplicate pairs share one group.

    Returns:
        Series of group names (the smallest patient_id of the group), indexed like ``df``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    patients = df["patient_id"].astype(str)
    names = np.array(sorted(patients.unique()))
    code = {p: i for i, p in enumerate(names)}
    pid_of = dict(zip(df["image_id"].astype(str), patients))
    a_idx, b_idx = [], []
    for a, b in duplicate_pairs or ():
        pa, pb = pid_of.get(str(a)), pid_of.get(str(b))
        if pa is not None and pb is not None and pa != pb:
            a_idx.append(code[pa])
            b_idx.append(code[pb])
    graph = coo_matrix((np.ones(len(a_idx)), (a_idx, b_idx)), shape=(len(names), len(names)))
    _, comp = connected_components(graph, directed=False)
    first = pd.Series(names).groupby(comp).transform("min").to_numpy()
    return patients.map(dict(zip(names, first)))


def _group_strata(df: pd.DataFrame, groups: pd.Series, stratify: str | None, bins: int) -> tuple[pd.Series, pd.Series]:
    """(fine, coarse) stratum per group. Coarse: any positive slice (label column) or the most common value;
    fine: positive groups further cut into ``bins`` quantile bins of their positive-slice fraction."""
    if stratify is None:
        zero = pd.Series("0", index=pd.Index(sorted(groups.unique())))
        return zero, zero
    if stratify not in df.columns:
        raise ConfigError(f"stratify column {stratify!r} is not in the manifest; label columns: "
                          f"{[c for c in df.columns if c.startswith(LABEL_PREFIX)]}")
    if stratify.startswith(LABEL_PREFIX):
        pos = pd.to_numeric(df[stratify], errors="coerce").fillna(0).astype(float) > 0
        frac = pos.groupby(groups.to_numpy()).mean().sort_index()
        coarse = (frac > 0).astype(int).astype(str)
        fine = coarse.copy()
        positive = frac[frac > 0]
        if bins > 1 and len(positive) >= 2 * bins:
            cut = pd.qcut(positive.rank(method="first"), q=bins, labels=False)
            fine.loc[positive.index] = "1." + cut.astype(int).astype(str)
        return fine, coarse
    values = df[stratify].astype(str)
    mode = values.groupby(groups.to_numpy()).agg(lambda v: v.value_counts().index[0]).sort_index()
    return mode, mode


def _stratified_take(strata: pd.Series, fraction: float, n_total: int, rng: np.random.Generator) -> set:
    """Draw ``round(fraction * n_total)`` groups, each stratum contributing its share (largest remainder)."""
    want = int(round(fraction * n_total))
    if want == 0 or len(strata) == 0:
        return set()
    counts = strata.value_counts().sort_index()
    exact = counts.to_numpy() * want / len(strata)
    take = np.floor(exact).astype(int)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: want - int(take.sum())]] += 1
    chosen: set = set()
    for value, k in zip(counts.index, take):
        members = np.array(sorted(strata.index[strata.to_numpy() == value]))
        chosen.update(rng.permutation(members)[: min(k, len(members))].tolist())
    return chosen


def assign_splits(df: pd.DataFrame, *, test: float = 0.2, val: float = 0.1, folds: int = 5,
                  stratify: str | None = "label_hemorrhage", seed: int = 0,
                  duplicate_pairs: Iterable[tuple[str, str]] | None = None, bins: int = 3) -> pd.DataFrame:
    """Assign ``split`` (train/val/test) and ``fold`` per patient group.

    Args:
        df: manifest.
        test: fraction of patient groups held out as test (0..1).
        val: fraction of patient groups held out as validation (0..1), drawn after test.
        folds: cross-validation folds over the non-test groups (``fold`` 0..folds-1; 0 or 1 = no folds).
        stratify: column to stratify on (a ``label_*`` column is summarised as "any positive slice"), or None.
        seed: seed of every random draw.
        duplicate_pairs: ``(image_id, image_id)`` near-duplicates; their patients are kept together.
        bins: positive groups are also stratified by ``bins`` quantile bins of their share of positive slices
            (keeps the slice-level balance too, e.g. when every patient is positive); 1 = off. Used when
            there are at least ``2 * bins`` positive groups.

    Returns:
        A copy of ``df`` with ``split`` and ``fold`` filled for active rows and empty for the others.
    """
    if not (0 <= test < 1 and 0 <= val < 1 and test + val < 1):
        raise ConfigError(f"test and val must be fractions in [0, 1) with test + val < 1; got test={test!r}, "
                          f"val={val!r}")
    if folds < 0:
        raise ConfigError(f"folds must be >= 0; got {folds!r}")
    out = df.copy()
    out["split"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out["fold"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    act = active_mask(out)
    rows = out[act]
    if rows.empty:
        return out
    groups = patient_groups(rows, duplicate_pairs)
    strata, coarse = _group_strata(rows, groups, stratify, bins)
    rng = np.random.default_rng(seed)
    n = len(strata)
    test_groups = _stratified_take(strata, test, n, rng)
    rest = strata[~strata.index.isin(list(test_groups))]
    val_groups = _stratified_take(rest, val, n, rng)
    split_of = {g: ("test" if g in test_groups else "val" if g in val_groups else "train") for g in strata.index}
    out.loc[act, "split"] = groups.map(split_of).to_numpy()
    if folds >= 2:
        fold_of = _folds(rest, coarse[rest.index], folds, seed)
        out.loc[act, "fold"] = pd.array(groups.map(fold_of).to_numpy(), dtype="Int64")
    return out


def _folds(fine: pd.Series, coarse: pd.Series, folds: int, seed: int) -> dict:
    """Fold per group: StratifiedKFold on the fine strata, else the coarse ones, else plain KFold (when a
    stratum has fewer groups than folds)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if len(fine) < folds:
        raise ConfigError(f"{folds} folds need at least {folds} non-test patient groups; got {len(fine)}")
    names = fine.index.to_numpy()
    splitter = None
    for strata in (fine, coarse):
        if strata.value_counts().min() >= folds:
            y = strata.astype(str).to_numpy()
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(names, y)
            break
    if splitter is None:
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed).split(names)
    fold_of = {}
    for k, (_, held) in enumerate(splitter):
        fold_of.update({names[i]: k for i in held})
    return fold_of


def check_leakage(df: pd.DataFrame, *, duplicate_pairs: Iterable[tuple[str, str]] | None = None) -> None:
    """Fail loudly when a patient, or a near-duplicate pair, sits in two splits (or two folds).

    Args:
        df: manifest with ``split`` (and ``fold``); rows with an empty split are ignored.
        duplicate_pairs: ``(image_id, image_id)`` pairs that must share a split.

    Raises:
        LeakageError: names the patients / pairs and the splits they sit in.
    """
    assigned = df[df["split"].notna()]
    problems: list[str] = []
    for col in ("split", "fold"):
        if col not in assigned.columns:
            continue
        sub = assigned[assigned[col].notna()]
        per = sub.groupby(sub["patient_id"].astype(str))[col].agg(lambda v: sorted(set(map(str, v))))
        bad = per[per.map(len) > 1]
        if len(bad):
            listed = ", ".join(f"{p} in {v}" for p, v in list(bad.items())[:10])
            problems.append(f"{len(bad)} patient(s) in more than one {col}: {listed}")
    if duplicate_pairs:
        split_of = dict(zip(assigned["image_id"].astype(str), assigned["split"].astype(str)))
        bad_pairs = [(a, b, split_of[str(a)], split_of[str(b)]) for a, b in duplicate_pairs
                     if str(a) in split_of and str(b) in split_of and split_of[str(a)] != split_of[str(b)]]
        if bad_pairs:
            listed = ", ".join(f"{a} ({sa}) ~ {b} ({sb})" for a, b, sa, sb in bad_pairs[:10])
            problems.append(f"{len(bad_pairs)} near-duplicate pair(s) across splits: {listed}")
    if problems:
        raise LeakageError("split leakage: " + "; ".join(problems) + ". Re-run `medsift split` (patient-level).")


def split_balance(df: pd.DataFrame, *, label: str | None = "label_hemorrhage",
                  splits: Sequence[str] = SPLITS) -> pd.DataFrame:
    """Class balance per split (plus ``all``) over rows with a split.

    Returns:
        DataFrame indexed by split (train, val, test, all) with patients, images, and for ``label``:
        pos_images, pct_pos_images, pos_patients, pct_pos_patients (percent, 0..100).
    """
    assigned = df[df["split"].notna()]
    parts = [(s, assigned[assigned["split"] == s]) for s in splits] + [("all", assigned)]
    records = []
    for name, part in parts:
        rec = {"split": name, "patients": int(part["patient_id"].nunique()), "images": int(len(part))}
        if label is not None and label in part.columns:
            pos = pd.to_numeric(part[label], errors="coerce").fillna(0) > 0
            pos_pat = pos.groupby(part["patient_id"].astype(str).to_numpy()).any()
            rec.update({
                "pos_images": int(pos.sum()),
                "pct_pos_images": 100.0 * float(pos.mean()) if len(part) else float("nan"),
                "pos_patients": int(pos_pat.sum()),
                "pct_pos_patients": 100.0 * float(pos_pat.mean()) if len(pos_pat) else float("nan"),
            })
        records.append(rec)
    return pd.DataFrame(records).set_index("split")
