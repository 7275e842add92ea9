"""The training cache: decoded, windowed, resized slices in memory-mapped uint8 arrays.

Each slice is decoded once (``medsift.io.load_slice`` / ``load_mask``), windowed
(:func:`~medsift.preprocess.windowing.stack_windows`), optionally skull-stripped and enhanced, resized to
``size x size`` (optionally cropped to the head first; with 2.5D context one square per series, found in a first
decoding pass) and stored as uint8 (value = round(255 * x), x in 0..1). A cache folder holds::

    images.npy     uint8 (N, C, S, S)  C = len(windows) * (2 * context + 1), neighbour-major channels
    masks.npy      uint8 (N, S, S)     0/1, zeros where the slice has no mask (see has_mask)
    index.parquet  image_id order, patient_id, split, fold, label_* columns, has_mask,
                   boxes (JSON [[x1, y1, x2, y2, label], ...] in pixels of the S x S image), orig size
    config.json    config, fingerprint, shapes, per-channel mean/std (0..1 units); written last

The fingerprint hashes the config and, per row, image_id + content_hash (image_path when no hash) +
mask_path + boxes + has_hu; a cache is reused only when it matches. Builds go to a hidden temp folder next to
the target (``.<name>.building-<pid>-<random>``) and are renamed into place when complete, so a killed build
leaves nothing that is later trusted; the next build of that target deletes such folders of dead processes.

Example:
    >>> cache = build_cache(df, ws.sub("cache", "train"), PreprocessConfig(size=256))  # doctest: +SKIP
    >>> x = cache[0]["image"]                     # float32 (C, 256, 256), normalised per config
    >>> pos = cache.rows(df[df["split"] == "val"])  # positions of those rows in the cache
"""

from __future__ import annotations

import hashlib
import io as _stdio
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from medsift.errors import ConfigError, FormatError, MedsiftError
from medsift.manifest import SPLITS, active, atomic_write_bytes, label_columns
from medsift.preprocess.config import Normalize, PreprocessConfig

CACHE_VERSION = 1
_CHUNK = 32

SliceLoader = Callable[[Any], np.ndarray]
MaskLoader = Callable[[Any], "np.ndarray | None"]


def cache_fingerprint(df: pd.DataFrame, config: PreprocessConfig) -> str:
    """sha256 hex of the config and, per row in order, what decides the cached pixels and boxes."""
    h = hashlib.sha256()
    head = {"version": CACHE_VERSION, "config": config.to_dict()}
    if config.crop_head and config.context > 0:
        head["crop"] = "series"  # one square per series (caches built before 2026-11-25 cropped per slice)
    h.update(json.dumps(head, sort_keys=True).encode())
    content = df["content_hash"] if "content_hash" in df.columns else pd.Series([None] * len(df), index=df.index)
    masks = df["mask_path"] if "mask_path" in df.columns else pd.Series([None] * len(df), index=df.index)
    has_hu = df["has_hu"] if "has_hu" in df.columns else pd.Series([None] * len(df), index=df.index)
    boxes = df["boxes"] if "boxes" in df.columns else pd.Series([[]] * len(df), index=df.index)
    if config.rewindows:
        centers, widths = (df[c] if c in df.columns else pd.Series([None] * len(df), index=df.index)
                           for c in ("window_center", "window_width"))
        source_windows = [_source_window(hu, c, w, config.export_window) for hu, c, w in zip(has_hu, centers, widths)]
    else:
        source_windows = [None] * len(df)
    for iid, ch, path, mp, hu, bx, sw in zip(df["image_id"], content, df["image_path"], masks, has_hu, boxes,
                                             source_windows):
        key = ch if isinstance(ch, str) and ch else f"path:{path}"
        h.update(f"{iid}\0{key}\0{mp if isinstance(mp, str) else ''}\0{_bool(hu)}\0{_boxes_json(bx)}".encode())
        h.update(f"\0{sw}\n".encode() if sw is not None else b"\n")
    return h.hexdigest()


def _source_window(has_hu, center, width, fallback: tuple[float, float] | None = None) -> tuple[float, float] | None:
    """``(center, width)`` an 8-bit row was exported with: its own when known, else ``fallback``
    (``preprocess.export_window``); None when the row is in HU already or nothing says."""
    if _bool(has_hu) is True:
        return None
    try:
        c, w = float(center), float(width)
    except (TypeError, ValueError):
        return fallback
    return (c, w) if np.isfinite(c) and np.isfinite(w) and w > 0 else fallback


