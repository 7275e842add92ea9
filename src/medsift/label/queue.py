"""The labelling queue of ``medsift queue``: candidates ranked by an active-learning strategy, written as a CSV,
a findings-style CSV the review page reads, an id list, and a self-contained HTML gallery.

Files written into the run folder (``<s>`` = strategy)::

    RUN/queue-<s>.csv            rank, image_id, patient_id, split, score, prob_<label>..., label_source
    RUN/queue-<s>.findings.csv   image_id, check (= active_<s>), severity (info), score, detail, related_id
    RUN/queue-<s>.ids.txt        one image_id per line, best first
    RUN/queue-<s>.html           thumbnails (base64 PNG) with id, score and probabilities
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from medsift.errors import ConfigError
from medsift.label.active import Pool, Strategy, rank
from medsift.label.features import is_pseudo, known_labels
from medsift.manifest import atomic_write_bytes

FINDING_COLUMNS: tuple[str, ...] = ("image_id", "check", "severity", "score", "detail", "related_id")


def pool_mask(df: pd.DataFrame, labels, pool: Pool | str) -> np.ndarray:
    """(N,) bool: rows that are candidates under ``pool`` (unlabelled = some label unknown)."""
    try:
        pool = Pool(pool)
    except ValueError:
        raise ConfigError(f"pool must be one of {[p.value for p in Pool]}; got {pool!r}") from None
    if pool is Pool.ALL:
        return np.ones(len(df), dtype=bool)
    unknown = np.isnan(known_labels(df, labels)).any(axis=1)
    return unknown | is_pseudo(df) if pool is Pool.DOUBTFUL else unknown


def build_queue(run: str | Path, workspace: str | Path, *, strategy: Strategy | str, n: int = 50,
                pool: Pool | str = Pool.DOUBTFUL, seed: int = 0, device: str | None = None) -> pd.DataFrame:
    """Rank ``workspace``'s candidate rows with ``run``'s model; the ``n`` best as a table (rank 1 = first).

    ``diversity`` covers the run's CNN embedding space around the rows that are already labelled.

    Raises:
        ConfigError: no candidate row in the pool.
    """
    from medsift.label.features import run_outputs
    from medsift.manifest import active
    from medsift.workspace import Workspace

    ws = Workspace.at(workspace)
    df = active(ws.read())
    meta = Path(run) / "model.json"
    if not meta.is_file():
        raise ConfigError(f"{run} is not a finished medsift run (no model.json); train it with `medsift train`")
    labels = tuple(json.loads(meta.read_text())["labels"])
    cand = pool_mask(df, labels, pool)
    if not cand.any():
        raise ConfigError(f"no candidate rows in pool {Pool(pool).value!r} of {ws.root} ({len(df)} active rows); "
                          f"try --pool all")
    strategy = Strategy(strategy)
    need_labelled = strategy is Strategy.DIVERSITY
    rows = df if need_labelled else df[cand]
    out = run_outputs(run, ws.root, rows, device=device)
    sel = cand if need_labelled else np.ones(len(rows), dtype=bool)
    probs, emb = out.probs[sel], out.embeddings[sel]
    lab_emb = out.embeddings[~cand] if need_labelled else None
    order, score = rank(probs, strategy=strategy, n=n, embeddings=emb, labelled_embeddings=lab_emb,
                        rng=np.random.default_rng(seed))
    picked = rows[sel].iloc[order]
    table = pd.DataFrame({"rank": np.arange(1, len(order) + 1), "image_id": picked["image_id"].astype(str).to_numpy(),
                          "patient_id": picked["patient_id"].astype(str).to_numpy(),
                          "split": picked["split"].astype("string").fillna("").to_numpy(),
                          "score": np.round(score, 6)})
    for k, name in enumerate(out.labels):
        table[f"prob_{name}"] = np.round(probs[order, k], 6)
    table["label_source"] = picked["label_source"].astype("string").fillna("").to_numpy()
    table.attrs.update({"strategy": strategy.value, "labels": list(out.labels)})
    return table


def queue_findings(table: pd.DataFrame, *, strategy: Strategy | str) -> pd.DataFrame:
    """The queue as findings rows (check ``active_<strategy>``, severity ``info``) for the review page."""
    strategy = Strategy(strategy)
    probs = [c for c in table.columns if c.startswith("prob_")]
    detail = [f"queue rank {r} ({strategy.value}); " + ", ".join(f"{c[5:]} p={row[c]:.2f}" for c in probs)
              for r, (_, row) in zip(table["rank"], table.iterrows())]
    return pd.DataFrame({"image_id": table["image_id"], "check": f"active_{strategy.value}", "severity": "info",
                         "score": table["score"].astype(float).clip(0, 1), "detail": detail, "related_id": ""},
                        columns=list(FINDING_COLUMNS))


def _png_b64(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def gallery_html(table: pd.DataFrame, thumbs: dict[str, np.ndarray], *, title: str) -> str:
    """A self-contained HTML page: one card per queue row with its uint8 (S, S) thumbnail (base64 PNG)."""
    probs = [c for c in table.columns if c.startswith("prob_")]
    cards = []
    for _, row in table.iterrows():
        img = thumbs.get(str(row["image_id"]))
        pic = (f'<img src="data:image/png;base64,{_png_b64(img)}" alt="{html.escape(str(row["image_id"]))}">'
               if img is not None else '<div class="none">no image</div>')
        text = " ".join(f"{html.escape(c[5:])}&nbsp;{row[c]:.2f}" for c in probs)
        cards.append(f'<figure>{pic}<figcaption><b>#{int(row["rank"])}</b> {html.escape(str(row["image_id"]))}'
                     f'<br>score {float(row["score"]):.3f} &middot; {text}</figcaption></figure>')
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;background:#111;color:#ddd}main{display:flex;flex-wrap:wrap;gap:8px}"
            "figure{margin:0;width:168px}img{width:160px;height:160px;image-rendering:pixelated;background:#000}"
            "figcaption{font-size:12px}</style></head><body><h1>" + html.escape(title) + "</h1><main>"
            + "".join(cards) + "</main></body></html>")


def write_queue(table: pd.DataFrame, run: str | Path, workspace: str | Path, *, strategy: Strategy | str,
                thumb_size: int = 96) -> dict[str, Path]:
    """Write the four queue files into ``run`` (atomically); returns ``{kind: path}``."""
    from medsift.label.features import thumbnail_array
    from medsift.workspace import Workspace

    strategy = Strategy(strategy)
    run = Path(run)
    ws = Workspace.at(workspace)
    arr = thumbnail_array(ws.root, table, size=thumb_size) if len(table) else np.zeros((0, thumb_size, thumb_size))
    thumbs = {str(iid): (a * 255).round().astype(np.uint8) for iid, a in zip(table["image_id"], arr)}
    stem = run / f"queue-{strategy.value}"
    paths = {"csv": stem.with_suffix(".csv"), "findings": Path(f"{stem}.findings.csv"),
             "ids": Path(f"{stem}.ids.txt"), "html": stem.with_suffix(".html")}
    atomic_write_bytes(paths["csv"], table.to_csv(index=False).encode())
    atomic_write_bytes(paths["findings"], queue_findings(table, strategy=strategy).to_csv(index=False).encode())
    atomic_write_bytes(paths["ids"], ("\n".join(table["image_id"].astype(str)) + "\n").encode())
    atomic_write_bytes(paths["html"], gallery_html(table, thumbs, title=f"{ws.root.name}: queue by "
                                                                       f"{strategy.value}").encode())
    return paths
