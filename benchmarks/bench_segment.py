"""Segmentation of perihematomal edema (PHE) on the real PHE-SICH subset, trained on CPU; inference speed.

Usage::

    nice python benchmarks/bench_segment.py [--minutes 12] [--workspace WS] [--skip-train]
    python benchmarks/run.py --only segment

Steps:

1. Inference latency of the trained network (``--model``) on one 512 x 512 slice, ``torch.set_num_threads(2)``:
   whole slice and head bounding box (what ``predict_batch`` runs), median of ``repeats`` x 5 calls.
2. Hematoma derivation (:mod:`medsift.label.hematoma`) on phantoms whose true IPH label is known (NIfTI
   label volumes): Dice of the mask derived from the edema rim against the true hematoma.
3. Real data: ingest PHE-SICH into a temporary workspace (or ``--workspace``), patient-level split
   (test 20% of patients, val 10%, seed 0), cache at full resolution (512 px, brain window, 2.5D context 1),
   train the ``segment`` task through the engine with a wall-clock budget (``--minutes``; rotation/zoom of the
   crops, a moving average of the weights validated and kept), calibrate the
   threshold on val, evaluate on the held-out test patients (post-processed: inside the head, components
   >= 10 px), report global / per-image / per-patient Dice and HD95 with patient-bootstrap intervals, and
   training throughput (crops/s).
4. With ``--members K``: K seeds of the same config, trained by ``medsift train`` 1 thread each, two at a time,
   and their soft vote (:mod:`medsift.label.seg_ensemble`: mean probability map, threshold chosen on val),
   reported beside member 0's single-model rows.

Targets (issue): global PHE Dice >= 0.55 on held-out patients after <= 90 min of CPU training; inference of a
512 x 512 slice under 150 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "phe-sich-ct-ids"
MINUTES = 90.0
MODEL = "unet_tiny"  # 13 ms per 512-px slice on 2 threads; MONAI unet (--model unet) did no better in 85 min
CROP = 160
RECIPE = "ct-segment"  # src/medsift/engine/recipes/: batch 8, 4000 crops between validations, EMA 0.998...
HEMA_LIMIT = 100  # real slices (with edema mask and boxes, manifest order) for the hematoma agreement
THREADS = 2
EXTRA: list[str] = []  # --set KEY=VALUE overrides of the training config
MEMBERS = 1  # --members K: K seeds of the same config, 1 thread each, two at a time, then their soft vote


def latency_ms(*, repeats: int, model_name: str = MODEL, context: int = 1) -> dict[str, list[float]]:
    """Per-call milliseconds of one 512 x 512 slice through the network: whole slice and a 384 x 416 head box."""
    import torch

    from medsift.tasks import segment as sg
    from medsift.tasks.seg_models import build_model

    torch.set_num_threads(THREADS)
    model = build_model(model_name, in_channels=2 * context + 1).eval()
    x = torch.rand(1, 2 * context + 1, 512, 512)
    box = torch.as_tensor([[60, 444, 48, 464]])
    out: dict[str, list[float]] = {"whole": [], "head_box": [], "whole_cpu": [], "head_box_cpu": []}
    with torch.inference_mode():
        sg.predict_logits(model, x, options=sg.SegmentOptions(head_crop=False))  # warm-up
        for _ in range(max(repeats, 1) * 5):
            for key, kwargs in (("whole", {"options": sg.SegmentOptions(head_crop=False)}),
                                ("head_box", {"boxes": box, "options": sg.SegmentOptions(head_crop=True)})):
                t0, c0 = time.perf_counter(), time.process_time()
                sg.predict_logits(model, x, **kwargs)
                out[key].append((time.perf_counter() - t0) * 1000)
                out[f"{key}_cpu"].append((time.process_time() - c0) * 1000)
    return out


def hematoma_on_phantoms(n_patients: int = 6, size: int = 256) -> dict[str, float]:
    """Dice of rim-derived hematoma masks against the phantoms' true IPH label."""
    import json as _json

    import nibabel as nib
    import numpy as np
    import pandas as pd
    from PIL import Image

    from medsift.label.hematoma import compare_masks, derive_hematoma_mask
    from medsift.synth.dataset import generate
    from medsift.synth.lesions import LABEL_MAP

    with tempfile.TemporaryDirectory(prefix="bench-hema-") as tmp:
        ds = generate(tmp, n_patients=n_patients, seed=0, size=size, slices=(16, 20),
                      layouts=("phe-sich", "nifti"), defects=False)
        t = pd.read_csv(ds.truth_slices, dtype={"image_id": str, "patient_id": str})
        vols: dict[str, np.ndarray] = {}
        derived, truth, from_box = [], [], []
        for r in t.itertuples():
            img = np.asarray(Image.open(ds.phe_sich / "images" / f"{r.image_id}.png"))
            rim = np.asarray(Image.open(ds.phe_sich / "masks" / f"{r.image_id}.png")) > 0
            label_path = str(ds.nifti / r.nifti_path.replace(".nii.gz", "_label.nii.gz"))
            if label_path not in vols:
                vols[label_path] = np.asarray(nib.load(label_path).dataobj).transpose(2, 1, 0)
            truth.append(vols[label_path][int(r.nifti_index)] == LABEL_MAP["iph"])
            derived.append(derive_hematoma_mask(img, rim=rim, region="rim"))
            boxes = [b for b in _json.loads(r.boxes) if b[4] == "iph"]
            from_box.append(derive_hematoma_mask(img, rim=rim, boxes=boxes, region="box"))
        rim_cmp = compare_masks(derived, truth)
        box_cmp = compare_masks(from_box, truth)
    return {"rim_dice_global": rim_cmp["dice_global"], "rim_dice_per_image": rim_cmp["dice_per_image"],
            "box_dice_global": box_cmp["dice_global"], "n_images_with_iph": rim_cmp["n_images_with_lesion"]}