class SliceCache:
    """A built cache folder opened read-only (memory-mapped).

    Attributes:
        images: uint8 memmap (N, C, S, S).
        masks: uint8 memmap (N, S, S), 0/1.
        boxes: list of N float32 (n_i, 4) xyxy pixel arrays in the S x S frame.
        box_labels: list of N lists of box label strings.
        image_ids: (N,) str array, the row order.
        has_mask: (N,) bool, the slice had a mask file (else its mask is all zeros by absence).
        index: the index table (labels, split, has_mask, ...), one row per cached slice.
        config: the :class:`PreprocessConfig` it was built with.
        fingerprint: the build fingerprint.
        stats: per-channel ``{"mean": [...], "std": [...]}`` of the cached images in 0..1 units.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_path = self.path / "config.json"
        if not meta_path.is_file():
            raise FormatError(f"{self.path} is not a complete medsift cache (no config.json); rebuild it")
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != CACHE_VERSION:
            raise FormatError(f"cache {self.path} has version {meta.get('version')!r}; expected {CACHE_VERSION}")
        self.meta = meta
        self.config = PreprocessConfig.from_dict(meta["config"])
        self.fingerprint: str = meta["fingerprint"]
        self.stats: dict[str, list[float]] = meta["stats"]
        self.images = np.load(self.path / "images.npy", mmap_mode="r")
        self.masks = np.load(self.path / "masks.npy", mmap_mode="r")
        self.index = pd.read_parquet(self.path / "index.parquet")
        n, c, s = meta["n"], self.config.channels, self.config.size
        if self.images.shape != (n, c, s, s) or self.masks.shape != (n, s, s) or len(self.index) != n:
            raise FormatError(f"cache {self.path} is inconsistent: images {self.images.shape}, masks "
                              f"{self.masks.shape}, index {len(self.index)} rows; expected N={n}, C={c}, S={s}")
        # plain ndarray views of the same mapped pages: indexing them skips numpy.memmap's per-call overhead
        self._images = self.images.view(np.ndarray)
        self._masks = self.masks.view(np.ndarray)
        self.image_ids = self.index["image_id"].astype(str).to_numpy()
        self.has_mask = self.index["has_mask"].to_numpy(dtype=bool)
        parsed = [json.loads(b) for b in self.index["boxes"]]
        self.boxes = [np.asarray([b[:4] for b in bs], dtype=np.float32).reshape(-1, 4) for bs in parsed]
        self.box_labels = [[str(b[4]) for b in bs] for bs in parsed]
        self._pos = {iid: i for i, iid in enumerate(self.image_ids)}

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return f"SliceCache({str(self.path)!r}, n={len(self)}, shape={tuple(self.images.shape[1:])})"

    def rows(self, df: pd.DataFrame | Sequence[str]) -> np.ndarray:
        """Positions (int64) in this cache of the rows of ``df`` (or of a list of image_ids), in that order."""
        ids = df["image_id"].astype(str).tolist() if isinstance(df, pd.DataFrame) else [str(i) for i in df]
        missing = [i for i in ids if i not in self._pos]
        if missing:
            raise ConfigError(f"cache {self.path} lacks {len(missing)} of the requested image_ids "
                              f"(e.g. {missing[:5]}); rebuild it from the current manifest")
        return np.fromiter((self._pos[i] for i in ids), dtype=np.int64, count=len(ids))

    def file_frames(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """float64 (N, 4) ``(sx, sy, ox, oy)`` of cached rows: the point ``(x, y)`` of the S x S frame lies at
        ``(ox + sx * x, oy + sy * y)`` in its file's pixels. Without a crop that is ``(W / S, H / S, 0, 0)``; with
        ``crop_head`` the head square's corner and ``side / S``. A row whose size is unknown gets ``(1, 1, 0, 0)``."""
        pos = np.asarray(positions, dtype=np.int64)
        s = float(self.config.size)
        out = np.tile(np.array([1.0, 1.0, 0.0, 0.0]), (len(pos), 1))
        idx = self.index
        if "orig_width" in idx.columns and "orig_height" in idx.columns:
            w = pd.to_numeric(idx["orig_width"], errors="coerce").to_numpy(float)[pos]
            h = pd.to_numeric(idx["orig_height"], errors="coerce").to_numpy(float)[pos]
            known = np.isfinite(w) & np.isfinite(h)
            out[known, 0], out[known, 1] = w[known] / s, h[known] / s
        for k, square in enumerate(self.head_squares(pos)):
            if square is not None:
                y0, x0, side = square
                out[k] = (side / s, side / s, x0, y0)
        return out

    def head_squares(self, positions: Sequence[int] | np.ndarray) -> list[tuple[int, int, int] | None]:
        """The ``(y0, x0, side)`` head square each cached row was cropped to (``crop_head``), or None."""
        pos = np.asarray(positions, dtype=np.int64)
        if "crop_side" not in self.index.columns:
            return [None] * len(pos)
        rows = self.index[["crop_y0", "crop_x0", "crop_side"]].iloc[pos]
        return [None if pd.isna(side) else (int(y0), int(x0), int(side))
                for y0, x0, side in rows.itertuples(index=False)]

    def image(self, i: int) -> np.ndarray:
        """Slice ``i`` as float32 (C, S, S), scaled to 0..1 then normalised per ``config.normalize``."""
        from medsift.preprocess.normalize import minmax, zscore

        x = self._images[i].astype(np.float32) * np.float32(1.0 / 255.0)
        mode = Normalize(self.config.normalize)
        if mode is Normalize.MINMAX:
            return minmax(x)
        if mode is Normalize.ZSCORE_IMAGE:
            return zscore(x)
        if mode is Normalize.ZSCORE_DATASET:
            return zscore(x, mean=np.asarray(self.stats["mean"]), std=np.asarray(self.stats["std"]))
        return x

    def read_batch(self, positions: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw uint8 ``(images (B, C, S, S), masks (B, S, S))`` of ``positions``, in that order (one sorted
        fancy-index read per array; much faster than B single reads)."""
        return read_rows(self._images, positions), read_rows(self._masks, positions)

    def __getitem__(self, i: int) -> dict[str, Any]:
        """One sample: ``image`` float32 (C, S, S), ``mask`` uint8 (S, S), ``has_mask``, ``boxes`` (n, 4),
        ``box_labels``, ``image_id``, ``index`` (position)."""
        i = int(i)
        return {
            "image": self.image(i),
            "mask": self._masks[i].copy(),
            "has_mask": bool(self.has_mask[i]),
            "boxes": self.boxes[i],
            "box_labels": self.box_labels[i],
            "image_id": self.image_ids[i],
            "index": i,
        }


def read_rows(array: np.ndarray, positions: Sequence[int] | np.ndarray, *, channel: int | None = None) -> np.ndarray:
    """``array[positions]`` (or ``array[positions, channel]``) in the order given, read with one sorted
    fancy index: on a memory-mapped cache, much faster than unsorted or single-row reads."""
    pos = np.asarray(positions, dtype=np.int64)
    order = np.argsort(pos, kind="stable")
    rows = array[pos[order]] if channel is None else array[pos[order], channel]
    out = np.empty(rows.shape, dtype=rows.dtype)
    out[order] = rows
    return out


def open_cache(path: str | Path) -> SliceCache:
    """Open a built cache folder."""
    return SliceCache(path)


def build_cache(df: pd.DataFrame, cache_dir: str | Path, config: PreprocessConfig, *, n_jobs: int = 2,
                force: bool = False, progress: bool = True, load_slice: SliceLoader | None = None,
                load_mask: MaskLoader | None = None) -> SliceCache:
    """Build (or reuse) the cache of ``df``'s rows in ``cache_dir``.

    Args:
        df: manifest rows to cache, in the order wanted (pass the active rows of one split, or all).
        cache_dir: target folder; replaced atomically when rebuilt.
        config: preprocessing.
        n_jobs: joblib worker processes for decoding (each writes its rows into the memmaps).
        force: rebuild even when the fingerprint matches.
        progress: show a rich progress bar.
        load_slice: ``row -> float32 (H, W)`` (HU if ``row.has_hu`` else 0..255); default
            ``medsift.io.load_slice``.
        load_mask: ``row -> bool (H, W) | None``; default ``medsift.io.load_mask``.

    Returns:
        The opened :class:`SliceCache`.

    Raises:
        FormatError: a slice could not be decoded (lists the image_ids; nothing is written).
    """
    cache_dir = Path(cache_dir)
    if len(df) == 0:
        raise ConfigError("build_cache needs at least one manifest row; got an empty table")
    if df["image_id"].duplicated().any():
        raise ConfigError(f"build_cache needs unique image_ids; duplicated: "
                          f"{sorted(df.loc[df['image_id'].duplicated(), 'image_id'].unique())[:5]}")
    df = df.reset_index(drop=True)
    fp = cache_fingerprint(df, config)
    _remove_dead_builds(cache_dir)  # also when the cache is reused: a killed build's folder is as big as a cache
    if not force and (cache_dir / "config.json").is_file():
        try:
            existing = SliceCache(cache_dir)
            if existing.fingerprint == fp:
                return existing
        except (FormatError, OSError, ValueError, KeyError):
            pass  # unreadable or stale: rebuild below
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir.parent / f".{cache_dir.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _build_into(tmp, df, config, fp, n_jobs=n_jobs, progress=progress, load_slice=load_slice,
                    load_mask=load_mask)
        _swap_into_place(tmp, cache_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SliceCache(cache_dir)


def build_split_caches(df: pd.DataFrame, cache_root: str | Path, config: PreprocessConfig, *,
                       splits: Sequence[str] = SPLITS, n_jobs: int = 2, force: bool = False,
                       progress: bool = True, load_slice: SliceLoader | None = None,
                       load_mask: MaskLoader | None = None) -> dict[str, SliceCache]:
    """One cache per split (``cache_root/<split>``) over the active rows (not excluded, status ok).

    Returns:
        ``{split: SliceCache}`` for each split in ``splits`` that has rows.
    """
    if "split" not in df.columns or df["split"].isna().all():
        raise ConfigError("the manifest has no split assignment; run `medsift split WS` first")
    rows = active(df)
    out: dict[str, SliceCache] = {}
    for name in splits:
        part = rows[rows["split"] == name]
        if len(part):
            out[name] = build_cache(part, Path(cache_root) / name, config, n_jobs=n_jobs, force=force,
                                    progress=progress, load_slice=load_slice, load_mask=load_mask)
    return out


# ---------------------------------------------------------------------------------------------- build


def _build_into(tmp: Path, df: pd.DataFrame, config: PreprocessConfig, fp: str, *, n_jobs: int,
                progress: bool, load_slice: SliceLoader | None, load_mask: MaskLoader | None) -> None:
    from joblib import Parallel, delayed

    from medsift.preprocess.stack import neighbour_positions

    n, s, w = len(df), config.size, len(config.windows)
    base_name = "images.npy" if config.context == 0 else "windows.npy"
    base = np.lib.format.open_memmap(tmp / base_name, mode="w+", dtype=np.uint8, shape=(n, w, s, s))
    masks = np.lib.format.open_memmap(tmp / "masks.npy", mode="w+", dtype=np.uint8, shape=(n, s, s))
    del base, masks  # workers reopen them r+; flushed here
    chunks = [np.arange(i, min(i + _CHUNK, n)) for i in range(0, n, _CHUNK)]
    squares: list[Any] = [None] * n
    if config.crop_head and config.context > 0:  # neighbours are channels: one square per series keeps them aligned
        squares = _series_squares(df, config, chunks, n_jobs=n_jobs, progress=progress, load_slice=load_slice)
    jobs = (delayed(_process_chunk)(df.iloc[idx], idx, tmp / base_name, tmp / "masks.npy", config,
                                    load_slice, load_mask, [squares[i] for i in idx]) for idx in chunks)
    results: list[dict[str, Any]] = []
    with _bar(progress, "caching slices", n) as advance:
        for part in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
            results.extend(part)
            advance(len(part))
    errors = [r for r in results if r["error"]]
    if errors:
        listed = "; ".join(f"{r['image_id']}: {r['error']}" for r in errors[:5])
        raise FormatError(f"{len(errors)} slice(s) could not be cached ({listed}); exclude them or fix the "
                          f"files, then rebuild")
    results.sort(key=lambda r: r["pos"])
    if config.context > 0:
        _gather_context(tmp, df, config, neighbour_positions(df, config.context))
    index = _index_table(df, results)
    buf = _stdio.BytesIO()
    index.to_parquet(buf, index=False)
    atomic_write_bytes(tmp / "index.parquet", buf.getvalue())
    mean, std = _channel_stats(tmp / "images.npy")
    meta = {"version": CACHE_VERSION, "fingerprint": fp, "config": config.to_dict(), "n": n,
            "channels": config.channels, "size": s, "stats": {"mean": mean, "std": std}}
    atomic_write_bytes(tmp / "config.json", json.dumps(meta, indent=1).encode())


def _series_squares(df: pd.DataFrame, config: PreprocessConfig, chunks: list[np.ndarray], *, n_jobs: int,
                    progress: bool, load_slice: SliceLoader | None) -> list[tuple[int, int, int] | None]:
    """One head square per series (rows of one :func:`~medsift.preprocess.stack.series_key` and image size): the
    square around the union of its slices' head squares, so a slice and its neighbours are cropped alike and
    every slice of a scan keeps the scan's one pixel size. A first pass decodes each slice for its square only."""
    from joblib import Parallel, delayed

    from medsift.preprocess.skull import union_square
    from medsift.preprocess.stack import series_key

    jobs = (delayed(_find_squares)(df.iloc[idx], idx, config, load_slice) for idx in chunks)
    found: dict[int, tuple[Any, tuple[int, int] | None]] = {}
    with _bar(progress, "finding head squares", len(df)) as advance:
        for part in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
            found.update(part)
            advance(len(part))
    groups: dict[tuple[Any, ...], list[int]] = {}
    for pos, key in enumerate(series_key(df).to_numpy()):
        groups.setdefault((key, found[pos][1]), []).append(pos)
    out: list[tuple[int, int, int] | None] = [None] * len(df)
    for members in groups.values():
        square = union_square([found[p][0] for p in members])
        for p in members:
            out[p] = square
    return out


def _find_squares(rows: pd.DataFrame, positions: np.ndarray, config: PreprocessConfig,
                  load_slice: SliceLoader | None) -> dict[int, tuple[Any, tuple[int, int] | None]]:
    """Worker: ``{pos: (head square or None, (H, W) or None)}`` of a chunk of rows (unreadable rows: None, None;
    the caching pass reports them)."""
    load_slice = load_slice or _io_module().load_slice
    out = {}
    for pos, (_, row) in zip(positions, rows.iterrows()):
        try:
            img, hu = decode_row(row, load_slice, config)
            out[int(pos)] = (find_head_square(_windowed(img, config, has_hu=hu)), tuple(np.shape(img)))
        except (MedsiftError, OSError, ValueError):
            out[int(pos)] = (None, None)
    return out


def _rewindow_source(row: Any, config: PreprocessConfig) -> tuple[float, float] | None:
    """The export window :func:`decode_row` maps ``row`` back to HU through, or None (HU already, or no re-window)."""
    if not config.rewindows:
        return None
    return _source_window(_bool(row.get("has_hu")) is True, row.get("window_center"), row.get("window_width"),
                          config.export_window)


def reaches_model_in_hu(row: Any, config: PreprocessConfig) -> bool:
    """Whether :func:`decode_row` hands ``row`` on in HU (DICOM/NIfTI, or an 8-bit export re-windowed through its
    known window) rather than as exported grey levels."""
    return _bool(row.get("has_hu")) is True or _rewindow_source(row, config) is not None


def decode_row(row: Any, load_slice: SliceLoader, config: PreprocessConfig) -> tuple[np.ndarray, bool]:
    """``(slice, has_hu)``: the decoded slice, mapped back to HU when ``config`` re-windows 8-bit exports."""
    img = load_slice(row)
    hu = _bool(row.get("has_hu")) is True
    source = _rewindow_source(row, config)
    if source is not None:
        from medsift.preprocess.windowing import display_to_hu

        img, hu = display_to_hu(img, *source), True
    return img, hu


def _process_chunk(rows: pd.DataFrame, positions: np.ndarray, base_path: Path, masks_path: Path,
                   config: PreprocessConfig, load_slice: SliceLoader | None,
                   load_mask: MaskLoader | None, squares: Sequence[Any]) -> list[dict[str, Any]]:
    """Worker: decode, window, strip, enhance, crop (to the row's given square, else its own), resize and write a
    chunk of rows into the memmaps."""
    if load_slice is None or load_mask is None:
        io = _io_module()
        load_slice = load_slice or io.load_slice
        load_mask = load_mask or io.load_mask
    base = np.load(base_path, mmap_mode="r+")
    masks = np.load(masks_path, mmap_mode="r+")
    out = []
    for pos, given, (_, row) in zip(positions, squares, rows.iterrows()):
        rec: dict[str, Any] = {"pos": int(pos), "image_id": str(row["image_id"]), "error": None,
                               "has_mask": False, "boxes": [], "orig_h": None, "orig_w": None}
        try:
            img, hu = decode_row(row, load_slice, config)
            mask = load_mask(row)
            chans, small_mask, square = preprocess_slice(img, mask, config, has_hu=hu, square=given)
            base[pos] = to_uint8(chans)
            if small_mask is not None:
                masks[pos] = small_mask
                rec["has_mask"] = True
            h, w = np.shape(img)
            rec["orig_h"], rec["orig_w"] = int(h), int(w)
            rec["boxes"] = _scaled_boxes(row.get("boxes"), (h, w), config.size, square)
            rec["square"] = square
        except (MedsiftError, OSError, ValueError) as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"
        out.append(rec)
    base.flush()
    masks.flush()
    del base, masks
    return out


def preprocess_slice(image: np.ndarray, mask: np.ndarray | None, config: PreprocessConfig, *,
                     has_hu: bool, square: tuple[int, int, int] | None = None
                     ) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int, int] | None]:
    """Window, skull-strip, enhance, crop and resize one decoded slice (the per-slice part of the cache).

    Args:
        image: (H, W) in HU (``has_hu``) or 0..255.
        mask: bool (H, W) or None.
        config: preprocessing.
        has_hu: units of ``image``.
        square: with ``config.crop_head``, the ``(y0, x0, side)`` to crop to (its series' square); None = the
            slice's own head square.

    Returns:
        ``(channels, mask, square)``: float32 (len(windows), S, S) in 0..1, uint8 (S, S) 0/1 or None, and the
        ``(y0, x0, side)`` head square the slice was cropped to (``config.crop_head``) or None.
    """
    from medsift.preprocess.resample import resize_image, resize_mask
    from medsift.preprocess.skull import crop_square

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise FormatError(f"a slice must be 2D (H, W); got shape {image.shape}")
    if mask is not None:
        mask = (np.asarray(mask) > 0).astype(np.uint8)
        if mask.shape != image.shape:
            raise FormatError(f"mask shape {mask.shape} differs from image shape {image.shape}")
    chans = _windowed(image, config, has_hu=has_hu)
    if not config.crop_head:
        square = None
    elif square is None:
        square = find_head_square(chans)
    if square is not None:
        chans = crop_square(chans, square)
        mask = crop_square(mask, square) if mask is not None else None
    chans = np.clip(resize_image(chans, config.size), 0.0, 1.0)
    small = resize_mask(mask, config.size) if mask is not None else None
    return chans, small, square


