"""Frozen dataclasses describing one experiment, their validation, and the stable experiment hash.

The hash covers the scientific fields only (dataset, model, training, pruning) and, as in
open_lth, only the fields whose value differs from its default: adding a new field with a
default later keeps every old experiment directory findable.
"""
import dataclasses
import hashlib
import json
import math
import numbers
import typing
from typing import Any, Dict, Tuple

from lth_tf import branches
from lth_tf.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
  """Which data to train on and how it is split.

  Attributes:
    name: a registered dataset (`fashion_mnist`, `cifar10`, `synthetic`, ...), any TFDS
      image-classification dataset as `tfds:NAME`, a local Keras-layout file as `npz:PATH`, or
      your own function as `py:package.module:function` (it takes no argument and returns the
      arrays `x_train, y_train, x_test, y_test`).
    validation_size: examples held out of the training split for validation (the paper uses 5K).
    split_seed: seed of the deterministic validation hold-out and of the training subset.
    train_examples: if > 0, train on this many examples of the remaining training split.
    train_examples_per_class: if > 0, train on this many examples of each class.
    classes: if non-empty, keep only these class labels (relabelled 0..n-1 in this order).
    source_sha256: for a `py:` dataset, the SHA-256 of its module's file; set when the
      experiment starts (given, it must match the file).
    augmentation: training-time augmentation of every training batch (never of evaluation):
      `none`, or `crop_flip` (random crop of the image padded by 4 black pixels and a random
      horizontal flip, as open_lth trains CIFAR VGG and ResNet), drawn as a function of the seed
      and the iteration so that a resumed run is unchanged.
    image_size: if given (height, width), every image is resized to it (bilinear) when it is
      read; datasets of varying image size (`malaria`) need it.
    modality: what the examples are: `image`, `tokens` (integer ids for an Embedding, not
      normalised), `tabular` (N, F) or `sequence` (N, T, F) (both standardised per feature), or
      `auto`: rank 4, or rank 3 with integer or non-negative values, is an image, rank 3 with
      a negative value a sequence, rank 2 integers token ids, other rank 2 tabular
      (`lth_tf.data.modality`).
    num_classes: the class count of a source that does not declare one (`npz:`, `py:`, a TFDS
      dataset without class names); 0 infers it as the largest training label plus one and
      then refuses classes with no training example. Declared, labels must be below it and a
      class may have no training example (a subset of a larger label space).
  """
  name: str = "fashion_mnist"
  validation_size: int = 5000
  split_seed: int = 0
  train_examples: int = 0
  train_examples_per_class: int = 0
  classes: Tuple[int, ...] = ()
  source_sha256: str = ""
  augmentation: str = "none"
  image_size: Tuple[int, ...] = ()
  modality: str = "auto"
  num_classes: int = 0


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Which network to build.

  Attributes:
    name: a registered model (`lenet300_100`, `conv2`, `conv4`, `conv6`, `vgg16`, `vgg19`,
      `resnet20`, ..., `resnet18`, `resnet50`, `resnet18_cifar`, `resnet50_cifar`), or your
      own as `package.module:function`: it takes `(input_shape, num_classes, seed)` and
      returns a tf_keras model with logits; every layer that tfmot's prune registry supports
      or that implements `PrunableLayer` is pruned, the rest stays dense; a layer named
      `output` takes the output rate.
    dropout: dropout rate on the fully connected layers (Conv-N); 0 disables it.
    source_sha256: for a `package.module:function` model, the SHA-256 of its module's file;
      set when the experiment starts (given, it must match the file).
  """
  name: str = "lenet300_100"
  dropout: float = 0.0
  source_sha256: str = ""


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
  """How one network is trained. Lengths are in iterations, as in the papers.

  Attributes:
    optimizer: `adam`, `sgd` (SGD with momentum) or `rmsprop` (with `momentum`).
    learning_rate: base learning rate.
    momentum: SGD momentum.
    weight_decay: L2 penalty coefficient, added to the gradient of every trainable variable
      (kernels, biases and batch-norm parameters, as open_lth does; 0 disables it).
    batch_size: examples per iteration.
    iterations: training length.
    lr_schedule: `constant` or `step` (multiply by `lr_decay_factor` at each `lr_decay_steps`).
    lr_decay_steps: iterations at which a step schedule decays.
    lr_decay_factor: factor of each decay.
    warmup_iterations: linear warm-up from 0 to the base rate over this many iterations.
    eval_every: evaluate validation and test every this many iterations.
    mixed_precision: `none`, `mixed_float16` (float16 compute with loss scaling) or
      `mixed_bfloat16`; variables, masks and logits stay float32.
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
  mixed_precision: str = "none"