def hematoma_on_real(df) -> dict[str, float]:
    """Real PHE slices with an edema mask and hemorrhage boxes: agreement of the hematoma derived from the rim
    with the one derived from the boxes (no true hematoma mask exists), and areas in pixels."""
    import numpy as np

    from medsift.io import load_mask, load_slice
    from medsift.label.hematoma import compare_masks, derive_hematoma_mask

    rim_d, box_d, rim_px, hema_px = [], [], [], []
    for _, row in df.iterrows():
        if len(rim_d) >= HEMA_LIMIT:
            break
        if not isinstance(row["mask_path"], str) or not row["boxes"]:
            continue
        rim = load_mask(row)
        if rim is None or not rim.any():
            continue
        img = load_slice(row)
        rim_d.append(derive_hematoma_mask(img, rim=rim, region="rim"))
        box_d.append(derive_hematoma_mask(img, rim=rim, boxes=row["boxes"], region="box"))
        rim_px.append(int(rim.sum()))
        hema_px.append(int(box_d[-1].sum()))
    cmp = compare_masks(rim_d, box_d)
    return {"n_slices": len(rim_d), "rim_vs_box_dice_global": cmp["dice_global"],
            "median_rim_px": float(np.median(rim_px)) if rim_px else float("nan"),
            "median_hematoma_px": float(np.median(hema_px)) if hema_px else float("nan")}


def segment_config(minutes: float, threads: int = THREADS):
    """The recipe ``ct-segment`` (what `medsift train WS --config ct-segment` runs) with this benchmark's
    ``--model``, ``--crop``, threads, budget and ``--set`` items."""
    from medsift.engine.config import apply_overrides, load_config

    return apply_overrides(load_config(RECIPE), [f"model.arch={MODEL}", f"segment.crop={CROP}", f"threads={threads}",
                                                 f"max_minutes={minutes}", *EXTRA])