def _windowed(image: np.ndarray, config: PreprocessConfig, *, has_hu: bool) -> np.ndarray:
    """float32 (len(windows), H, W) in 0..1: windowed, then skull-stripped and enhanced as ``config`` says."""
    from medsift.preprocess.enhance import enhance
    from medsift.preprocess.skull import brain_mask, strip_skull
    from medsift.preprocess.windowing import stack_windows

    image = np.asarray(image, dtype=np.float32)
    chans = stack_windows(image, config.windows, has_hu=has_hu)
    if config.skull_strip:
        chans = strip_skull(chans, brain_mask(image, has_hu=has_hu))
    if config.enhance is not None:
        chans = enhance(chans, config.enhance)
    return chans


def find_head_square(chans: np.ndarray) -> tuple[int, int, int] | None:
    """The head square (:func:`~medsift.preprocess.skull.head_square`) of windowed channels, found in the first
    window, where air and fat sit at 0; None when no head is found.

    The square needs only the bounding box of the largest foreground component: the closing and hole filling
    of :func:`~medsift.preprocess.skull.head_mask` never reach outside it (away from the image edge), and skipping
    them is about 20 times faster (one square in 400 real slices moved by 1-2 pixels, at the edge)."""
    from medsift.preprocess.skull import U8_AIR, head_square, largest_component

    return head_square(largest_component(to_uint8(chans[0]) > U8_AIR))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """0..1 float -> uint8 ``round(255 * x)``."""
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _gather_context(tmp: Path, df: pd.DataFrame, config: PreprocessConfig, neigh: np.ndarray) -> None:
    n, s = len(df), config.size
    base = np.load(tmp / "windows.npy", mmap_mode="r")
    images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                       shape=(n, config.channels, s, s))
    for start in range(0, n, 256):
        idx = neigh[start:start + 256]
        images[start:start + len(idx)] = base[idx.ravel()].reshape(len(idx), config.channels, s, s)
    images.flush()
    del images, base
    (tmp / "windows.npy").unlink()


