"""The one training loop for every task.

Public entry points:

- :func:`medsift.engine.runner.train_run` ``(workspace, out, config, *, resume=False)`` -> ``model.json`` dict
- :func:`medsift.engine.runner.evaluate_run` ``(run, workspace=None, *, split="test", gradcam=4)``
  -> ``(metrics, eval_dir)``
- :func:`medsift.engine.inference.predict_files` ``(run, paths, *, gradcam_dir=None)`` -> list of dicts
- :func:`medsift.engine.loop.fit` ``(task, datasets, config, out_dir, *, resume=False)`` -> ``FitResult``
- :class:`medsift.engine.config.TrainConfig` (YAML round trip, ``apply_overrides``)
"""
