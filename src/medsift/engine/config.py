"""Training configuration: frozen dataclasses <-> YAML, with ``key=value`` overrides from the CLI.

Example:
    >>> cfg = apply_overrides(TrainConfig(), ["lr=0.01", "model.arch=resnet34"])
    >>> (cfg.lr, cfg.model.arch)
    (0.01, 'resnet34')
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Mapping, Sequence

from medsift.errors import ConfigError


class LossKind(str, Enum):
    """Loss of the label tasks: plain BCE, BCE with per-class ``pos_weight`` = neg/pos, or focal loss."""

    BCE = "bce"
    WEIGHTED = "weighted"
    FOCAL = "focal"


class SamplerKind(str, Enum):
    """Training sampler: uniform shuffle, or class-balanced sampling with replacement."""

    SHUFFLE = "shuffle"
    BALANCED = "balanced"


class SchedulerKind(str, Enum):
    """Learning-rate schedule over the planned steps."""

    ONECYCLE = "onecycle"
    COSINE = "cosine"
    CONSTANT = "constant"


def _check_enum(cls: type[Enum], value: Any, name: str) -> str:
    try:
        return cls(value).value
    except ValueError:
        raise ConfigError(f"{name} must be one of {[m.value for m in cls]}; got {value!r}") from None


@dataclass(frozen=True)
class ModelConfig:
    """Network choice.

    Attributes:
        arch: a name from :data:`medsift.tasks.models.MODELS` (resnet18, resnet34, efficientnet_b0, resnet_small...;
            ``head_features_gbm``: gradient-boosted trees on measured head-CT features, classify/multilabel only).
        attention: ``none``, ``se`` (squeeze-excitation) or ``cbam`` after each residual stage (ResNets).
        width: base channel width of ``resnet_small`` (ignored by the torchvision models).
        pretrained: path to a local state dict (``medsift pretrain`` output or any matching weights), or None.
        dropout: dropout before the classifier.
        box_supervision: weight of an auxiliary localisation loss (0 = off). Above 0, a 1x1 convolution on the
            last feature map learns which cells the slice's annotation boxes reach into (negatives: none), next to the
            slice label: spatial supervision that the boxes give for free (classify task; needs boxes).
    """

    arch: str = "resnet18"
    attention: str = "none"
    width: int = 32
    pretrained: str | None = None
    dropout: float = 0.0
    box_supervision: float = 0.0

    def __post_init__(self) -> None:
        if self.attention not in ("none", "se", "cbam"):
            raise ConfigError(f"model.attention must be none, se or cbam; got {self.attention!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1); got {self.dropout!r}")
        if not float(self.box_supervision) >= 0.0:
            raise ConfigError(f"model.box_supervision must be a weight >= 0; got {self.box_supervision!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved as ``RUN/config.yaml``.

    Attributes:
        task: a name in :data:`medsift.tasks.TASKS` (classify, multilabel, ...).
        labels: label names; column ``label_<name>`` of the manifest each.
        preprocess: keyword arguments of :class:`medsift.preprocess.config.PreprocessConfig`.
        epochs, batch_size, lr, weight_decay: optimisation (AdamW).
        threads: torch intra-op CPU threads (None = torch's default); 1-2 on a shared CPU.
        max_minutes: wall-clock budget of the training loop (None = no limit): the epochs that fit are planned up front
            from a timing probe (``engine/budget.py``), with the clock as a hard stop.
        max_steps_per_epoch: cap on optimisation steps per epoch (None = full epoch).
        samples_per_epoch: training draws between two validations (None = the training set's size); raise it
            when validation is a large share of an epoch (small sets, slow whole-slice validation).
        ema_decay: per-step decay of an exponential moving average of the weights (0 = off; 0.99 averages over
            about 100 steps). When on, validation, ``best.pt`` and therefore evaluation and prediction use the
            averaged weights: smoother than the last step's, and less dependent on which epoch validation picks.
        mixup: Beta(alpha, alpha) of mixup for the per-slice label tasks (0 = off; 0.2-0.4 is usual): each
            training batch is blended with a shuffled copy of itself, images and targets alike. A regulariser for
            small sets; classify and multilabel only.
        early_stop_metric: validation metric to maximise (``auc``, ``f1``, ``macro_auc``, ``dice_global``,
            ``map50``; ``loss`` is minimised); ``auto`` = the task's own headline metric.
        patience: epochs without improvement before stopping (0 = never stop early).
        augment: augmentation strength: none | light | default | strong.
        threshold_rule: ``max_f1`` | ``sensitivity`` | ``fixed``; ``target_sensitivity`` for the second.
    """

    task: str = "classify"
    labels: tuple[str, ...] = ("hemorrhage",)
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: str = SchedulerKind.ONECYCLE.value
    loss: str = LossKind.WEIGHTED.value
    focal_gamma: float = 2.0
    sampler: str = SamplerKind.SHUFFLE.value
    augment: str = "default"
    num_workers: int = 1
    threads: int | None = None
    max_minutes: float | None = None
    max_steps_per_epoch: int | None = None
    samples_per_epoch: int | None = None
    ema_decay: float = 0.0
    mixup: float = 0.0
    early_stop_metric: str = "auto"
    patience: int = 5
    threshold_rule: str = "max_f1"
    target_sensitivity: float = 0.95
    bootstrap: int = 1000
    model: ModelConfig = field(default_factory=ModelConfig)
    preprocess: Mapping[str, Any] = field(default_factory=lambda: {"size": 256, "windows": ["brain"], "context": 0})
    segment: Mapping[str, Any] = field(default_factory=dict)
    detect: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        labels = (self.labels,) if isinstance(self.labels, str) else tuple(self.labels)
        if isinstance(self.labels, str) and "," in self.labels:
            labels = tuple(s.strip() for s in self.labels.split(",") if s.strip())
        if not labels:
            raise ConfigError("labels must name at least one label; got none")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "loss", _check_enum(LossKind, self.loss, "loss"))
        object.__setattr__(self, "sampler", _check_enum(SamplerKind, self.sampler, "sampler"))
        object.__setattr__(self, "scheduler", _check_enum(SchedulerKind, self.scheduler, "scheduler"))
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)!r}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0; got {self.lr!r}")
        if self.augment not in ("none", "light", "default", "strong"):
            raise ConfigError(f"augment must be none, light, default or strong; got {self.augment!r}")
        if self.samples_per_epoch is not None and int(self.samples_per_epoch) < 1:
            raise ConfigError(f"samples_per_epoch must be >= 1 or null; got {self.samples_per_epoch!r}")
        if not 0.0 <= float(self.ema_decay) < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 = off); got {self.ema_decay!r}")
        if not 0.0 <= float(self.mixup) <= 10.0:
            raise ConfigError(f"mixup is the Beta alpha, in [0, 10] (0 = off); got {self.mixup!r}")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0; got {self.num_workers!r}")
        if isinstance(self.model, Mapping):
            object.__setattr__(self, "model", _from_mapping(ModelConfig, self.model, "model"))
        object.__setattr__(self, "preprocess", dict(self.preprocess))

    def preprocess_config(self):
        """The :class:`~medsift.preprocess.config.PreprocessConfig` of this run."""
        from medsift.preprocess.config import PreprocessConfig

        return PreprocessConfig.from_dict(self.preprocess)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-safe)."""
        d = dataclasses.asdict(self)
        d["labels"] = list(self.labels)
        d["preprocess"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(self.preprocess).items()}
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Build from a mapping; unknown keys fail listing the valid ones."""
        return _from_mapping(cls, data, "config")

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"config file {path} must hold a mapping; got {type(data).__name__}")
        return cls.from_dict(data)


