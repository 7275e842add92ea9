"""The slice cache: windowed uint8 pixels, scaled boxes, masks, 2.5D context, reuse by fingerprint, atomicity."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.engine.config import TrainConfig
from medsift.errors import ConfigError, FormatError
from medsift.preprocess.cache import SliceCache, build_cache
from medsift.preprocess.config import PreprocessConfig

from preprocess_fixtures import npy_load_mask, npy_load_slice, write_slices

LOADERS = {"load_slice": npy_load_slice, "load_mask": npy_load_mask, "progress": False, "n_jobs": 1}


@pytest.fixture(scope="module")
def hu_df(tmp_path_factory):
    root = tmp_path_factory.mktemp("hu")
    mask = np.zeros((64, 64), bool)
    mask[16:48, 8:32] = True
    slices = [
        {"image_id": "p1_0", "patient_id": "p1", "slice_index": 0, "has_hu": True,
         "array": np.full((64, 64), 60.0, np.float32), "mask": mask,
         "boxes": [[8.0, 16.0, 32.0, 48.0, "a"]], "label_hemorrhage": 1},
        {"image_id": "p1_1", "patient_id": "p1", "slice_index": 1, "has_hu": True,
         "array": np.full((64, 64), -1000.0, np.float32), "label_hemorrhage": 0},
    ]
    return write_slices(root, slices)


@pytest.fixture(scope="module")
def hu_cache(hu_df, tmp_path_factory):
    cfg = PreprocessConfig(size=32, windows=("brain", "subdural", "bone"))
    return build_cache(hu_df, tmp_path_factory.mktemp("c") / "cache", cfg, **LOADERS)


def test_cached_pixels_are_hand_computed_windows(hu_cache):
    # 60 HU: brain 40/80 -> 60/80 = 0.75 -> 191; subdural 80/200 -> 80/200 = 0.4 -> 102;
    # bone 600/2800 -> 860/2800 = 0.30714 -> 78. -1000 HU -> 0 in every window.
    assert hu_cache.images.dtype == np.uint8
    assert hu_cache.images.shape == (2, 3, 32, 32)
    assert [int(v) for v in hu_cache.images[0, :, 10, 10]] == [191, 102, 78]
    assert int(hu_cache.images[1].max()) == 0


def test_boxes_are_scaled_to_the_cache_size(hu_cache):
    assert hu_cache.boxes[0].tolist() == [[4.0, 8.0, 16.0, 24.0]]
    assert hu_cache.box_labels[0] == ["a"]
    assert hu_cache.boxes[1].shape == (0, 4)


def test_mask_is_resized_nearest_and_flagged(hu_cache):
    m = np.asarray(hu_cache.masks[0])
    assert m.sum() == 16 * 12 and m[8:24, 4:16].all()
    assert hu_cache.index["has_mask"].tolist() == [True, False]


def test_index_keeps_order_and_labels(hu_cache, hu_df):
    assert hu_cache.image_ids.tolist() == ["p1_0", "p1_1"]
    assert hu_cache.index["label_hemorrhage"].tolist() == [1, 0]
    assert hu_cache.rows(hu_df.iloc[[1, 0]]).tolist() == [1, 0]


def test_rows_names_missing_ids(hu_cache):
    with pytest.raises(ConfigError, match="lacks 1.*nope"):
        hu_cache.rows(["p1_0", "nope"])


def test_getitem_returns_float_image_in_unit_range(hu_cache):
    sample = hu_cache[0]
    assert sample["image"].dtype == np.float32
    assert sample["image"][0, 0, 0] == pytest.approx(191 / 255)
    assert sample["image_id"] == "p1_0"


def test_context_stacks_neighbours_with_edge_repeat(tmp_path):
    # three 8-bit slices with values 10, 20, 30 (passed through as /255), given out of order
    slices = [{"image_id": f"s{k}", "patient_id": "p", "series_id": "ser", "slice_index": k, "has_hu": False,
               "array": np.full((16, 16), 10.0 * (k + 1), np.float32)} for k in (2, 0, 1)]
    df = write_slices(tmp_path / "d", slices)
    cache = build_cache(df, tmp_path / "c", PreprocessConfig(size=16, context=1), **LOADERS)
    got = {iid: cache.images[i, :, 0, 0].tolist() for i, iid in enumerate(cache.image_ids)}
    assert got == {"s0": [10, 10, 20], "s1": [10, 20, 30], "s2": [20, 30, 30]}


def test_matching_fingerprint_reuses_and_change_rebuilds(hu_df, tmp_path):
    cfg = PreprocessConfig(size=32)
    first = build_cache(hu_df, tmp_path / "c", cfg, **LOADERS)
    mtime = (tmp_path / "c" / "images.npy").stat().st_mtime_ns
    again = build_cache(hu_df, tmp_path / "c", cfg, **LOADERS)
    assert again.fingerprint == first.fingerprint
    assert (tmp_path / "c" / "images.npy").stat().st_mtime_ns == mtime
    changed = hu_df.copy()
    changed.loc[0, "content_hash"] = "other"
    rebuilt = build_cache(changed, tmp_path / "c", cfg, **LOADERS)
    assert rebuilt.fingerprint != first.fingerprint
    other_cfg = build_cache(hu_df, tmp_path / "c", PreprocessConfig(size=16), **LOADERS)
    assert other_cfg.images.shape == (2, 1, 16, 16)


def test_failed_build_leaves_no_cache_and_no_temp(hu_df, tmp_path):
    def broken(row):
        if row["image_id"] == "p1_1":
            raise FormatError("truncated file")
        return npy_load_slice(row)

    with pytest.raises(FormatError, match="p1_1.*truncated"):
        build_cache(hu_df, tmp_path / "c", PreprocessConfig(size=32), load_slice=broken,
                    load_mask=npy_load_mask, progress=False, n_jobs=1)
    assert list(tmp_path.iterdir()) == []


def test_two_worker_processes_write_the_same_arrays(hu_df, hu_cache, tmp_path):
    cfg = PreprocessConfig(size=32, windows=("brain", "subdural", "bone"))
    par = build_cache(hu_df, tmp_path / "c", cfg, load_slice=npy_load_slice, load_mask=npy_load_mask,
                      progress=False, n_jobs=2)
    np.testing.assert_array_equal(np.asarray(par.images), np.asarray(hu_cache.images))
    np.testing.assert_array_equal(np.asarray(par.masks), np.asarray(hu_cache.masks))


def test_dataset_zscore_uses_cache_statistics(hu_df, tmp_path):
    cache = build_cache(hu_df, tmp_path / "c", PreprocessConfig(size=32, normalize="zscore_dataset"), **LOADERS)
    # half the pixels are 191/255, half 0: mean = 0.3745, std = 0.3745
    assert cache.stats["mean"][0] == pytest.approx(191 / 255 / 2)
    assert cache.stats["std"][0] == pytest.approx(191 / 255 / 2)
    assert cache[0]["image"][0, 0, 0] == pytest.approx(1.0)
    assert cache[1]["image"][0, 0, 0] == pytest.approx(-1.0)


def test_open_rejects_incomplete_folder(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(FormatError, match="no config.json"):
        SliceCache(tmp_path / "half")


def test_leftover_of_a_killed_build_is_removed_and_never_read(hu_df, tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".c.building-{int(dead.stdout)}-deadbeef"
    leftover.mkdir()
    (leftover / "images.npy").write_bytes(b"half")
    cache = build_cache(hu_df, tmp_path / "c", PreprocessConfig(size=32), **LOADERS)
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    assert cache.images.shape == (2, 1, 32, 32)


def test_rewindow_8bit_gives_slices_exported_with_different_windows_one_contrast(tmp_path):
    from medsift.preprocess.windowing import window

    hu = np.tile(np.linspace(0.0, 75.0, 64, dtype=np.float32), (64, 1))  # 0..75 HU ramp, inside both windows
    exports = {"narrow": (36.0, 80.0), "wide": (40.0, 150.0)}
    slices = [{"image_id": name, "patient_id": name, "slice_index": 0, "has_hu": False,
               "window_center": c, "window_width": w, "array": np.round(window(hu, c, w) * 255.0)}
              for name, (c, w) in exports.items()]
    slices.append({"image_id": "unknown", "patient_id": "u", "slice_index": 0, "has_hu": False,
                   "window_center": None, "window_width": None, "array": np.full((64, 64), 128.0, np.float32)})
    df = write_slices(tmp_path / "src", slices)
    plain = build_cache(df, tmp_path / "plain", PreprocessConfig(size=64), **LOADERS)
    again = build_cache(df, tmp_path / "re", PreprocessConfig(size=64, rewindow_8bit=True), **LOADERS)
    a, b = (plain.image(plain.rows(["narrow", "wide"])[k])[0] for k in (0, 1))
    assert np.abs(a - b).max() > 0.2  # as exported: two contrasts
    ra, rb = (again.image(again.rows(["narrow", "wide"])[k])[0] for k in (0, 1))
    np.testing.assert_allclose(ra, window(hu, 40.0, 80.0), atol=0.03)  # back on the brain window 40/80
    np.testing.assert_allclose(ra, rb, atol=0.03)
    # a row without a known window passes through unchanged
    unknown = again.image(again.rows(["unknown"])[0])[0]
    np.testing.assert_allclose(unknown, 128 / 255, atol=0.01)


def test_export_window_rewindows_8bit_rows_that_do_not_say_their_window(tmp_path):
    from medsift.preprocess.windowing import window

    hu = np.tile(np.linspace(-20.0, 110.0, 64, dtype=np.float32), (64, 1))  # inside the 40/150 export window
    own = {"image_id": "own", "patient_id": "o", "slice_index": 0, "has_hu": False, "window_center": 36.0,
           "window_width": 80.0, "array": np.round(window(hu, 36.0, 80.0) * 255.0)}
    silent = {"image_id": "silent", "patient_id": "s", "slice_index": 0, "has_hu": False, "window_center": None,
              "window_width": None, "array": np.round(window(hu, 40.0, 150.0) * 255.0)}
    df = write_slices(tmp_path / "src", [own, silent])
    config = PreprocessConfig(size=64, windows=("stroke",), export_window=[40, 150])
    assert config.rewindows and config.export_window == (40.0, 150.0)
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    cache = build_cache(df, tmp_path / "c", config, **LOADERS)
    silent_out = cache.image(cache.rows(["silent"])[0])[0]
    np.testing.assert_allclose(silent_out, window(hu, 40.0, 40.0), atol=0.04)  # stretched to the stroke window
    own_out = cache.image(cache.rows(["own"])[0])[0]  # its own 36/80 window wins over the export window
    inside = (hu >= -4) & (hu <= 76)
    np.testing.assert_allclose(own_out[inside], window(hu, 40.0, 40.0)[inside], atol=0.04)
    plain = build_cache(df, tmp_path / "p", PreprocessConfig(size=64, windows=("stroke",)), **LOADERS)
    assert plain.fingerprint != cache.fingerprint
    np.testing.assert_allclose(plain.image(plain.rows(["silent"])[0])[0], window(hu, 40.0, 150.0), atol=0.01)
    for bad in ([40], [40, 0], ["a", 1], [40, float("nan")]):
        with pytest.raises(ConfigError, match="export_window"):
            PreprocessConfig(export_window=bad)


def test_display_to_hu_inverts_the_window_and_refuses_a_bad_width():
    from medsift.preprocess.windowing import display_to_hu, window

    hu = np.array([-10.0, 0.0, 36.0, 70.0], np.float32)
    np.testing.assert_allclose(display_to_hu(window(hu, 30.0, 80.0) * 255.0, 30.0, 80.0), hu, atol=1e-4)
    with pytest.raises(ConfigError, match="width > 0"):
        display_to_hu(np.zeros(2), 40.0, 0.0)


def test_crop_head_spends_the_pixels_on_the_head_and_boxes_and_masks_follow(tmp_path):
    # a 40x40 "head" of 40 HU at rows 10..50, cols 20..60 of a 100x100 air slice, with a bleed box inside
    img = np.full((100, 100), -1000.0, np.float32)
    img[10:50, 20:60] = 40.0
    img[20:30, 30:40] = 70.0
    mask = np.zeros((100, 100), bool)
    mask[20:30, 30:40] = True
    df = write_slices(tmp_path / "src", [
        {"image_id": "a", "patient_id": "p", "slice_index": 0, "has_hu": True, "array": img, "mask": mask,
         "boxes": [[30.0, 20.0, 40.0, 30.0, "bleed"]], "label_hemorrhage": 1},
        {"image_id": "blank", "patient_id": "p", "slice_index": 1, "has_hu": True,
         "array": np.full((100, 100), -1000.0, np.float32), "label_hemorrhage": 0}])
    cache = build_cache(df, tmp_path / "c", PreprocessConfig(size=50, crop_head=True), **LOADERS)
    # square: side ceil(40 * 1.08) = 44, centred on the head box -> y0 = 8, x0 = 18; the blank slice is not cropped
    assert cache.index[["crop_y0", "crop_x0", "crop_side"]].iloc[0].tolist() == [8, 18, 44]
    assert cache.index["crop_side"].isna().tolist() == [False, True]
    scale = 50 / 44
    assert np.allclose(cache.boxes[0], [[(30 - 18) * scale, (20 - 8) * scale, (40 - 18) * scale, (30 - 8) * scale]],
                       atol=1e-4)
    # the head now fills the frame but for the margin; the mask sits where the box says
    head = np.asarray(cache.images[0, 0]) > 0
    assert head.mean() > 0.8
    ys, xs = np.nonzero(np.asarray(cache.masks[0]))
    x0, y0, x1, y1 = cache.boxes[0][0]
    assert abs(xs.min() - x0) <= 1 and abs(ys.min() - y0) <= 1 and abs(xs.max() + 1 - x1) <= 1
    assert abs(ys.max() + 1 - y1) <= 1


def test_boxes_found_in_the_head_square_go_back_to_file_pixels(tmp_path):
    """With ``crop_head`` a detector sees the head square resized; its boxes must come back out of the square (and
    a slice without a head, not cropped, just rescaled)."""
    from medsift.engine.config import apply_overrides, TrainConfig
    from medsift.tasks import TASKS
    from medsift.tasks.detect import boxes_to_cache, boxes_to_file

    img = np.full((100, 100), -1000.0, np.float32)
    img[10:50, 20:60] = 40.0
    img[20:30, 30:40] = 70.0
    df = write_slices(tmp_path / "src", [
        {"image_id": "a", "patient_id": "p", "slice_index": 0, "has_hu": True, "array": img,
         "boxes": [[30.0, 20.0, 40.0, 30.0, "bleed"]], "label_hemorrhage": 1},
        {"image_id": "blank", "patient_id": "p", "slice_index": 1, "has_hu": True,
         "array": np.full((100, 100), -1000.0, np.float32), "label_hemorrhage": 0}])
    cache = build_cache(df, tmp_path / "c", PreprocessConfig(size=50, crop_head=True), **LOADERS)
    frames = cache.file_frames([0, 1])
    np.testing.assert_allclose(frames, [[44 / 50, 44 / 50, 18, 8], [2, 2, 0, 0]])  # square (y0 8, x0 18, side 44)
    np.testing.assert_allclose(boxes_to_file(cache.boxes[0], frames[0]), [[30, 20, 40, 30]], atol=1e-4)
    np.testing.assert_allclose(boxes_to_cache(boxes_to_file(cache.boxes[0], frames[0]), frames[0]), cache.boxes[0],
                               atol=1e-4)
    task = TASKS.get("detect")(apply_overrides(TrainConfig(), ["task=detect", "preprocess.crop_head=true",
                                                                "preprocess.size=50"]))
    dataset = task.dataset(df, cache, augment=False)
    np.testing.assert_allclose(dataset.gt_boxes[0], [[30, 20, 40, 30]])
    # a detection exactly on the cached box is reported at the file's box; one on the blank slice is scaled by 2
    det = np.full((2, 1, 5), -1.0, np.float32)
    det[0, 0] = [*cache.boxes[0][0], 0.9]
    det[1, 0] = [5, 5, 10, 10, 0.8]
    boxes, scores = task.split_detections(det, frame=dataset.frame)
    np.testing.assert_allclose(boxes[0], [[30, 20, 40, 30]], atol=1e-4)
    np.testing.assert_allclose(boxes[1], [[10, 10, 20, 20]])


def test_masks_found_in_the_head_square_go_back_to_file_pixels_and_mm_follow_the_square(tmp_path):
    """A segmentation run with ``crop_head``: its mask goes back where the square lies in the file, and its mm per
    pixel (HD95, mL) are those of the square's pixels, not the file's."""
    from medsift.engine.config import apply_overrides, TrainConfig
    from medsift.preprocess.skull import crop_square, paste_square
    from medsift.tasks import TASKS
    from medsift.tasks.seg_predict import to_file_frame

    img = np.full((100, 100), -1000.0, np.float32)
    img[10:50, 20:60] = 40.0
    mask = np.zeros((100, 100), bool)
    mask[20:30, 30:40] = True
    df = write_slices(tmp_path / "src", [
        {"image_id": "a", "patient_id": "p", "slice_index": 0, "has_hu": True, "array": img, "mask": mask,
         "spacing_mm": 0.5, "label_hemorrhage": 1},
        {"image_id": "b", "patient_id": "p", "slice_index": 1, "has_hu": True, "array": img, "mask": mask,
         "spacing_mm": 0.5, "label_hemorrhage": 1}])
    cache = build_cache(df, tmp_path / "c", PreprocessConfig(size=88, crop_head=True), **LOADERS)
    square = tuple(int(v) for v in cache.index[["crop_y0", "crop_x0", "crop_side"]].iloc[0])
    assert square == (8, 18, 44)
    back = to_file_frame(np.asarray(cache.masks[0]), (100, 100), square=square)
    assert back.shape == (100, 100) and np.array_equal(back > 0, mask)
    task = TASKS.get("segment")(apply_overrides(TrainConfig(), ["task=segment", "preprocess.crop_head=true",
                                                                 "preprocess.size=88"]))
    ds = task.dataset(df, cache, augment=False)
    np.testing.assert_allclose(ds.spacing_mm, [0.25, 0.25])  # 44 file pixels of 0.5 mm over 88 cached pixels
    # pasting is the inverse of cropping, also for a square that reaches past the image
    for sq in ((8, 18, 44), (-5, 70, 40)):
        patch = crop_square(img, sq, fill=-1000.0)
        np.testing.assert_array_equal(paste_square(patch, sq, img.shape, fill=-1000.0)[max(sq[0], 0):sq[0] + sq[2],
                                                                                        sq[1]:sq[1] + sq[2]],
                                      img[max(sq[0], 0):sq[0] + sq[2], sq[1]:sq[1] + sq[2]])
    assert paste_square(np.ones((40, 40)), (-5, 70, 40), (100, 100)).sum() == 35 * 30


def test_crop_head_with_context_crops_a_series_with_one_square_so_neighbours_align(tmp_path):
    """With 2.5D context the slices of a series share the square around all their heads: a small head (top of
    the skull) and a large one keep their true relative size, and each channel of a stack is cropped alike."""
    def slice_with_head(y0, y1, x0, x1):
        img = np.full((100, 100), -1000.0, np.float32)
        img[y0:y1, x0:x1] = 40.0
        return img

    rows = [{"image_id": f"s{k}", "patient_id": "p", "series_id": "A", "slice_index": k, "has_hu": True,
             "array": slice_with_head(*box), "label_hemorrhage": 0}
            for k, box in enumerate([(10, 50, 20, 60), (20, 40, 30, 50), (10, 50, 20, 60)])]
    rows.append({"image_id": "other", "patient_id": "q", "series_id": "B", "slice_index": 0, "has_hu": True,
                 "array": slice_with_head(60, 80, 60, 80), "label_hemorrhage": 0})
    df = write_slices(tmp_path / "src", rows)
    per_slice = build_cache(df, tmp_path / "c0", PreprocessConfig(size=44, crop_head=True), **LOADERS)
    series = build_cache(df, tmp_path / "c1", PreprocessConfig(size=44, crop_head=True, context=1), **LOADERS)
    squares = lambda c: c.index[["crop_y0", "crop_x0", "crop_side"]].astype(int).values.tolist()  # noqa: E731
    # per slice: the small head gets its own, tighter square (side ceil(20 * 1.08) = 22)
    assert squares(per_slice)[1] == [19, 29, 22]
    # per series: series A's three slices share the square of its largest head; series B keeps its own
    assert squares(series)[:3] == [[8, 18, 44]] * 3
    assert squares(series)[3] == squares(per_slice)[3]
    # at 44 px over a 44-px square the small head keeps its 20 px, and the stack's channels line up
    centre = np.asarray(series.images[1, 1]) > 0
    assert centre.sum() == 20 * 20
    assert np.array_equal(np.asarray(series.images[1, 0]) > 0, np.asarray(series.images[0, 1]) > 0)
    assert (np.asarray(series.images[1, 0]) > 0).sum() == 40 * 40


def test_union_square_holds_every_square_and_skips_none():
    from medsift.preprocess.skull import union_square

    assert union_square([None, None]) is None
    assert union_square([(8, 18, 44), None]) == (8, 18, 44)
    y0, x0, side = union_square([(0, 0, 10), (5, 20, 10)])
    assert side == 30 and (y0, x0) == (-8, 0)  # 30 wide (x 0..30), 15 tall (y 0..15): centred in y, floored
    for sq in ((0, 0, 10), (5, 20, 10)):
        assert y0 <= sq[0] and x0 <= sq[1] and sq[0] + sq[2] <= y0 + side and sq[1] + sq[2] <= x0 + side


def test_mixup_is_refused_by_tasks_whose_targets_do_not_blend():
    """``mixup`` needs targets that blend (boxes and masks do not); every task takes ``crop_head`` (boxes and
    masks are mapped back out of the head square)."""
    from medsift.engine.config import apply_overrides, TrainConfig
    from medsift.tasks import TASKS

    for task in ("classify", "multilabel", "detect", "segment"):
        TASKS.get(task)(apply_overrides(TrainConfig(), [f"task={task}", "preprocess.crop_head=true",
                                                        "labels=[hemorrhage]"]))
        cfg = apply_overrides(TrainConfig(), [f"task={task}", "mixup=0.3", "labels=[hemorrhage]"])
        if task in ("classify", "multilabel"):
            TASKS.get(task)(cfg)
        else:
            with pytest.raises(ConfigError, match="mixup"):
                TASKS.get(task)(cfg)


def test_mixup_alpha_is_checked():
    with pytest.raises(ConfigError, match="mixup"):
        TrainConfig(mixup=-1)


def test_intensity_domain_of_a_row_follows_the_cache_decoding():
    import pandas as pd

    from medsift.engine.domain import describe, domain_warnings

    df = pd.DataFrame({"has_hu": [True, False, False, None],
                       "window_center": [None, 40.0, None, None], "window_width": [None, 80.0, None, None]})
    counts = lambda config: {k: describe(df, config)[k] for k in ("rows", "hu", "display")}  # noqa: E731
    assert counts(PreprocessConfig()) == {"rows": 4, "hu": 1, "display": 3}
    # re-windowing maps an 8-bit row back to HU when its window is known, or when an export window is given
    assert counts(PreprocessConfig(rewindow_8bit=True)) == {"rows": 4, "hu": 2, "display": 2}
    assert counts(PreprocessConfig(export_window=[40, 150])) == {"rows": 4, "hu": 4, "display": 0}
    trained_hu = {"rows": 100, "hu": 95, "display": 5}
    assert domain_warnings(trained_hu, df.iloc[:1], PreprocessConfig()) == []
    assert "3 of 4" in domain_warnings(trained_hu, df, PreprocessConfig())[0]
    mixed = {"rows": 100, "hu": 50, "display": 50}  # no training majority: nothing to compare with
    assert domain_warnings(mixed, df, PreprocessConfig()) == [] and domain_warnings(None, df, PreprocessConfig()) == []


def test_model_pixel_size_is_compared_with_training():
    """512-px slices of 0.45 mm cached at 256 px: 0.9 mm per model pixel. A 0.8 mm / 512 px site (a wide field of
    view) gives 1.6 mm: lesions at 0.56 of their training size are flagged; 0.5 mm is within tolerance."""
    import pandas as pd

    from medsift.engine.domain import describe, domain_warnings

    config = PreprocessConfig(size=256)
    site = lambda mm: pd.DataFrame({"has_hu": [True] * 3, "spacing_mm": [mm] * 3, "width": [512] * 3,  # noqa: E731
                                    "height": [512] * 3})
    trained = describe(site(0.45), config)
    assert trained["mm_per_px"] == pytest.approx(0.9)
    warned = domain_warnings(trained, site(0.8), config)
    assert len(warned) == 1 and "1.60 mm" in warned[0] and "0.56 times" in warned[0]
    assert domain_warnings(trained, site(0.5), config) == []
    assert domain_warnings(trained, site(0.8).drop(columns="spacing_mm"), config) == []  # unknown: no claim
    assert describe(site(0.45), PreprocessConfig(size=256, crop_head=True))["mm_per_px"] is None
