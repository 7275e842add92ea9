"""Diagnostic: re-score finished classify or segment runs with a left-right flip at test time.

Usage::

    python benchmarks/rescore_tta.py RUN [RUN ...]

For each run (its own workspace and split): predict val and test plainly and with the flip (classify: logits
averaged with the flipped input's; segment: ``segment.tta``), choose the threshold on val each way (max F1 /
max global Dice), and print val AUC or Dice and test F1 or Dice. Prints only: the figures go into the notes of
BENCHMARKS.md by hand of the person deciding, with this command.
"""

from __future__ import annotations

import argparse
import dataclasses
from contextlib import contextmanager


class FlipAveraged:
    """Wrap a classifier: the mean of its logits on the input and on the input flipped left-right."""

    def __init__(self, model) -> None:
        self.model = model

    def __call__(self, x):
        import torch

        return (self.model(x) + self.model(torch.flip(x, dims=(-1,)))) / 2

    def eval(self):
        self.model.eval()
        return self


@contextmanager
def flipped(enabled: bool):
    """While active, runs loaded by :func:`medsift.engine.runner.load_run` predict with the flip."""
    import medsift.engine.runner as runner

    original = runner.load_run

    def load(*args, **kwargs):
        task, model, meta, dev = original(*args, **kwargs)
        if enabled and task.name == "segment":
            task.options = dataclasses.replace(task.options, tta=True)
        elif enabled:
            model = FlipAveraged(model)
        return task, model, meta, dev

    runner.load_run = load
    try:
        yield
    finally:
        runner.load_run = original


def rescore(run: str) -> None:
    from sklearn.metrics import f1_score, roc_auc_score

    from medsift.engine.runner import predict_split

    for tta in (False, True):
        with flipped(tta):
            val, test = predict_split(run, split="val"), predict_split(run, split="test")
        task = val["task"]
        cal = task.calibrate(val["predictions"], val["dataset"])
        name = "flip" if tta else "plain"
        if task.name == "segment":
            m = task.evaluate(test["predictions"], test["dataset"], calibration=cal, out_dir=None)
            print(f"{run} {name}: val dice {cal['val_dice_global']:.4f} (threshold {cal['threshold']:.2f}), "
                  f"test dice_global {m['dice_global']:.4f}", flush=True)
            continue
        yv, sv, _, _ = task.aligned(val["predictions"], val["dataset"])
        yt, st, _, _ = task.aligned(test["predictions"], test["dataset"])
        thr = cal["thresholds"][0]
        print(f"{run} {name}: val auc {roc_auc_score(yv[:, 0], sv[:, 0]):.4f} (threshold {thr:.3f}), test auc "
              f"{roc_auc_score(yt[:, 0], st[:, 0]):.4f}, test f1 {f1_score(yt[:, 0], st[:, 0] >= thr):.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    for run in args.runs:
        rescore(run)


if __name__ == "__main__":
    main()