@dataclasses.dataclass(frozen=True)
class PruningConfig:
  """How tickets are found.

  Attributes:
    strategy: a registered pruning strategy: `magnitude`, `random`, `nm` (N:M structured,
      one level; see `nm`), or one that prunes at initialisation (`snip`, `grasp`, `synflow`,
      `magnitude_init`, `erk`, `uniform`).
    scope: `layerwise` (each layer pruned at its own rate) or `global` (one threshold across
      the layers named by `global_layers`).
    conv_rate, fc_rate, output_rate: fraction of the remaining weights pruned per round in
      convolutional, hidden fully connected and output layers (layerwise scope).
    global_rate: fraction pruned per round in global scope.
    global_layers: `conv` (convolutions only, others left dense), `pointwise` (1x1
      convolutions only: depthwise, first convolution and fully connected layers left dense,
      the layers XNNPACK's sparse inference reads sparse) or `all`.
    levels: number of pruning rounds after the dense level 0.
    mode: `iterative` (prune the previous level's trained weights by the per-round rate) or
      `one_shot` (prune the dense network's trained weights directly to each level's density).
    rewind_iteration: k; survivors are reset to the weights at iteration k (0 = original LTH).
    rewind_optimizer: `restore` the optimizer state captured at k, or start a `fresh` one.
    reinit: also train the random re-initialisation control at every level.
    random_prune: also train the random-pruning control at every level.
    branches: more branches to train at every level beside the ticket, by name (the registered
      branches of `lth_tf.branches` that `--branches` enables; reinit and random_prune have
      their own flags).
    ticket_sha256: checksum of a saved ticket that level 0 starts from (its mask and weights,
      at `rewind_iteration`) instead of the dense network; set from `--ticket`.
    init_scope: how the strategies that prune at initialisation (`snip`, `grasp`, `synflow`,
      `magnitude_init`, `erk`, `uniform`: they score the weights a level restarts from, θk)
      rank: `global` (all prunable layers together at `global_rate`, as in their papers),
      `layerwise` (each layer at its kind's rate), or `scope` (as `scope` and `global_layers`
      say, like the other strategies).
    score_iterations: score-and-prune steps per pruning round, at an exponential density
      schedule that reaches the round's density exactly; 0: the strategy's own (100 for
      `synflow`, 1 for the others).
    score_examples: training examples `snip` and `grasp` score on (one seeded batch); 0: ten
      per class.
    early_bird_threshold: draw an early-bird ticket (You et al., ICLR 2020): end the dense
      training (level 0) at the first evaluation at or after `rewind_iteration` where the last
      `early_bird_window` distances between the masks the next prune would produce at
      consecutive evaluations are all below this (the paper: 0.1), and prune the levels from
      there. 0 trains level 0 its full length and computes no mask there. The distances
      (normalised Hamming: the fraction of prunable weights whose keep/prune differs) are
      recorded in level 0's curve. Only for a strategy whose level-1 mask follows the trained
      weights (magnitude, nm); refused with the others.
    early_bird_window: how many consecutive mask distances must be below
      `early_bird_threshold` (the paper: 5).
    nm: `N:M` of `--pruning_strategy=nm`: keep N of every M consecutive weights along each
      kernel's input axis, at every output channel (2:4, the pattern sparse tensor cores read;
      tfmot's `sparsity_m_by_n=(2, 4)` counts the zeros of the same pattern). Needs
      1 <= N < M; read by the `nm` strategy only.
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
  branches: Tuple[str, ...] = ()
  ticket_sha256: str = ""
  init_scope: str = "global"
  score_iterations: int = 0
  score_examples: int = 0
  early_bird_threshold: float = 0.0
  early_bird_window: int = 5
  nm: str = "2:4"


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
  """How and where the experiment runs; none of it changes the science, so none of it is hashed.

  Attributes:
    engine: `auto` (the default): when none of the engine settings below is given, use the
      fastest exact step engine for this model, strategy and machine (`lth_tf.training.engines`:
      dense shards for fully connected networks on two or more cores, else the fused optimizer
      kernels), and in an experiment directory that records an engine, that one; the choice is
      printed at start-up. `manual`: exactly the engine settings given (their defaults are the
      one-op-at-a-time step of the records made before 2026-12-02).
    root_dir: where experiment directories are created.
    data_dir: where offline datasets were installed (and TFDS data lives).
    seeds: one replicate per seed (weights initialisation and data order).
    strategy: the `tf.distribute` strategy: `default`, `one_device`, `mirrored`,
      `multi_worker_mirrored` (cluster from `TF_CONFIG`) or `tpu` (needs `--tpu`).
    tpu: the TPU to connect to with `--strategy=tpu`: a TPU name or `grpc://HOST:PORT`.
    logical_devices: split the first CPU into this many logical devices (to run multi-replica
      strategies on one CPU, e.g. for tests); 0 leaves the devices as they are.
    eval_batch_size: batch size of evaluation.
    progress: show a progress bar.
    deterministic: enable TensorFlow op determinism.
    ticket: a saved ticket (directory or name in `saved_tickets/`) to start level 0 from.
    fused_optimizer: apply Adam / SGD-momentum with TensorFlow's fused kernels (one pass over
      each weight instead of about a dozen; faster on CPU). SGD results are unchanged; Adam
      results differ from the default in the last bits (the kernel rounds 1 - beta
      differently), so keep one setting within an experiment.
    intra_op_threads: threads one TensorFlow operation may use; 0 keeps TensorFlow's default
      (every core). Small networks on a CPU can train faster with 1: a LeNet-300-100 step's
      matrix products are too small to gain from splitting them across threads.
    inter_op_threads: operations TensorFlow may run at the same time; 0 keeps its default.
      Both thread settings must be set before TensorFlow starts in the process.
    replicate_processes: train this many replicates (seeds) at the same time, each in its own
      worker process with one thread per TensorFlow operation unless `intra_op_threads` says
      otherwise (`lth_tf.lottery.processes`); for small networks on a multi-core CPU. The
      results are those of one process; default or one-device strategy only.
    dense_shards: split every large fully connected kernel by output columns into this many
      blocks whose products and (fused) updates run at the same time on the inter-op threads
      (`lth_tf.training.sharded`): one small network's step on several cores. Implies the
      fused optimizer kernels, and one thread per operation unless `intra_op_threads` says
      otherwise; chain models (LeNet, Conv-2/4/6) on one device only. Results equal those of
      `--fused_optimizer` within float rounding.
  """
  engine: str = "auto"
  root_dir: str = "runs"
  data_dir: str = "data"
  seeds: Tuple[int, ...] = (0,)
  strategy: str = "default"
  tpu: str = ""
  logical_devices: int = 0
  eval_batch_size: int = 2000
  progress: bool = True
  deterministic: bool = True
  ticket: str = ""
  fused_optimizer: bool = False
  intra_op_threads: int = 0
  inter_op_threads: int = 0
  replicate_processes: int = 1
  dense_shards: int = 1


@dataclasses.dataclass(frozen=True)
class TransferConfig:
  """What `lth transfer` trains a saved ticket (`--ticket`) on; the budget and schedule come from
  the dataset and training flags (training flags not given keep the ticket's values).

  Attributes:
    target_dataset: the dataset to transfer the ticket to (any name `--dataset` accepts).
    target_classes: if non-empty, keep only these target class labels (relabelled 0..n-1).
    target_optimizer: `adam` or `sgd`; empty keeps the ticket's optimizer.
    target_ticket: a ticket found on the target itself (same model, input shape and classes),
      trained beside the transferred one as the `target_ticket` branch; empty: none.
  """
  target_dataset: str = ""
  target_classes: Tuple[int, ...] = ()
  target_optimizer: str = ""
  target_ticket: str = ""


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


@dataclasses.dataclass(frozen=True)
class TuningConfig:
  """How `lth tune` searches the hyperparameters that make tickets appear.

  Attributes:
    tuner: the keras-tuner search: `random`, `bayesian` or `hyperband`.
    max_trials: the number of trials (hyperparameter sets) to train.
    target_weights_remaining: the density the objective is read at: a trial prunes until
      this fraction of the weights remains and its objective is the ticket's validation
      accuracy (at early stop) at the level closest to it.
    tune_dir: where trials, results (`results.md`, `results.csv`) and `best.flags` are written.
    tune_params: the hyperparameters searched: rewind_iteration, learning_rate,
      warmup_iterations, pruning_rate, pruning_scope, pruning_strategy.
    tuner_seed: seed of the search.
    max_levels: a trial never prunes more rounds than this.
    rewind_fraction: the rewind iteration is searched in [0, rewind_fraction * iterations].
    warmup_fraction: warm-up is searched in [0, warmup_fraction * iterations] iterations.
    learning_rate_factor: the learning rate is searched log-uniformly in
      [learning_rate / F, learning_rate * F].
    pruning_rate_min, pruning_rate_max: the range of the per-round pruning rate (of the hidden
      layers and of global pruning; convolution and output rates keep their ratio to it).
    hyperband_budget: hyperband's largest budget B: a trial with budget b trains
      b / B of --iterations.
  """
  tuner: str = "random"
  max_trials: int = 10
  target_weights_remaining: float = 0.2
  tune_dir: str = "tuning"
  tune_params: Tuple[str, ...] = ("rewind_iteration", "learning_rate", "warmup_iterations",
                                  "pruning_rate", "pruning_scope")
  tuner_seed: int = 0
  max_levels: int = 20
  rewind_fraction: float = 0.1
  warmup_fraction: float = 0.1
  learning_rate_factor: float = 10.0
  pruning_rate_min: float = 0.1
  pruning_rate_max: float = 0.5
  hyperband_budget: int = 3


@dataclasses.dataclass(frozen=True)
class StabilityConfig:
  """What `lth stability` measures on an experiment (linear mode connectivity, Frankle et al.
  2020): two copies of a level's branch trained from its start point with different data
  orders, evaluated along the linear path between them.

  Attributes:
    levels: the levels tested; empty: every level. A level >= 1 starts each branch from its
      plan (the ticket from θk ⊙ m); level 0 starts the dense network from the rewind point θk
      (θ0 when k = 0), with the optimizer state its levels rewind to.
    branches: the branches tested at each level >= 1 (level 0 has the ticket only).
    replicates: the replicates (seeds) tested; empty: every replicate of the experiment.
    points: evenly spaced points strictly inside the linear path between the two trained
      copies (the paper: 30); both endpoints are evaluated too.
    train_examples: the size of the fixed training subset the path is evaluated on besides
      the test set (every training example if there are fewer).
    normalisation: what the BatchNorm statistics are along the path: `recompute` (on training
      batches at every point; the usual choice) or `interpolate` (linearly, as the weights).
      Networks without BatchNorm are not affected.
    normalisation_batches: with `recompute`, how many training batches (of the training batch
      size, the same at every point) the statistics are averaged over.
  """
  levels: Tuple[int, ...] = ()
  branches: Tuple[str, ...] = ("ticket",)
  replicates: Tuple[int, ...] = ()
  points: int = 30
  train_examples: int = 10000
  normalisation: str = "recompute"
  normalisation_batches: int = 20


# Runtime settings lth_tf no longer has, with the value they held when off. The `config.json` of
# a directory from before their retirement still holds them; being runtime settings they are
# not part of the experiment, so reading drops them (the directory's `engine.json` says whether
# one of them trained it: `lth_tf.rundir.records`).
RETIRED_RUNTIME = {"batch_variants": False, "variant_groups": 1}


def _part_from_dict(part_cls, values: Dict[str, Any]):
  known = {f.name: f for f in dataclasses.fields(part_cls)}
  if part_cls is RuntimeConfig:
    values = {name: value for name, value in values.items() if name not in RETIRED_RUNTIME}
  unknown = set(values) - set(known)
  if unknown:
    raise ConfigError(f"unknown {part_cls.__name__} fields: {', '.join(sorted(unknown))}")
  kwargs = {}
  for name, value in values.items():
    if isinstance(known[name].default, tuple) and isinstance(value, (list, tuple)):
      value = tuple(value)
    kwargs[name] = value
  part = part_cls(**kwargs)
  check_types(part)
  return part


def _non_default_fields(part) -> Dict[str, Any]:
  defaults = type(part)()
  out = {}
  for field in dataclasses.fields(part):
    value = getattr(part, field.name)
    if value != getattr(defaults, field.name):
      out[field.name] = list(value) if isinstance(value, tuple) else value
  return out


# Fields whose flag (and keyword of `lth_tf.api.find`) has another name, to stay unambiguous:
# `--dataset`, `--model` and `--pruning_strategy` (`--strategy` is the `tf.distribute` strategy).
RENAMED_FIELDS = {
    ("dataset", "name"): "dataset",
    ("model", "name"): "model",
    ("pruning", "strategy"): "pruning_strategy",
    ("dataset", "source_sha256"): "dataset_sha256",
    ("model", "source_sha256"): "model_sha256",
}


def field_name(part: str, field: str) -> str:
  """The flag name of a config field (its own name unless renamed above)."""
  return RENAMED_FIELDS.get((part, field), field)


def with_fields(config: ExperimentConfig, **values: Any) -> ExperimentConfig:
  """`config` with fields set by their flag names, e.g. `levels=5, model="conv2", seeds=(0, 1)`.

  Raises:
    ConfigError: a name that is no config field, or a value of the wrong type.
  """
  where = {field_name(part, f.name): (part, f.name)
           for part in [f.name for f in dataclasses.fields(ExperimentConfig)]
           for f in dataclasses.fields(type(getattr(config, part)))}
  unknown = sorted(set(values) - set(where))
  if unknown:
    raise ConfigError(f"unknown settings {unknown}; the settings are the flags of `lth find`")
  changes: Dict[str, Dict[str, Any]] = {}
  for name, value in values.items():
    part, field = where[name]
    changes.setdefault(part, {})[field] = tuple(value) if isinstance(value, list) else value
  parts = {part: dataclasses.replace(getattr(config, part), **fields)
           for part, fields in changes.items()}
  for part in parts.values():
    check_types(part)  # a wrong type is one line here, not a TypeError where it is first used
  return config.replace(**parts)


def experiment_hash(config: ExperimentConfig) -> str:
  """Returns a 12-hex-digit hash naming the experiment directory."""
  payload = {
      part: _non_default_fields(getattr(config, part)) for part in config.SCIENTIFIC_PARTS
  }
  text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def with_rewind_iteration(config: ExperimentConfig, k: int) -> ExperimentConfig:
  """`config` rewinding to iteration `k`: one experiment of a rewind sweep."""
  return config.replace(pruning=dataclasses.replace(config.pruning, rewind_iteration=k))


def sweep_hash(experiment_hashes) -> str:
  """12 hex digits naming a rewind sweep: the hash of its experiments' hashes, in k order.

  Each experiment keeps the hash of a run with its k alone (`experiment_hash`); the sweep is
  named by the list of them."""
  text = json.dumps({"experiments": list(experiment_hashes)}, separators=(",", ":"))
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


OPTIMIZERS = ("adam", "sgd", "rmsprop")
LR_SCHEDULES = ("constant", "step")
SCOPES = ("layerwise", "global")
MODALITIES = ("auto", "image", "tokens", "tabular", "sequence")  # lth_tf.data.modality
GLOBAL_LAYERS = ("conv", "all", "pointwise")  # the keys of lth_tf.pruning.kinds.GLOBAL_SETS
INIT_SCOPES = ("global", "layerwise", "scope")
MODES = ("iterative", "one_shot")
REWIND_OPTIMIZER = ("restore", "fresh")
ENGINES = ("auto", "manual")
MIXED_PRECISION = ("none", "mixed_float16", "mixed_bfloat16")


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise ConfigError(message)


def _check_choice(value: str, choices, name: str) -> None:
  _check(value in choices, f"{name} must be one of {', '.join(choices)}; got {value!r}")


# Seeds reach NumPy, Keras and TensorFlow generators; every one takes [0, 2**31).
MAX_SEED = 2 ** 31 - 1
# Sizes allocated from a setting: an image side resized to, points on a stability path.
MAX_IMAGE_SIDE, MAX_PATH_POINTS = 4096, 1000


def _is_a(value, hint) -> bool:
  """Whether `value` has the annotated type `hint` (bool, int, float, str, a tuple of one of
  them); an int is a float, a bool is no number."""
  if hint is bool:
    return isinstance(value, bool)
  if hint is int:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
  if hint is float:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
  if hint is str:
    return isinstance(value, str)
  if typing.get_origin(hint) is tuple:
    element = typing.get_args(hint)[0]
    return isinstance(value, (tuple, list)) and all(_is_a(item, element) for item in value)
  return True


def _type_name(hint) -> str:
  if typing.get_origin(hint) is tuple:
    return f"a list of {_type_name(typing.get_args(hint)[0])}"
  return {bool: "true or false", int: "an integer", float: "a number",
          str: "a string"}.get(hint, str(hint))


def check_types(part) -> None:
  """Every field of a config part has its annotated type (a `config.json` edited by hand, or a
  keyword of the Python API: `iterations=100.0`); one-line `ConfigError` otherwise."""
  hints = typing.get_type_hints(type(part))
  for field in dataclasses.fields(part):
    value = getattr(part, field.name)
    if not _is_a(value, hints[field.name]):
      raise ConfigError(f"{field.name} must be {_type_name(hints[field.name])}; got "
                        f"{value!r} ({type(value).__name__})")


def _check_finite(*parts) -> None:
  """Every float field is a finite number (a flag accepts `inf` and `nan`)."""
  for part in parts:
    for field in dataclasses.fields(part):
      value = getattr(part, field.name)
      if isinstance(value, float):
        _check(math.isfinite(value), f"{field.name} must be a finite number; got {value}")


def nm_pattern(text: str) -> Tuple[int, int]:
  """(N, M) of an `N:M` pattern (`PruningConfig.nm`), 1 <= N < M; a one-line `ConfigError`
  otherwise."""
  parts = str(text).split(":")
  try:
    n, m = (int(part) for part in parts) if len(parts) == 2 else (0, 0)
  except ValueError:
    n, m = 0, 0
  _check(1 <= n < m, f"nm must be N:M with 1 <= N < M (keep N of every M weights), e.g. 2:4; "
         f"got {text!r}")
  return n, m


def _check_seed(seed: int, name: str) -> None:
  _check(0 <= seed <= MAX_SEED, f"{name} must be in [0, {MAX_SEED}]; got {seed}")


def validate(config: ExperimentConfig) -> ExperimentConfig:
  """Checks ranges and consistency; raises `ConfigError` with a one-line message."""
  d, t, p, r = config.dataset, config.training, config.pruning, config.runtime
  for part in (d, config.model, t, p, r):
    check_types(part)
  _check_finite(d, config.model, t, p, r)
  _check(d.validation_size > 0,
         f"validation_size must be > 0 (early stopping needs it); got {d.validation_size}")
  _check(d.train_examples >= 0, f"train_examples must be >= 0; got {d.train_examples}")
  _check(d.train_examples_per_class >= 0,
         f"train_examples_per_class must be >= 0; got {d.train_examples_per_class}")
  _check(not (d.train_examples and d.train_examples_per_class),
         "give train_examples or train_examples_per_class, not both")
  _check_choice(d.modality, MODALITIES, "modality")
  _check(not d.image_size or (len(d.image_size) == 2 and 0 < min(d.image_size)
                              and max(d.image_size) <= MAX_IMAGE_SIDE),
         f"image_size must be empty or (height, width) in [1, {MAX_IMAGE_SIDE}]; got "
         f"{list(d.image_size)}")
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
  _check_choice(t.mixed_precision, MIXED_PRECISION, "mixed_precision")
  for name in ("conv_rate", "fc_rate", "output_rate", "global_rate"):
    rate = getattr(p, name)
    _check(0.0 <= rate < 1.0, f"{name} must be in [0, 1); got {rate}")
  _check_choice(p.scope, SCOPES, "scope")
  _check_choice(p.global_layers, GLOBAL_LAYERS, "global_layers")
  _check_choice(p.init_scope, INIT_SCOPES, "init_scope")
  _check(p.score_iterations >= 0, f"score_iterations must be >= 0; got {p.score_iterations}")
  _check(p.score_examples >= 0, f"score_examples must be >= 0; got {p.score_examples}")
  _check_choice(p.mode, MODES, "mode")
  _check_choice(p.rewind_optimizer, REWIND_OPTIMIZER, "rewind_optimizer")
  _check_choice(r.engine, ENGINES, "engine")
  for name in p.branches:
    _check(name not in branches.RETIRED, f"branches: {name!r} {branches.RETIRED.get(name)}")
    _check(name in branches.listable("find"),
           f"branches: {name!r} is not a branch --branches can add (those: "
           f"{', '.join(branches.listable('find')) or 'none registered'}; reinit and random_prune "
           "have their own flags)")
  _check(len(set(p.branches)) == len(p.branches), f"branches names one twice: {list(p.branches)}")
  _check(p.levels >= 0, f"levels must be >= 0; got {p.levels}")
  _check(0.0 <= p.early_bird_threshold <= 1.0,
         f"early_bird_threshold must be in [0, 1] (0: off); got {p.early_bird_threshold}")
  nm_pattern(p.nm)
  _check(p.early_bird_window >= 1, f"early_bird_window must be >= 1; got {p.early_bird_window}")
  _check(p.early_bird_threshold == 0 or p.levels >= 1,
         "early_bird_threshold draws level 1's mask during the dense training; it needs "
         "--levels >= 1")
  _check(0 <= p.rewind_iteration < t.iterations,
         f"rewind_iteration must be in [0, iterations={t.iterations}); got {p.rewind_iteration}")
  _check(len(r.seeds) > 0, "at least one seed is needed")
  _check(len(set(r.seeds)) == len(r.seeds), "seeds must be distinct")
  for seed in r.seeds:
    _check_seed(seed, "seeds")
  _check_seed(d.split_seed, "split_seed")
  _check(r.eval_batch_size > 0, f"eval_batch_size must be > 0; got {r.eval_batch_size}")
  _check(r.logical_devices >= 0, f"logical_devices must be >= 0; got {r.logical_devices}")
  _check(r.replicate_processes >= 1,
         f"replicate_processes must be >= 1; got {r.replicate_processes}")
  _check(r.replicate_processes == 1 or r.strategy in ("default", "one_device"),
         f"--replicate_processes runs replicates in local worker processes; it cannot be "
         f"combined with --strategy={r.strategy}")
  _check(r.dense_shards >= 1, f"dense_shards must be >= 1; got {r.dense_shards}")
  _check(r.dense_shards == 1 or r.strategy in ("default", "one_device"),
         f"--dense_shards splits one device's step across its cores; it cannot be combined "
         f"with --strategy={r.strategy}")
  for name in ("intra_op_threads", "inter_op_threads"):
    _check(getattr(r, name) >= 0, f"{name} must be >= 0 (0: TensorFlow's default); got "
           f"{getattr(r, name)}")
  return config


def validate_sweep(config: ExperimentConfig, rewind_iterations) -> Tuple[int, ...]:
  """Checks a rewind sweep (one experiment per k of `rewind_iterations` sharing level 0, the
  dense training) before anything is trained; returns its k's in increasing order.

  Level 0 is shared only where it does not depend on k: its initialisation and data order are
  functions of the seed, and k only marks where θk is captured. Refused: an early-bird
  threshold (the dense training ends at the first draw at or after k), a saved ticket (level
  0 starts from its weights at k), and no pruned level (every k would be the same dense run);
  also worker processes and multi-worker strategies (the sweep shares level 0 in one process,
  on one machine's files).

  Raises:
    ConfigError: a k that is no integer, outside [0, iterations) or given twice, or one of
      the settings above; or whatever `validate` refuses in `config`.
  """
  ks = tuple(rewind_iterations)
  iterations = config.training.iterations
  _check(len(ks) > 0, "a rewind sweep needs at least one rewind_iteration")
  for k in ks:
    _check(isinstance(k, numbers.Integral) and not isinstance(k, bool),
           f"rewind_iteration values must be integers; got {k!r}")
    _check(0 <= k < iterations,
           f"rewind_iteration must be in [0, iterations={iterations}); got {k}")
  ks = tuple(int(k) for k in ks)
  _check(len(set(ks)) == len(ks), f"rewind_iteration names a k twice: {list(ks)}")
  ks = tuple(sorted(ks))
  validate(with_rewind_iteration(config, ks[0]))
  p, r = config.pruning, config.runtime
  if len(ks) > 1:
    _check(p.levels >= 1, "a rewind sweep needs --levels >= 1: k is where the pruned levels "
           "rewind to, and level 0 is the same dense training for every k")
    _check(p.early_bird_threshold == 0,
           "--early_bird_threshold ends the dense training at the first draw at or after k, "
           "so level 0 depends on k and a rewind sweep cannot share it; run one k at a time")
    _check(not (p.ticket_sha256 or r.ticket),
           "--ticket starts level 0 from the ticket's weights at k, so level 0 depends on k "
           "and a rewind sweep cannot share it; run one k at a time")
    _check(r.replicate_processes == 1,
           "a rewind sweep trains its replicates in one process; drop --replicate_processes")
    _check(r.strategy != "multi_worker_mirrored",
           "a rewind sweep copies level 0 between experiment directories on one machine; "
           "run one k at a time with --strategy=multi_worker_mirrored")
  return ks


def validate_tuning(tuning: TuningConfig) -> TuningConfig:
  """Checks the ranges of a tuning config (the tuner name is checked by its registry)."""
  _check_finite(tuning)
  _check_seed(tuning.tuner_seed, "tuner_seed")
  _check(tuning.max_trials >= 1, f"max_trials must be >= 1; got {tuning.max_trials}")
  _check(0.0 < tuning.target_weights_remaining <= 1.0,
         f"target_weights_remaining must be in (0, 1]; got {tuning.target_weights_remaining}")
  _check(tuning.max_levels >= 0, f"max_levels must be >= 0; got {tuning.max_levels}")
  _check(0.0 <= tuning.rewind_fraction < 1.0,
         f"rewind_fraction must be in [0, 1); got {tuning.rewind_fraction}")
  _check(0.0 <= tuning.warmup_fraction <= 1.0,
         f"warmup_fraction must be in [0, 1]; got {tuning.warmup_fraction}")
  _check(tuning.learning_rate_factor >= 1.0,
         f"learning_rate_factor must be >= 1; got {tuning.learning_rate_factor}")
  _check(0.0 < tuning.pruning_rate_min <= tuning.pruning_rate_max < 1.0,
         "pruning rates need 0 < pruning_rate_min <= pruning_rate_max < 1; got "
         f"{tuning.pruning_rate_min}, {tuning.pruning_rate_max}")
  _check(tuning.hyperband_budget >= 2, f"hyperband_budget must be >= 2; got {tuning.hyperband_budget}")
  _check(bool(tuning.tune_dir), "tune_dir must not be empty")
  return tuning


def validate_stability(stability: StabilityConfig) -> StabilityConfig:
  """Checks the ranges of a stability config (names are checked against the experiment)."""
  _check(1 <= stability.points <= MAX_PATH_POINTS,
         f"stability_points must be >= 1 and at most {MAX_PATH_POINTS}; got {stability.points}")
  _check(stability.train_examples >= 1,
         f"stability_train_examples must be >= 1; got {stability.train_examples}")
  _check(stability.normalisation_batches >= 1, "stability_normalisation_batches must be >= 1; "
         f"got {stability.normalisation_batches}")
  _check(bool(stability.branches), "stability_branches must name at least one branch")
  _check(all(level >= 0 for level in stability.levels),
         f"stability_levels must be >= 0; got {list(stability.levels)}")
  return stability
