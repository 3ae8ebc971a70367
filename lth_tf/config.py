"""Frozen dataclasses describing one experiment, their validation, and the stable experiment hash.

The hash covers the scientific fields only (dataset, model, training, pruning) and, as in
open_lth, only the fields whose value differs from its default: adding a new field with a
default later keeps every old experiment directory findable.
"""
import dataclasses
import hashlib
import json
from typing import Any, Dict, Tuple

from lth_tf.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
  """Which data to train on and how it is split.

  Attributes:
    name: a registered dataset (`fashion_mnist`, `cifar10`, `synthetic`, ...), any TFDS
      image-classification dataset as `tfds:NAME`, or a local Keras-layout file as `npz:PATH`.
    validation_size: examples held out of the training split for validation (the paper uses 5K).
    split_seed: seed of the deterministic validation hold-out and of the training subset.
    train_examples: if > 0, train on this many examples of the remaining training split.
    train_examples_per_class: if > 0, train on this many examples of each class.
    classes: if non-empty, keep only these class labels (relabelled 0..n-1 in this order).
  """
  name: str = "fashion_mnist"
  validation_size: int = 5000
  split_seed: int = 0
  train_examples: int = 0
  train_examples_per_class: int = 0
  classes: Tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Which network to build.

  Attributes:
    name: a registered model (`lenet300_100`, `conv2`, `conv4`, `conv6`, `vgg16`, `vgg19`,
      `resnet20`, ...).
    dropout: dropout rate on the fully connected layers (Conv-N); 0 disables it.
  """
  name: str = "lenet300_100"
  dropout: float = 0.0


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
  """How one network is trained. Lengths are in iterations, as in the papers.

  Attributes:
    optimizer: `adam` or `sgd` (SGD with momentum).
    learning_rate: base learning rate.
    momentum: SGD momentum.
    weight_decay: L2 penalty coefficient on prunable kernels (0 disables it).
    batch_size: examples per iteration.
    iterations: training length.
    lr_schedule: `constant` or `step` (multiply by `lr_decay_factor` at each `lr_decay_steps`).
    lr_decay_steps: iterations at which a step schedule decays.
    lr_decay_factor: factor of each decay.
    warmup_iterations: linear warm-up from 0 to the base rate over this many iterations.
    eval_every: evaluate validation and test every this many iterations.
  """
  optimizer: str = "adam"
  learning_rate: float = 1.2e-3
  momentum: float = 0.9
  weight_decay: float = 0.0
  batch_size: int = 60
  iterations: int = 50000
  lr_schedule: str = "constant"
  lr_decay_steps: Tuple[int, ...] = ()
  lr_decay_factor: float = 0.1
  warmup_iterations: int = 0
  eval_every: int = 500


@dataclasses.dataclass(frozen=True)
class PruningConfig:
  """How tickets are found.

  Attributes:
    strategy: a registered pruning strategy (`magnitude`, `random`).
    scope: `layerwise` (each layer pruned at its own rate) or `global` (one threshold across
      the layers named by `global_layers`).
    conv_rate, fc_rate, output_rate: fraction of the remaining weights pruned per round in
      convolutional, hidden fully connected and output layers (layerwise scope).
    global_rate: fraction pruned per round in global scope.
    global_layers: `conv` (convolutions only, others left dense) or `all`.
    levels: number of pruning rounds after the dense level 0.
    mode: `iterative` (prune the previous level's trained weights by the per-round rate) or
      `one_shot` (prune the dense network's trained weights directly to each level's density).
    rewind_iteration: k; survivors are reset to the weights at iteration k (0 = original LTH).
    rewind_optimizer: `restore` the optimizer state captured at k, or start a `fresh` one.
    reinit: also train the random re-initialisation control at every level.
    random_prune: also train the random-pruning control at every level.
    ticket_sha256: checksum of a saved ticket that level 0 starts from (its mask and weights,
      at `rewind_iteration`) instead of the dense network; set from `--ticket`.
  """
  strategy: str = "magnitude"
  scope: str = "layerwise"
  conv_rate: float = 0.1
  fc_rate: float = 0.2
  output_rate: float = 0.1
  global_rate: float = 0.2
  global_layers: str = "conv"
  levels: int = 0
  mode: str = "iterative"
  rewind_iteration: int = 0
  rewind_optimizer: str = "restore"
  reinit: bool = False
  random_prune: bool = False
  ticket_sha256: str = ""


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
  """How and where the experiment runs; none of it changes the science, so none of it is hashed.

  Attributes:
    root_dir: where experiment directories are created.
    data_dir: where offline datasets were installed (and TFDS data lives).
    seeds: one replicate per seed (weights initialisation and data order).
    strategy: `default`, `one_device`, `mirrored`, ...
    eval_batch_size: batch size of evaluation.
    progress: show a progress bar.
    deterministic: enable TensorFlow op determinism.
    ticket: a saved ticket (directory or name in `saved_tickets/`) to start level 0 from.
    fused_optimizer: apply Adam / SGD-momentum with TensorFlow's fused kernels (one pass over
      each weight instead of about a dozen; faster on CPU). SGD results are unchanged; Adam
      results differ from the default in the last bits (the kernel rounds 1 - beta
      differently), so keep one setting within an experiment.
    batch_variants: train the branches of a level (the ticket and its controls) together in one
      graph step with stacked weights (`lth_tf.training.batched`; fully connected models, other
      models train one by one). Results equal one-by-one training within float rounding; no
      mid-training checkpoints, so an interrupted level restarts its batched branches.
  """
  root_dir: str = "runs"
  data_dir: str = "data"
  seeds: Tuple[int, ...] = (0,)
  strategy: str = "default"
  eval_batch_size: int = 2000
  progress: bool = True
  deterministic: bool = True
  ticket: str = ""
  fused_optimizer: bool = False
  batch_variants: bool = False


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """One experiment: the four scientific parts and the runtime."""
  dataset: DatasetConfig = DatasetConfig()
  model: ModelConfig = ModelConfig()
  training: TrainingConfig = TrainingConfig()
  pruning: PruningConfig = PruningConfig()
  runtime: RuntimeConfig = RuntimeConfig()

  SCIENTIFIC_PARTS = ("dataset", "model", "training", "pruning")

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: Dict[str, Any]) -> "ExperimentConfig":
    """Inverse of `to_dict`; unknown keys are an error, missing keys take defaults."""
    parts = {}
    for field in dataclasses.fields(cls):
      part_cls = type(field.default)
      parts[field.name] = _part_from_dict(part_cls, data.get(field.name, {}))
    return cls(**parts)

  def experiment_hash(self) -> str:
    """Stable hash of the scientific fields that differ from their defaults."""
    return experiment_hash(self)

  def replace(self, **parts) -> "ExperimentConfig":
    return dataclasses.replace(self, **parts)


def _part_from_dict(part_cls, values: Dict[str, Any]):
  known = {f.name: f for f in dataclasses.fields(part_cls)}
  unknown = set(values) - set(known)
  if unknown:
    raise ConfigError(f"unknown {part_cls.__name__} fields: {', '.join(sorted(unknown))}")
  kwargs = {}
  for name, value in values.items():
    if isinstance(known[name].default, tuple):
      value = tuple(value)
    kwargs[name] = value
  return part_cls(**kwargs)


def _non_default_fields(part) -> Dict[str, Any]:
  defaults = type(part)()
  out = {}
  for field in dataclasses.fields(part):
    value = getattr(part, field.name)
    if value != getattr(defaults, field.name):
      out[field.name] = list(value) if isinstance(value, tuple) else value
  return out


def experiment_hash(config: ExperimentConfig) -> str:
  """Returns a 12-hex-digit hash naming the experiment directory."""
  payload = {
      part: _non_default_fields(getattr(config, part)) for part in config.SCIENTIFIC_PARTS
  }
  text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "step")
SCOPES = ("layerwise", "global")
GLOBAL_LAYERS = ("conv", "all")
MODES = ("iterative", "one_shot")
REWIND_OPTIMIZER = ("restore", "fresh")


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise ConfigError(message)


def _check_choice(value: str, choices, name: str) -> None:
  _check(value in choices, f"{name} must be one of {', '.join(choices)}; got {value!r}")


def validate(config: ExperimentConfig) -> ExperimentConfig:
  """Checks ranges and consistency; raises `ConfigError` with a one-line message."""
  d, t, p, r = config.dataset, config.training, config.pruning, config.runtime
  _check(d.validation_size > 0,
         f"validation_size must be > 0 (early stopping needs it); got {d.validation_size}")
  _check(d.train_examples >= 0, f"train_examples must be >= 0; got {d.train_examples}")
  _check(d.train_examples_per_class >= 0,
         f"train_examples_per_class must be >= 0; got {d.train_examples_per_class}")
  _check(not (d.train_examples and d.train_examples_per_class),
         "give train_examples or train_examples_per_class, not both")
  _check(0.0 <= config.model.dropout < 1.0, f"dropout must be in [0, 1); got {config.model.dropout}")
  _check_choice(t.optimizer, OPTIMIZERS, "optimizer")
  _check(t.learning_rate > 0, f"learning_rate must be > 0; got {t.learning_rate}")
  _check(0.0 <= t.momentum < 1.0, f"momentum must be in [0, 1); got {t.momentum}")
  _check(t.weight_decay >= 0, f"weight_decay must be >= 0; got {t.weight_decay}")
  _check(t.batch_size > 0, f"batch_size must be > 0; got {t.batch_size}")
  _check(t.iterations > 0, f"iterations must be > 0; got {t.iterations}")
  _check_choice(t.lr_schedule, LR_SCHEDULES, "lr_schedule")
  _check(all(s > 0 for s in t.lr_decay_steps), "lr_decay_steps must be positive")
  _check(list(t.lr_decay_steps) == sorted(t.lr_decay_steps), "lr_decay_steps must be increasing")
  _check(0.0 < t.lr_decay_factor <= 1.0, f"lr_decay_factor must be in (0, 1]; got {t.lr_decay_factor}")
  _check(t.warmup_iterations >= 0, f"warmup_iterations must be >= 0; got {t.warmup_iterations}")
  _check(t.eval_every > 0, f"eval_every must be > 0; got {t.eval_every}")
  for name in ("conv_rate", "fc_rate", "output_rate", "global_rate"):
    rate = getattr(p, name)
    _check(0.0 <= rate < 1.0, f"{name} must be in [0, 1); got {rate}")
  _check_choice(p.scope, SCOPES, "scope")
  _check_choice(p.global_layers, GLOBAL_LAYERS, "global_layers")
  _check_choice(p.mode, MODES, "mode")
  _check_choice(p.rewind_optimizer, REWIND_OPTIMIZER, "rewind_optimizer")
  _check(p.levels >= 0, f"levels must be >= 0; got {p.levels}")
  _check(0 <= p.rewind_iteration < t.iterations,
         f"rewind_iteration must be in [0, iterations={t.iterations}); got {p.rewind_iteration}")
  _check(len(r.seeds) > 0, "at least one seed is needed")
  _check(len(set(r.seeds)) == len(r.seeds), "seeds must be distinct")
  _check(r.eval_batch_size > 0, f"eval_batch_size must be > 0; got {r.eval_batch_size}")
  return config
