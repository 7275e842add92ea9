"""Label less, trust more: pseudo-label recovery and active-learning label-budget curves on the real PHE-SICH set.

Usage::

    python benchmarks/bench_label.py [--workspace WS] [--repeats 3]   # prints the figures
    python benchmarks/run.py --only label                             # same, into BENCHMARKS.md

Design (cheap on purpose: every point of the curves is one logistic-regression fit, well under a second):

* Data: PHE-SICH ingested and split by patient (``medsift split --test 0.2 --seed 0``: 1909 train+val images,
  486 test images of 17 patients). Slice label ``label_hemorrhage`` (the slice has a VOC box).
* Features (frozen, label-free): :func:`medsift.label.features.image_features` of 64 px brain-window
  thumbnails (HOG + head-intensity histogram, 1781 values), reduced by one PCA to 64 dimensions fitted on
  every image without labels, then standardised.
* Model: L2 logistic regression (C = 0.1); metric: slice ROC AUC on the test split.
* Pseudo-labels: hide the labels of 70% (and 90%) of the train+val patients (one draw per repeat), train on
  the rest,
  then rounds of :func:`medsift.label.pseudo.apply_pseudo_labels` (min-confidence 0.95 and 0.9) on the hidden
  rows + retrain on human + pseudo labels. Recovery = (AUC_pseudo - AUC_30%) / (AUC_100% - AUC_30%).
* Label noise: flip 3% of the train+val labels, rank with :mod:`medsift.label.noise` (cleanlab), count the
  flips found.
* Active learning: start from 20 random labels, add 20 per step chosen by
  :func:`medsift.label.active.rank` (uncertainty, margin, entropy, diversity = k-center greedy on the
  features, random), up to 400 labels; AUC per step, mean over repeats.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "phe-sich-ct-ids"
FIGURES = Path(__file__).resolve().parent / "figures"
DEFAULT_WS = Path(tempfile.gettempdir()) / "lab-ws"
HIDES = (0.7, 0.9)
CONFIDENCES = (0.95, 0.9)
ROUNDS = 3
START, STEP, BUDGET = 20, 20, 400
FLIP = 0.03
STRATEGIES = ("random", "uncertainty", "margin", "entropy", "diversity")


def workspace(path: Path | None) -> Path:
    """A split PHE-SICH workspace: ``path``, else /tmp/lab-ws when it exists, else ingested there."""
    from medsift.ingest import ingest
    from medsift.split import assign_splits
    from medsift.workspace import Workspace

    ws = Workspace.at(path or DEFAULT_WS)
    if ws.exists() and ws.read()["split"].notna().any():
        return ws.root
    if not DATA.is_dir():
        raise SystemExit(f"real data not found at {DATA}")
    ingest(DATA, layout="phe-sich", workspace=ws.root, n_jobs=2)
    ws.write(assign_splits(ws.read(), test=0.2, seed=0), reason="bench_label split")
    return ws.root


def features(ws_root: Path):
    """(x (N, 64) standardised PCA features, y (N,), is_test (N,), df) of the active labelled rows."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from medsift.label.features import image_features
    from medsift.manifest import active
    from medsift.workspace import Workspace

    df = active(Workspace.at(ws_root).read())
    df = df[df["label_hemorrhage"].notna()].reset_index(drop=True)
    raw = image_features(ws_root, df, size=64)
    x = PCA(64, random_state=0).fit_transform(StandardScaler().fit_transform(raw))
    x = StandardScaler().fit_transform(x)
    return x, df["label_hemorrhage"].to_numpy(dtype=int), (df["split"] == "test").to_numpy(), df


def fit_auc(x, y, train, test) -> tuple[float, object]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    model = LogisticRegression(C=0.1, max_iter=2000).fit(x[train], y[train])
    return float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1])), model


