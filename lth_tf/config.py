"""The config schema: frozen dataclasses describing one experiment (what its directory records
and its hash names). How they are written, read and hashed is `lth_tf.config_codec`; their
checks are `lth_tf.validation`; the settings of the commands that study an experiment are
`lth_tf.settings`.
"""
import dataclasses
from typing import Any, Dict, Tuple

from lth_tf import options as options_lib
from lth_tf.config_codec import experiment_hash, flat_dict, part_from_dict


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
      returns a Keras 3 or tf_keras model; every layer that tfmot's prune registry supports
      or that implements `PrunableLayer` is pruned, the rest stays dense; a layer named
      `output` takes the output rate.
    dropout: dropout rate on the fully connected layers (Conv-N); 0 disables it.
    source_sha256: for a `package.module:function` model, the SHA-256 of its module's file;
      set when the experiment starts (given, it must match the file).
    framework: the Keras a registered model is built in: `tf_keras` (Keras 2, pruned through
      tfmot's wrapper) or `keras3` (Keras 3 on its TensorFlow backend, pruned at its
      variables); empty: tf_keras. A `package.module:function` model is built in the Keras its
      function returns (when given, it must be that one).
  """
  name: str = "lenet300_100"
  dropout: float = 0.0
  source_sha256: str = ""
  framework: str = ""

  def __post_init__(self):
    if self.framework == "tf_keras":  # the default, named: the same experiment and hash
      object.__setattr__(self, "framework", "")


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
    options: the chosen strategy's own options (`--nm` of `--pruning_strategy=nm`), declared by
      the strategy (`lth_tf.options`): the ones that differ from their defaults, as (name,
      value) pairs sorted by name. Written flat, as fields of their own, in `config.json` and
      the hash.
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
  options: Tuple[Tuple[str, str], ...] = ()

  def option(self, name: str) -> str:
    """The value of the strategy option `name` (`lth_tf.options`): held, or its default."""
    return options_lib.value("pruning", dict(self.options), name)


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
    executor: where the trainings run (`lth_tf.executors`): `local`, one after another in this
      process; `ray`, each replicate's levels and each level's branches as Ray tasks, at once
      where they do not wait for each other, on the cluster `RAY_ADDRESS` names or a local one
      (`pip install lth_tf[ray]`). The results are those of `local`.
    cpus_per_task: CPUs Ray reserves for each training task (`--executor=ray`).
    gpus_per_task: GPUs Ray reserves for each training task (`--executor=ray`).
    training_workers: with `--executor=ray` and `--strategy=multi_worker_mirrored`, the
      workers of each training: Ray actors (`cpus_per_task` CPUs and `gpus_per_task` GPUs
      each) whose `TF_CONFIG` the executor sets; the first is the chief.
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
  dense_shards: int = 1
  executor: str = "local"
  cpus_per_task: float = 1.0
  gpus_per_task: float = 0.0
  training_workers: int = 2


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
    """Every part as a dict; a part's plug-in options flat, as fields of their own."""
    return {field.name: flat_dict(getattr(self, field.name))
            for field in dataclasses.fields(self)}

  @classmethod
  def from_dict(cls, data: Dict[str, Any]) -> "ExperimentConfig":
    """Inverse of `to_dict`; unknown keys are an error, missing keys take defaults."""
    parts = {}
    for field in dataclasses.fields(cls):
      parts[field.name] = part_from_dict(field.name, type(field.default), data.get(field.name, {}))
    return cls(**parts)

  def experiment_hash(self) -> str:
    """Stable hash of the scientific fields that differ from their defaults."""
    return experiment_hash(self)

  def replace(self, **parts) -> "ExperimentConfig":
    return dataclasses.replace(self, **parts)