def real_run(cfg, *, workspace: Path | None, root: Path) -> dict[str, float]:
    """Ingest, split, train ``cfg`` (its wall-clock budget), evaluate on the test patients; returns metrics +
    timings."""
    from medsift.engine.runner import evaluate_run, train_run
    from medsift.ingest import ingest
    from medsift.split import assign_splits
    from medsift.tasks import TASKS
    from medsift.tasks.segment import SegmentTask
    from medsift.workspace import Workspace

    if "segment" not in TASKS:
        TASKS._items["segment"] = SegmentTask  # until medsift.tasks registers it
    timings: dict[str, float] = {}
    if workspace is None:
        workspace = root / "ws"
        t0 = time.perf_counter()
        ingest(DATA, layout="phe-sich", workspace=workspace)
        timings["ingest_s"] = time.perf_counter() - t0
    ws = Workspace.at(workspace)
    df = ws.read()
    if "split" not in df.columns or df["split"].isna().all():
        ws.write(assign_splits(df, test=0.2, val=0.1, folds=0, seed=0), reason="bench_segment split")
    run = root / "run"
    t0 = time.perf_counter()
    if MEMBERS > 1:
        members = train_members(ws.root, root, cfg, MEMBERS)
        meta = json.loads((members[0] / "model.json").read_text())
        run = members[0]
    else:
        meta = train_run(ws.root, run, cfg, show_progress=False)
    timings["train_wall_s"] = time.perf_counter() - t0
    timings["train_loop_s"] = float(meta["train_seconds"])
    import pandas as pd

    history = pd.read_csv(run / "history.csv")
    timings["crops_per_s"] = float(history["train_images_per_s"].median())
    timings["epochs"] = float(meta["epochs_run"])
    t0 = time.perf_counter()
    metrics, eval_dir = evaluate_run(run, split="test")
    timings["eval_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics.update({f"hema_{k}": v for k, v in hematoma_on_real(ws.read()).items()})
    timings["hematoma_s"] = time.perf_counter() - t0
    metrics.update(timings)
    metrics["threshold"] = float(meta["calibration"]["threshold"])
    metrics["eval_dir"] = str(eval_dir)
    if MEMBERS > 1:
        from medsift.label.seg_ensemble import evaluate_seg_ensemble

        t0 = time.perf_counter()
        ens = evaluate_seg_ensemble(members, ws.root, root / "ensemble", split="test", bootstrap=300)
        metrics.update({k: v for k, v in ens.items() if k.startswith(("ensemble_", "run"))})
        metrics["ensemble_eval_s"] = time.perf_counter() - t0
        metrics["ensemble_dir"] = str(root / "ensemble")
    return metrics


def train_members(workspace: Path, root: Path, cfg, k: int) -> list[Path]:
    """Train ``k`` seeds of ``cfg`` with ``medsift train`` (1 thread each, two processes at a time, so the two
    cores stay busy); returns the run folders ``root/member<i>``."""
    import subprocess
    import sys

    from medsift.engine.config import apply_overrides

    from medsift.engine.runner import cache_for
    from medsift.manifest import active
    from medsift.workspace import Workspace

    cfg = apply_overrides(cfg, ["threads=1"])
    ws = Workspace.at(workspace)
    cache_for(ws, active(ws.read()), cfg)  # built once here, not by two members at the same time
    (root / "member-config.yaml").write_text(cfg.to_yaml())
    runs = [root / f"member{i}" for i in range(k)]
    exe = Path(sys.executable).with_name("medsift")
    for start in range(0, k, 2):
        procs = []
        for i in range(start, min(start + 2, k)):
            cmd = [str(exe), "train", str(workspace), "--task", "segment", "--config", str(root / "member-config.yaml"),
                   "--set", f"seed={int(cfg.seed) + i}", "--out", str(runs[i])]
            procs.append(subprocess.Popen(cmd, stdout=open(root / f"member{i}.log", "w"), stderr=subprocess.STDOUT))
        for proc in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"member training failed: see {root}/member*.log")
    return runs