def pseudo_benchmark(x, y, is_test, df, *, hide: float, seed: int) -> dict:
    """AUC with 100% labels, with the labels of a ``hide`` share of the pool's patients hidden, and per
    pseudo-label round on the hidden rows, for each min-confidence."""
    import pandas as pd

    from medsift.label.features import is_pseudo
    from medsift.label.pseudo import apply_pseudo_labels

    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(~is_test)
    test = np.flatnonzero(is_test)
    full, _ = fit_auc(x, y, pool, test)
    patients = df["patient_id"].astype(str).to_numpy()
    names = np.unique(patients[pool])
    hidden_patients = rng.choice(names, size=int(round(hide * len(names))), replace=False)
    hidden = pool[np.isin(patients[pool], hidden_patients)]
    known = np.setdiff1d(pool, hidden)
    partial, model0 = fit_auc(x, y, known, test)
    base = df.copy()
    base["split"] = np.where(is_test, "test", "train")
    base.loc[hidden, "label_hemorrhage"] = pd.NA
    out = {"hide": hide, "full": full, "partial": partial, "n_known": int(len(known)), "n_hidden": int(len(hidden))}
    for conf in CONFIDENCES:
        cur, model, aucs, counts, precision = base, model0, [], [], []
        for r in range(1, ROUNDS + 1):
            probs = model.predict_proba(x[hidden])[:, 1:2]
            cur, added = apply_pseudo_labels(cur, cur["image_id"].iloc[hidden].tolist(), probs, ("hemorrhage",),
                                             min_confidence=conf, round_=r)
            ps = np.flatnonzero(is_pseudo(cur))
            yy = y.copy()
            yy[ps] = cur["label_hemorrhage"].iloc[ps].to_numpy(dtype=int)
            auc, model = fit_auc(x, yy, np.concatenate([known, ps]), test)
            aucs.append(auc)
            counts.append(int(added))
            precision.append(float((yy[ps] == y[ps]).mean()) if len(ps) else float("nan"))
        out[f"conf{conf}"] = {"auc": aucs, "added": counts, "pseudo_accuracy": precision}
    return out


def active_benchmark(x, y, is_test, *, seed: int) -> dict[str, list[float]]:
    """Test AUC after each labelling step, per strategy (same 20-image start for every strategy)."""
    from medsift.label.active import rank

    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(~is_test)
    test = np.flatnonzero(is_test)
    while True:
        start = rng.choice(pool, size=START, replace=False)
        if len(np.unique(y[start])) == 2:
            break
    curves: dict[str, list[float]] = {}
    for strategy in STRATEGIES:
        labelled = list(start)
        aucs = []
        srng = np.random.default_rng(seed + 1000)
        while True:
            auc, model = fit_auc(x, y, np.asarray(labelled), test)
            aucs.append(auc)
            if len(labelled) >= BUDGET:
                break
            cand = np.setdiff1d(pool, labelled)
            probs = model.predict_proba(x[cand])[:, 1:2]
            order, _ = rank(probs, strategy=strategy, n=STEP, embeddings=x[cand], labelled_embeddings=x[labelled],
                            rng=srng)
            labelled.extend(cand[order].tolist())
        curves[strategy] = aucs
    return curves


def noise_benchmark(x, y, is_test, df, *, seed: int, flip: float = FLIP) -> dict:
    """Flip ``flip`` of the train+val labels at random, rank label issues (out-of-fold logistic regression by
    patient fold + cleanlab) and score how many flips are found."""
    from medsift.label.noise import fold_splits, out_of_fold_probs, rank_label_issues

    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(~is_test)
    flipped = rng.choice(len(pool), size=int(round(flip * len(pool))), replace=False)
    y_noisy = y[pool].copy()
    y_noisy[flipped] = 1 - y_noisy[flipped]
    groups = df["patient_id"].astype(str).to_numpy()[pool]
    probs = out_of_fold_probs(x[pool], y_noisy, fold_splits(y_noisy, groups, None, n_splits=5, seed=seed))
    ranked = rank_label_issues(y_noisy, probs)
    flagged = set(ranked.loc[ranked["is_issue"], "position"].tolist())
    top = set(ranked["position"].iloc[:len(flipped)].tolist())
    truth = set(flipped.tolist())
    return {"n_flipped": len(truth), "n_flagged": len(flagged),
            "recall": len(truth & flagged) / len(truth), "precision": len(truth & flagged) / max(len(flagged), 1),
            "precision_at_k": len(truth & top) / len(truth)}