def _channel_stats(images_path: Path) -> tuple[list[float], list[float]]:
    """Exact per-channel mean/std (0..1 units) from uint8 histograms."""
    images = np.load(images_path, mmap_mode="r")
    c = images.shape[1]
    hist = np.zeros((c, 256), dtype=np.int64)
    for start in range(0, images.shape[0], 256):
        block = np.asarray(images[start:start + 256])
        for k in range(c):
            hist[k] += np.bincount(block[:, k].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64) / 255.0
    total = hist.sum(axis=1)
    mean = (hist * values).sum(axis=1) / total
    std = np.sqrt(np.maximum((hist * values**2).sum(axis=1) / total - mean**2, 0.0))
    return [float(m) for m in mean], [float(v) for v in std]


def _index_table(df: pd.DataFrame, results: list[dict[str, Any]]) -> pd.DataFrame:
    keep = [c for c in ("image_id", "patient_id", "series_id", "slice_index", "split", "fold") if c in df.columns]
    index = df[keep + label_columns(df)].copy()
    for col in index.columns:
        if str(index[col].dtype) == "string":
            index[col] = index[col].astype(object)
    index["has_mask"] = [r["has_mask"] for r in results]
    index["boxes"] = [json.dumps(r["boxes"]) for r in results]
    index["orig_height"] = [r["orig_h"] for r in results]
    index["orig_width"] = [r["orig_w"] for r in results]
    if any(r.get("square") is not None for r in results):
        for k, name in enumerate(("crop_y0", "crop_x0", "crop_side")):
            index[name] = pd.array([r["square"][k] if r.get("square") is not None else None for r in results],
                                   dtype="Int64")
    return index


