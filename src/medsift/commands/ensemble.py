"""`medsift ensemble WS --out DIR`: vote runs, k-fold models or seeds trained side by side; two-stage (CNN
features + SVM/GBT), a contrast gate, and a classify -> segment cascade (``--slice-gate``)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def ensemble(
        workspace: Path = typer.Argument(..., help="Workspace to evaluate on (split, with folds for --kfold)."),
        out: Path = typer.Option(..., help="Output folder (fold runs, metrics.json, predictions.csv)."),
        run: List[Path] = typer.Option([], "--run", help="Member run folder (repeatable)."),
        kfold: bool = typer.Option(False, help="Train one run per fold of WS (fold = validation) and add them."),
        seeds: int = typer.Option(0, help="Train this many runs of the config, seeds seed..seed+N-1, on WS's "
                                          "train/val split and add them."),
        jobs: int = typer.Option(1, help="With --seeds: runs trained at a time, each in its own process "
                                         "(threads = cores // jobs unless the config sets threads)."),
        config: Optional[str] = typer.Option(None, help="YAML TrainConfig or recipe name of the trained runs."),
        epochs: Optional[int] = typer.Option(None, help="Epochs of the trained runs."),
        max_minutes: Optional[float] = typer.Option(None, help="Time budget of each trained run."),
        set_: List[str] = typer.Option([], "--set", help="Config override key=value for the trained runs."),
        vote: str = typer.Option("soft", help="soft (mean probability) | hard (majority at each run's threshold)."),
        split: str = typer.Option("test", help="Split to vote on: train | val | test | all (a soft vote's threshold "
                                               "is chosen on val when WS has one)."),
        bootstrap: int = typer.Option(1000, help="Patient-bootstrap resamples of the ensemble's 95% CIs."),
        two_stage: Optional[str] = typer.Option(None, help="Also fit svm | gbt | logreg on the first run's CNN "
                                                           "features (grid search), evaluated on test."),
        gate: bool = typer.Option(False, help="With --two-stage: one model per contrast group (low/high)."),
        slice_gate: Optional[Path] = typer.Option(None, help="Segmentation runs only: a classify run trained on the "
                                                             "same split; lesion maps are kept only on the slices it "
                                                             "calls positive (classify -> segment cascade)."),
        gate_threshold: Optional[float] = typer.Option(None, help="With --slice-gate: the classifier probability "
                                                                  "that keeps a slice (default: chosen on val, see "
                                                                  "--gate-sensitivity)."),
        gate_sensitivity: float = typer.Option(0.98, help="With --slice-gate: the share of validation slices with a "
                                                          "lesion the gate must keep; sets its threshold."),
    ) -> None:
        """Evaluate an ensemble of runs (and optional two-stage / gated models) on WS's SPLIT."""
        from rich.console import Console

        from medsift.engine.config import config_from_cli, load_config
        from medsift.errors import ConfigError
        from medsift.label.ensemble import evaluate_ensemble, train_kfold, train_seeds

        console = Console()
        runs = list(run)
        if kfold or seeds:
            cfg = config_from_cli(load_config(config), [], max_minutes=max_minutes, epochs=epochs, sets=set_)
            if kfold:
                runs += train_kfold(workspace, out, cfg, log=console.print)
            if seeds:
                runs += train_seeds(workspace, out, cfg, seeds=seeds, jobs=jobs, log=console.print)
        if not runs:
            raise ConfigError("no member runs: pass --run RUN (repeatable), --kfold and/or --seeds N")
        if slice_gate is not None:
            from medsift.label.seg_cascade import evaluate_seg_cascade

            m = evaluate_seg_cascade(runs, slice_gate, workspace, out, split=split, gate_threshold=gate_threshold,
                                     gate_sensitivity=gate_sensitivity, bootstrap=bootstrap)
            console.print(f"cascade of {len(runs)} segmentation run(s) gated by {slice_gate} on {split}: dice_global "
                          f"{m['cascade_dice_global']:.3f} ({m['cascade_dice_global_ci_low']:.3f}-"
                          f"{m['cascade_dice_global_ci_high']:.3f}); raw {m['cascade_dice_global_raw']:.3f} vs "
                          f"{m['ungated_dice_global_raw']:.3f} ungated; {int(m['slices_gated'])} slices gated "
                          f"({int(m['lesion_slices_gated'])} with a lesion) at {m['gate_threshold']:.3f}; "
                          f"written to {out}")
            return
        metrics = evaluate_ensemble(runs, workspace, out, vote=vote, split=split, bootstrap=bootstrap)
        console.print(f"{vote} vote of {len(runs)} runs on {split}: " + _summary(metrics, len(runs)))
        if two_stage:
            from medsift.label.two_stage import two_stage_run

            res = two_stage_run(runs[0], workspace, out, kind=two_stage, gate=gate)
            console.print(f"two-stage {two_stage}{' (contrast-gated)' if gate else ''}: test AUC "
                          f"{res['test']['auc']:.3f} vs CNN {res['cnn_test']['auc']:.3f}; best {res['best_params']}")
        console.print(f"written to {out}")


def _summary(metrics: dict, n_runs: int) -> str:
    """One line: the vote's headline metric with its CI, and the members' values of the same metric."""
    key = next(k for k in ("dice_global", "macro_f1", "f1") if f"ensemble_{k}" in metrics)
    shown = ("auc", key) if key == "f1" else ("macro_auc", key) if key == "macro_f1" else (key,)
    parts = [f"{k} {metrics[f'ensemble_{k}']:.3f} ({metrics[f'ensemble_{k}_ci_low']:.3f}-"
             f"{metrics[f'ensemble_{k}_ci_high']:.3f})" for k in shown]
    members = ", ".join(f"{metrics[f'run{i}_{key}']:.3f}" for i in range(n_runs))
    thr = f" at {metrics['ensemble_threshold']:.3f}" if "ensemble_threshold" in metrics else ""
    return "; ".join(parts) + f"{thr}; members' {key} {members}"