def run(*, repeats: int = 3, minutes: float = MINUTES, workspace: Path | None = None,
        skip_train: bool = False, threads: int = THREADS) -> dict:
    """Benchmark entry for ``benchmarks/run.py``."""
    rows: list[dict] = []
    notes: list[str] = []
    if not skip_train and DATA.is_dir():
        import shutil

        root = Path(tempfile.mkdtemp(prefix="bench-segment-", dir="/tmp"))  # run + eval kept; cache removed
        cfg = segment_config(minutes, threads)
        m = real_run(cfg, workspace=workspace, root=root)
        if workspace is None:
            shutil.rmtree(root / "ws" / "cache", ignore_errors=True)
        for key, target in (("dice_global", ">= 0.55"), ("dice_per_image", "-"), ("dice_per_patient", "-"),
                            ("iou_global", "-"), ("sensitivity_global", "-"), ("precision_global", "-"),
                            ("hd95", "-"), ("nsd_global", "-"), ("nsd_per_image", "-"), ("slice_f1", "-")):
            value = m.get(key)
            lo, hi = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
            label = f"PHE {key} (test patients)" + (f", 95% CI {lo:.3f}-{hi:.3f}" if lo is not None and hi is not None
                                                      else "")
            rows.append({"metric": label, "value": float(value) if value is not None else float("nan"),
                         "unit": "px" if key == "hd95" else "", "target": target, "runs": []})
        rows.append({"metric": f"training throughput ({MODEL}, {CROP}-px crops of 512-px slices, batch "
                               f"{cfg.batch_size}, {threads} thread(s))", "value": m["crops_per_s"],
                     "unit": "crops/s", "target": "-", "runs": []})
        rows.append({"metric": f"real: hematoma from rim vs from boxes, Dice global ({m['hema_n_slices']} slices)",
                     "value": m["hema_rim_vs_box_dice_global"], "unit": "", "target": "-", "runs": []})
        notes.append(f"real PHE slices: median edema rim {m['hema_median_rim_px']:.0f} px, median derived hematoma "
                     f"{m['hema_median_hematoma_px']:.0f} px")
        notes.append(f"run folder with overlays: {m['eval_dir']}")
        notes.append(f"trained {m['train_loop_s'] / 60:.1f} min on {threads} thread(s) (budget {minutes} min, "
                     f"{int(m['epochs'])} epochs of {cfg.samples_per_epoch} crops, lr {cfg.lr:g} warm-up + cosine "
                     f"over the budget; crops flipped, rotated +-15 deg, zoomed 0.87-1.15, gamma), threshold "
                     f"{m['threshold']:.2f} chosen on val; test {m['n_images']} slices / {m['n_patients']} patients; "
                     f"evaluation {m['eval_s']:.0f} s")
    lat = latency_ms(repeats=repeats, model_name=MODEL)
    rows.append({"metric": f"inference 512x512 slice, whole ({MODEL}, 2.5D, 2 threads)",
                 "value": statistics.median(lat["whole"]), "unit": "ms", "target": "< 150", "runs": lat["whole"]})
    rows.append({"metric": "inference 512x512 slice, head box 384x416",
                 "value": statistics.median(lat["head_box"]), "unit": "ms", "target": "< 150",
                 "runs": lat["head_box"]})
    rows.append({"metric": "inference CPU time (both threads summed), head box", "value":
                 statistics.median(lat["head_box_cpu"]), "unit": "ms CPU", "target": "-", "runs": lat["head_box_cpu"]})
    m_ens = m if not skip_train and DATA.is_dir() and MEMBERS > 1 else None
    if m_ens is not None:
        for key in ("dice_global", "dice_per_image", "dice_per_patient", "hd95"):
            lo, hi = m_ens[f"ensemble_{key}_ci_low"], m_ens[f"ensemble_{key}_ci_high"]
            rows.append({"metric": f"PHE {key}, soft vote of {MEMBERS} members (test patients), 95% CI {lo:.3f}-{hi:.3f}",
                         "value": m_ens[f"ensemble_{key}"], "unit": "px" if key == "hd95" else "",
                         "target": ">= 0.55" if key == "dice_global" else "-", "runs": []})
        members = [m_ens[f"run{i}_dice_global"] for i in range(MEMBERS)]
        notes.append(f"{MEMBERS} members (the config's seed + 0..{MEMBERS - 1}) trained {minutes} min each on 1 "
                     f"thread, two at a time ({m['train_wall_s'] / 60:.0f} min wall for all); members' test "
                     f"dice_global at their own thresholds without post-processing "
                     + ", ".join(f"{d:.3f}" for d in members)
                     + f"; the vote's threshold {m_ens['ensemble_threshold']:.2f} chosen on val; vote without "
                     f"post-processing {m_ens['ensemble_dice_global_raw']:.3f}; single-model rows above are member 0; "
                     f"vote folder {m_ens['ensemble_dir']}")
    hema = hematoma_on_phantoms()
    rows.append({"metric": "derived hematoma vs true IPH (phantoms), Dice global, from edema rim",
                 "value": hema["rim_dice_global"], "unit": "", "target": "-", "runs": []})
    rows.append({"metric": "derived hematoma vs true IPH (phantoms), Dice global, from IPH boxes",
                 "value": hema["box_dice_global"], "unit": "", "target": "-", "runs": []})
    notes.append(f"phantom hematoma check on {hema['n_images_with_iph']} slices with IPH")
    return {"title": "Segmentation (PHE) and inference speed",
            "command": f"python benchmarks/bench_segment.py --minutes {minutes} --threads {threads} --model {MODEL} "
                       f"--crop {CROP}" + "".join(f" --set {o}" for o in EXTRA)
                       + (f" --members {MEMBERS}" if MEMBERS > 1 else ""),
            "data": "PHE-SICH-CT-IDS 83-patient subset (../shared/data), held-out test patients; phantoms",
            "rows": rows, "notes": "; ".join(notes)}


def main() -> None:
    global MODEL, CROP, EXTRA, MEMBERS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=MINUTES)
    ap.add_argument("--workspace", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--threads", type=int, default=THREADS, help="torch threads for training (1 when sharing)")
    ap.add_argument("--model", default=MODEL, help="segmentation network (medsift.tasks.seg_models)")
    ap.add_argument("--crop", type=int, default=CROP, help="training crop side, pixels of the 512-px slice")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra training config override (repeatable), e.g. ema_decay=0.998")
    ap.add_argument("--members", type=int, default=MEMBERS,
                    help="train K seeds (1 thread each, two at a time) and report their soft vote too")
    args = ap.parse_args()
    MODEL, CROP, EXTRA, MEMBERS = args.model, args.crop, args.set, max(1, args.members)
    t0 = time.perf_counter()
    out = run(repeats=args.repeats, minutes=args.minutes, workspace=args.workspace, skip_train=args.skip_train,
              threads=args.threads)
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import save_result  # benchmarks/run.py

    save_result("segment", out, started=t0)
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