def plot_pseudo(results: dict[float, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4), dpi=110, squeeze=False)
    rounds = np.arange(0, ROUNDS + 1)
    for ax, (hide, res) in zip(axes[0], results.items()):
        full = np.mean([r["full"] for r in res])
        partial = np.mean([r["partial"] for r in res])
        kept = int(round(100 * (1 - hide)))
        ax.axhline(full, color="k", ls="--", label=f"100% labels ({full:.3f})")
        for conf, color in zip(CONFIDENCES, ("tab:blue", "tab:orange")):
            curve = np.array([[r["partial"]] + r[f"conf{conf}"]["auc"] for r in res])
            m = curve.mean(0)
            ax.errorbar(rounds, m, yerr=[m - curve.min(0), curve.max(0) - m], marker="o", color=color, capsize=3,
                        label=f"{kept}% + pseudo, min-conf {conf}")
        ax.axhline(partial, color="gray", ls=":", label=f"{kept}% labels only ({partial:.3f})")
        ax.set_xlabel(f"pseudo-label round (0 = {kept}% of patients labelled)")
        ax.set_ylabel("test slice ROC AUC")
        ax.set_xticks(rounds)
        ax.set_title(f"labels of {int(hide * 100)}% of train patients hidden", fontsize=10)
        ax.legend(fontsize=7, loc="center right")
    fig.suptitle("PHE-SICH pseudo-labels (thumbnail features + logistic regression; mean, bars = min..max)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def plot_active(curves: list[dict[str, list[float]]], full: float, n_all: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    n = START + STEP * np.arange(len(curves[0]["random"]))
    styles = {"random": ("k", "-"), "uncertainty": ("tab:red", "-"), "margin": ("tab:purple", "--"),
              "entropy": ("tab:orange", ":"), "diversity": ("tab:green", "-")}
    for s in STRATEGIES:
        c = np.array([cv[s] for cv in curves])
        color, ls = styles[s]
        ax.plot(n, c.mean(0), color=color, ls=ls, label=s)
        if s in ("random", "uncertainty", "diversity") and len(c) > 1:
            ax.fill_between(n, c.min(0), c.max(0), color=color, alpha=0.12)
    ax.axhline(full, color="gray", ls="--", label=f"all {n_all} labels ({full:.3f})")
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test slice ROC AUC")
    ax.set_title("PHE-SICH label-budget curve\n(thumbnail features + logistic regression; mean, band = min..max)",
                 fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)



def labels_to_reach(n: np.ndarray, curve: np.ndarray, target: float) -> float:
    """First label count whose AUC reaches ``target`` (nan if never within the budget)."""
    hit = np.flatnonzero(curve >= target)
    return float(n[hit[0]]) if len(hit) else float("nan")


def run(*, repeats: int = 3, ws: Path | None = None) -> dict:
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    root = workspace(ws)
    x, y, is_test, df = features(root)
    t_feat = time.perf_counter() - t0
    pseudo = {h: [pseudo_benchmark(x, y, is_test, df, hide=h, seed=s) for s in range(repeats)] for h in HIDES}
    t_pseudo = time.perf_counter() - t0 - t_feat
    active = [active_benchmark(x, y, is_test, seed=s) for s in range(repeats)]
    t_active = time.perf_counter() - t0 - t_feat - t_pseudo
    noise = [noise_benchmark(x, y, is_test, df, seed=s) for s in range(repeats)]
    t_noise = time.perf_counter() - t0 - t_feat - t_pseudo - t_active
    load1 = os.getloadavg()[0]
    plot_pseudo(pseudo, FIGURES / "label_pseudo.png")
    full = float(np.mean([r["full"] for r in pseudo[HIDES[0]]]))
    plot_active(active, full, int((~is_test).sum()), FIGURES / "label_active.png")

    rows = [{"metric": "test AUC, 100% train labels", "value": full, "unit": "AUC", "target": "reference"}]
    for hide, res in pseudo.items():
        kept = f"{int(round(100 * (1 - hide)))}%"
        partial = [r["partial"] for r in res]
        rows.append({"metric": f"test AUC, {kept} of patients labelled", "value": float(np.mean(partial)),
                     "unit": "AUC", "target": "", "runs": partial})
        for conf in CONFIDENCES:
            final = [r[f"conf{conf}"]["auc"][-1] for r in res]
            rec = [(f - r["partial"]) / (r["full"] - r["partial"]) for f, r in zip(final, res)]
            rows += [
                {"metric": f"test AUC, {kept} + pseudo (min-conf {conf}, round {ROUNDS})",
                 "value": float(np.mean(final)), "unit": "AUC", "target": f"> {kept}-label AUC", "runs": final},
                {"metric": f"recovered share of the {kept}->100% gap (min-conf {conf}, round {ROUNDS})",
                 "value": float(np.mean(rec)), "unit": "fraction", "target": "> 0", "runs": rec},
                {"metric": f"pseudo labels in round {ROUNDS}, {kept} labelled (min-conf {conf})",
                 "value": float(np.mean([r[f"conf{conf}"]["added"][-1] for r in res])), "unit": "images",
                 "target": f"of ~{int(np.mean([r['n_hidden'] for r in res]))} hidden"},
                {"metric": f"pseudo-label accuracy vs hidden truth, {kept} labelled (min-conf {conf})",
                 "value": float(np.mean([r[f"conf{conf}"]["pseudo_accuracy"][-1] for r in res])),
                 "unit": "fraction", "target": ""},
            ]
    n = START + STEP * np.arange(len(active[0]["random"]))
    for s in STRATEGIES:
        c = np.array([cv[s] for cv in active]).mean(0)
        for k in (100, 200, 400):
            rows.append({"metric": f"active: AUC at {k} labels, {s}", "value": float(c[n == k][0]), "unit": "AUC",
                         "target": "> random" if s != "random" else "baseline",
                         "runs": [float(np.asarray(cv[s])[n == k][0]) for cv in active]})
        rows.append({"metric": f"active: labels to reach 98% of full AUC, {s}",
                     "value": labels_to_reach(n, c, 0.98 * full), "unit": "images",
                     "target": f"budget {BUDGET}; nan = not reached"})
    for key, what in (("recall", "share of injected flips flagged by cleanlab"),
                      ("precision", "share of flagged rows that are injected flips"),
                      ("precision_at_k", "injected flips among the k lowest label-quality rows (k = n flips)")):
        rows.append({"metric": f"label noise ({int(FLIP * 100)}% labels flipped): {what}",
                     "value": float(np.mean([r[key] for r in noise])), "unit": "fraction", "target": "",
                     "runs": [r[key] for r in noise]})
    rows.append({"metric": "label noise: rows flagged", "value": float(np.mean([r["n_flagged"] for r in noise])),
                 "unit": "images", "target": f"{noise[0]['n_flipped']} flipped of {int((~is_test).sum())}"})
    rows += [
        {"metric": "feature extraction (thumbnails cached) + PCA", "value": t_feat, "unit": "s", "target": ""},
        {"metric": "pseudo-label benchmark", "value": t_pseudo, "unit": "s", "target": ""},
        {"metric": "active-learning benchmark", "value": t_active, "unit": "s", "target": ""},
        {"metric": "label-noise benchmark", "value": t_noise, "unit": "s", "target": ""},
        {"metric": "1-min load average (start, end)", "value": f"{load0:.1f}, {load1:.1f}", "unit": "",
         "target": "shared 2-core machine"},
    ]
    notes = (
        "Cheap design, stated: frozen label-free features (64 px brain-window thumbnails -> HOG + head histogram "
        "-> PCA 64, PCA fitted on all images without labels) + L2 logistic regression (C=0.1); no CNN is "
        "trained, so every curve point is one sub-second fit. Test = 486 slices of the 20% patient-level test "
        "split (`medsift split --test 0.2 --seed 0`); train pool = train+val (1909 slices). "
        "Pseudo-labels: the labels of 70% (and 90%) of the pool's patients hidden (random patients per repeat; "
        "hiding random slices instead leaves neighbouring slices labelled and 30% of slices already reach the "
        "full-label AUC with this model), "
        "`apply_pseudo_labels` on the hidden rows (never on human labels), retrain on human + pseudo labels, "
        f"{ROUNDS} rounds. Active learning: {START} random start labels, +{STEP} per step up to {BUDGET}; "
        "for one label, uncertainty, margin and entropy give the same order (monotone in |p-0.5|) so their "
        "curves coincide; diversity = k-center greedy on the PCA features. "
        f"Label noise: {int(FLIP * 100)}% of the pool's labels flipped at random, out-of-fold probabilities "
        "(5 stratified patient-group folds, same features and model) ranked by cleanlab `find_label_issues` "
        "(prune_by_noise_rate) and self-confidence; note that the pool already holds real label errors, so "
        "'precision' counts only the injected ones. "
        f"{repeats} repeats (seeds 0..{repeats - 1}); values are means, runs listed per seed. "
        "Measured while ~8 engineers shared the 2 cores (load average in the table), run with `nice`.")
    return {"title": "Label less: pseudo-labels and active learning (PHE-SICH)",
            "command": "nice python benchmarks/run.py --only label",
            "data": f"PHE-SICH ({len(df)} labelled slices, 83 patients), workspace {root}",
            "rows": rows, "notes": notes,
            "figures": ["benchmarks/figures/label_pseudo.png", "benchmarks/figures/label_active.png"],
            "raw": {"pseudo": {str(h): r for h, r in pseudo.items()}, "active": active, "active_n": n.tolist()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    res = run(repeats=args.repeats, ws=args.workspace)
    for row in res["rows"]:
        v = row["value"]
        print(f"{row['metric']:75s} {v:.4g}" if isinstance(v, float) else f"{row['metric']:75s} {v}", row["unit"])


if __name__ == "__main__":
    main()