def _scaled_boxes(boxes: Any, hw: tuple[int, int], size: int,
                  square: tuple[int, int, int] | None = None) -> list[list[Any]]:
    """Boxes of the source frame ``hw`` in the S x S cache frame (of the ``(y0, x0, side)`` crop if given)."""
    from medsift.preprocess.resample import scale_boxes

    if not isinstance(boxes, (list, tuple, np.ndarray)) or len(boxes) == 0:
        return []
    xy = np.asarray([b[:4] for b in boxes], dtype=np.float32)
    if square is not None:
        y0, x0, side = square
        xy, hw = xy - np.asarray([x0, y0, x0, y0], np.float32), (side, side)
    xy = scale_boxes(xy, hw, (size, size))
    return [[float(v) for v in xy[i]] + [str(b[4]) if len(b) > 4 else ""] for i, b in enumerate(boxes)]


def _boxes_json(boxes: Any) -> str:
    if not isinstance(boxes, (list, tuple, np.ndarray)):
        return "[]"
    return json.dumps([[float(v) for v in b[:4]] + [str(b[4]) if len(b) > 4 else ""] for b in boxes])


def _bool(value: Any) -> bool | None:
    if value is None or value is pd.NA:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return bool(value)


def _io_module():
    import medsift.io as io

    if not (hasattr(io, "load_slice") and hasattr(io, "load_mask")):
        raise ConfigError("medsift.io.load_slice/load_mask are not available; pass load_slice= and "
                          "load_mask= to build_cache")
    return io


def _remove_dead_builds(cache_dir: Path) -> None:
    """Delete temp folders of earlier builds of ``cache_dir`` whose process is gone (killed builds), and old caches
    left by a build killed while swapping (always superseded: a new build follows)."""
    for old in cache_dir.parent.glob(f".{cache_dir.name}.old-*"):
        shutil.rmtree(old, ignore_errors=True)
    for tmp in cache_dir.parent.glob(f".{cache_dir.name}.building-*"):
        try:
            pid = int(tmp.name.rsplit(".building-", 1)[1].split("-")[0])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


def _swap_into_place(tmp: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class _bar:
    """Context manager yielding ``advance(k)``; a rich bar when ``show``."""

    def __init__(self, show: bool, description: str, total: int) -> None:
        self.show, self.description, self.total = show, description, total

    def __enter__(self) -> Callable[[int], None]:
        if not self.show:
            return lambda k: None
        from medsift.progress import progress_bar

        self._cm = progress_bar()
        prog = self._cm.__enter__()
        task = prog.add_task(self.description, total=self.total)
        return lambda k: prog.advance(task, k)

    def __exit__(self, *exc: Any) -> None:
        if self.show:
            self._cm.__exit__(*exc)