def _from_mapping(cls: type, data: Mapping[str, Any], where: str):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown {where} key(s) {unknown}; valid: {sorted(known)}")
    return cls(**dict(data))


def _parse_value(text: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string; people mean the number
        try:
            return float(value)
        except ValueError:
            pass
    return value


def apply_overrides(config: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """Return ``config`` with ``key=value`` overrides applied (``model.arch=resnet34``, ``preprocess.size=192``).

    Values are parsed as YAML scalars/lists (``labels=[ivh,sah]``, ``max_minutes=null``).
    """
    data = config.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override must look like key=value; got {item!r}")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        target = data
        for part in parts[:-1]:
            if part not in target or not isinstance(target[part], dict):
                raise ConfigError(f"override {key!r}: {part!r} is not a config section; sections: model, preprocess")
            target = target[part]
        if len(parts) == 1 and parts[0] not in data:
            raise ConfigError(f"unknown config key {key!r}; valid: {sorted(data)}")
        target[parts[-1]] = _parse_value(raw)
    return TrainConfig.from_dict(data)


RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


def recipe_names() -> list[str]:
    """Names of the built-in recipes: the configs the benchmarks measured (``ct-classify``, ``ct-segment``...)."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def load_config(path: str | Path | None) -> "TrainConfig":
    """The YAML config at ``path``, a built-in recipe by name (see :func:`recipe_names`), or the defaults when None.

    A file that exists wins over a recipe of the same name.
    """
    if not path:
        return TrainConfig()
    if Path(path).is_file():
        return TrainConfig.from_yaml(path)
    if str(path) in recipe_names():
        return TrainConfig.from_yaml(RECIPES_DIR / f"{path}.yaml")
    raise ConfigError(f"config {path} is neither a file nor a built-in recipe; recipes: {', '.join(recipe_names())}")


def config_from_cli(cfg: "TrainConfig", overrides: Sequence[str], *, max_minutes: float | None = None,
                    epochs: int | None = None, device: str | None = None,
                    sets: Sequence[str] = ()) -> "TrainConfig":
    """The config a training verb runs with: ``cfg`` (see :func:`load_config`), then the verb's own
    ``overrides``, then the common options (``--max-minutes``, ``--epochs``, ``--device``), then ``--set`` items."""
    extra = list(overrides)
    for key, value in (("max_minutes", max_minutes), ("epochs", epochs), ("device", device)):
        if value is not None:
            extra.append(f"{key}={value}")
    return apply_overrides(cfg, extra + list(sets))
