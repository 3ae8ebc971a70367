"""K same-shaped masked variants trained together: stacked weights, one batch each, one graph step.

A level's ticket, its controls and several replicates all have the same architecture. Instead
of K trainings one after the other, `BatchedTrainer` holds every weight as one stacked tensor
of shape `[K, ...]` and runs one graph step that trains all K variants: each variant gets its
own batch (its own data-order seed, `batch_indices(..., seed, ...)` as in `Trainer`), its own
mask, initial weights and optimizer state; the layers are batched matrix products. On a CPU a
small network's step is dominated by per-op overhead and by the optimizer's elementwise
passes, which stacking amortises over the K variants.

The semantics are those of `Trainer`, variant by variant: the same loss, weight decay, masked
gradients, tf_keras's Adam and SGD-momentum update formulas (with per-variant step counts, so
a ticket with a restored optimizer and a control with a fresh one train side by side), the
same learning-rate schedule, and the same evaluation points and curve rows. A batched run
equals K separate `Trainer` runs with the same seeds within float tolerance (the batched
matrix products sum in another order), which `tests/training/test_batched.py` checks.

The variants can be split into groups (`groups`): each group has its own stacked variables and
its own chain of operations in the graph step, with no data flowing between groups, so
TensorFlow's executor can run the groups at the same time on its inter-op threads. On two CPU
cores, two groups with one thread per operation trained four LeNet-300-100 variants 1.4x faster
than one group (benchmarks/README.md, speed run 5); the groups do not fully overlap.

Supported layers are registered in `STACKED_LAYERS` (input, flatten, dense: the fully
connected family, LeNet-300-100); supported optimizers are those of `optimizers.UPDATES` with
both an explicit and a fused form (Adam, SGD).
"""
import dataclasses
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from lth_tf.compat import keras, tf
from lth_tf.config import RuntimeConfig, TrainingConfig
from lth_tf.data import Splits, augment
from lth_tf.errors import ConfigError
from lth_tf.pruning import Mask, MaskFreezeWrapper
from lth_tf.registry import Registry
from lth_tf.training import driver, optimizers, schedules
from lth_tf.training.driver import TrainResult
from lth_tf.training.loop import batch_indices, in_memory
from lth_tf.training.state import named_variables


# ---- layers ---------------------------------------------------------------------------------

@dataclasses.dataclass
class StackedLayer:
  """One layer of the stacked network.

  Attributes:
    weights: the layer's weight names (`layer/kernel`) and their unstacked shapes.
    apply: `(params, x) -> y` with `params` the stacked weights by name and `x` of shape
      `[K or 1, batch, ...]` (1 broadcasts one batch to every variant).
  """
  weights: Dict[str, tuple]
  apply: Callable[[Dict[str, tf.Tensor], tf.Tensor], tf.Tensor]


# Layer class name -> (inner Keras layer) -> StackedLayer.
STACKED_LAYERS: Registry[Callable[[keras.layers.Layer], StackedLayer]] = Registry(
    "layer for batched training")


@STACKED_LAYERS.register("InputLayer")
def _input(layer) -> StackedLayer:
  return StackedLayer({}, lambda params, x: x)


@STACKED_LAYERS.register("Flatten")
def _flatten(layer) -> StackedLayer:
  def apply(params, x):
    shape = tf.shape(x)
    return tf.reshape(x, tf.stack([shape[0], shape[1], -1]))
  return StackedLayer({}, apply)


@STACKED_LAYERS.register("Dense")
def _dense(layer) -> StackedLayer:
  kernel = f"{layer.name}/kernel"
  bias = f"{layer.name}/bias"
  shapes = {kernel: tuple(layer.kernel.shape)}
  if layer.use_bias:
    shapes[bias] = tuple(layer.bias.shape)
  activation = layer.activation

  def apply(params, x):
    weights = params[kernel]
    if x.shape[0] == 1:
      # One batch for every variant (evaluation): one wide matrix product [b, in] x [in, K*out]
      # instead of a broadcast batched product.
      k, rows, cols = weights.shape
      wide = tf.reshape(tf.transpose(weights, [1, 0, 2]), [rows, k * cols])
      y = tf.transpose(tf.reshape(tf.matmul(x[0], wide), [-1, k, cols]), [1, 0, 2])
    else:
      y = tf.matmul(x, weights)
    if layer.use_bias:
      y = y + params[bias][:, None, :]
    return activation(y)
  return StackedLayer(shapes, apply)


def stack_layers(model: keras.Model) -> List[StackedLayer]:
  """The stacked form of `model`, which must be a chain of registered layers."""
  layers = []
  previous = None
  for layer in model.layers:
    inner = layer.layer if isinstance(layer, MaskFreezeWrapper) else layer
    if previous is not None and layer.input is not previous.output:
      raise ConfigError(f"batched training needs a chain of layers; {layer.name} is not fed by "
                        f"{previous.name}")
    try:
      factory = STACKED_LAYERS.get(type(inner).__name__)
    except ConfigError:
      raise ConfigError(f"batched training supports the layers {', '.join(STACKED_LAYERS.names())}; "
                        f"model {model.name!r} has {type(inner).__name__} ({inner.name})") from None
    layers.append(factory(inner))
    previous = layer
  return layers


# ---- the trainer ----------------------------------------------------------------------------

@dataclasses.dataclass
class VariantGroup:
  """Variants `start` to `start + size - 1`: their stacked weights, masks, optimizer slots and
  optimizer step counts, each of shape `[size, ...]`."""
  start: int
  size: int
  params: Dict[str, tf.Variable]
  masks: Dict[str, tf.Variable]
  slots: Dict[str, List[tf.Variable]]
  steps: tf.Variable


class BatchedTrainer:
  """Trains K variants of one fully connected architecture together.

  Load every variant (`load`), then `fit`; read the results back with `get_weights` and
  `get_optimizer_state` (the layouts of `lth_tf.training.get_weights` and
  `optimizers.get_state`, so a variant can be put back into a Keras model).

  Args:
    model: a model of the architecture (wrapped or not); only its structure is used.
    data: the dataset splits.
    training: the training configuration (shared by all variants).
    runtime: evaluation batch size, progress.
    seeds: the data-order seed of each variant; K = len(seeds).
    groups: split the K variants into this many groups of independent operations (at most K;
      sizes differ by at most one), run at the same time by TensorFlow's inter-op threads.
  """

  def __init__(self, model: keras.Model, data: Splits, training: TrainingConfig,
               runtime: RuntimeConfig, seeds: Sequence[int], groups: int = 1):
    if training.batch_size > len(data.y_train):
      raise ConfigError(
          f"batch_size {training.batch_size} exceeds the {len(data.y_train)} training examples")
    if not seeds:
      raise ConfigError("batched training needs at least one variant")
    if groups < 1:
      raise ConfigError(f"batched training needs at least one variant group; got {groups}")
    self.model = model
    self.data = data
    self.config = training
    self.runtime = runtime
    self.seeds = tuple(int(s) for s in seeds)
    self.size = len(self.seeds)
    self.schedule = schedules.from_config(training)
    self.layers = stack_layers(model)
    # A scratch Keras optimizer maps `optimizers.get_state` layouts to slots, by variable.
    self._scratch = optimizers.build(training, model.trainable_variables)
    self._update = optimizers.updates_with("optimizer for batched training", "explicit",
                                           "fused").get(training.optimizer)
    names = {variable.ref(): name for name, variable in named_variables(model)}
    self._names = [names[v.ref()] for v in model.trainable_variables]
    self._template = {name: v for name, v in named_variables(model)}
    shapes = {}
    for layer in self.layers:
      shapes.update(layer.weights)
    if set(shapes) != set(self._names):
      raise ConfigError(f"batched training cannot map the weights of model {model.name!r}")
    self.groups = []
    for number, members in enumerate(np.array_split(np.arange(self.size), min(groups, self.size))):
      k = len(members)
      self.groups.append(VariantGroup(
          start=int(members[0]), size=k,
          params={n: tf.Variable(tf.zeros((k,) + shapes[n]), name=f"stacked{number}/{n}")
                  for n in self._names},
          masks={n: tf.Variable(tf.ones((k,) + shapes[n]), trainable=False,
                                name=f"mask{number}/{n}") for n in self._names},
          slots={n: [tf.Variable(tf.zeros((k,) + shapes[n]), trainable=False)
                     for _ in range(self._update.slots)] for n in self._names},
          steps=tf.Variable(tf.zeros([k]), trainable=False, name=f"optimizer_steps{number}")))
    self.iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="lth_iteration")
    self._x_train, self._y_train, self._eval_sets = in_memory(data)
    # Per variant, the dataset's augmentation keyed by its own seed (None: none), as `Trainer`.
    self._augments = [augment.for_training(data, seed) for seed in self.seeds]
    signature = [tf.TensorSpec([self.size, None], tf.int32), tf.TensorSpec([], tf.int32)]
    # Variants at different optimizer steps (a restored ticket beside a fresh control) need
    # per-variant bias corrections; otherwise the fused kernels apply.
    self._train_chunks = {
        uniform: tf.function(lambda i, n, uniform=uniform: self._train_chunk_fn(i, n, uniform),
                             input_signature=signature)
        for uniform in (False, True)}
    self._evaluate = tf.function(self._evaluate_fn)

  # ---- state --------------------------------------------------------------------------------

  def _locate(self, index: int):
    """The group holding variant `index` and the variant's position in it."""
    for group in self.groups:
      if group.start <= index < group.start + group.size:
        return group, index - group.start
    raise ConfigError(f"variant {index} out of range: {self.size} variants")

  def _steps(self) -> np.ndarray:
    """Every variant's optimizer step count, in variant order."""
    return np.concatenate([group.steps.numpy() for group in self.groups])

  def load(self, index: int, weights: Dict[str, np.ndarray], mask: Optional[Mask] = None,
           optimizer_state: Optional[Dict[str, np.ndarray]] = None) -> None:
    """Sets variant `index`: weights (`get_weights` layout), mask (None: dense) and optimizer
    state (`optimizers.get_state` layout; None: a fresh optimizer). Pruned weights and their
    slots are zeroed."""
    missing = set(self._names) - set(weights)
    if missing:
      raise ConfigError(f"weights for variant {index} lack {sorted(missing)[:3]}")
    if mask is not None:
      unknown = set(mask) - set(self._names)
      if unknown:
        raise ConfigError(f"mask of variant {index} names unknown weights {sorted(unknown)[:3]}")
    group, local = self._locate(index)
    for name in self._names:
      keep = (np.ones(group.params[name].shape[1:], np.float32)
              if mask is None or name not in mask else np.asarray(mask[name], np.float32))
      group.masks[name][local].assign(keep)
      group.params[name][local].assign(np.asarray(weights[name], np.float32) * keep)
    fresh = optimizers.build(self.config, self.model.trainable_variables)
    optimizers.set_state(self._scratch, optimizers.get_state(fresh)
                         if optimizer_state is None else optimizer_state)
    for name, variable in zip(self._names, self.model.trainable_variables):
      keep = group.masks[name][local]
      for slot, value in zip(group.slots[name], optimizers.slots_of(self._scratch, variable)):
        slot[local].assign(value * keep)
    group.steps[local].assign(float(self._scratch.iterations.numpy()))

  def get_weights(self, index: int) -> Dict[str, np.ndarray]:
    """Variant `index`'s weights by `layer/variable` name."""
    group, local = self._locate(index)
    return {name: group.params[name][local].numpy() for name in self._names}

  def get_optimizer_state(self, index: int) -> Dict[str, np.ndarray]:
    """Variant `index`'s optimizer state in the layout of `optimizers.get_state`."""
    group, local = self._locate(index)
    for name, variable in zip(self._names, self.model.trainable_variables):
      for slot, target in zip(group.slots[name], optimizers.slots_of(self._scratch, variable)):
        target.assign(slot[local])
    self._scratch.iterations.assign(int(round(float(group.steps[local].numpy()))))
    return optimizers.get_state(self._scratch)

  # ---- graph functions ----------------------------------------------------------------------

  def _forward(self, params, x):
    for layer in self.layers:
      x = layer.apply(params, x)
    return x

  def _train_chunk_fn(self, indices, num_steps, uniform_steps):
    for group in self.groups:
      for name in self._names:
        for target in [group.params[name]] + group.slots[name]:
          target.assign(target * group.masks[name])
    total_loss = tf.zeros([self.size])
    all_finite = tf.constant(True)
    for step in tf.range(num_steps):
      learning_rate = self.schedule(self.iteration)
      # One independent chain of operations per group (no data flows between groups).
      losses = tf.concat([self._group_step(group, indices, step, learning_rate, uniform_steps)
                          for group in self.groups], axis=0)
      self.iteration.assign_add(1)
      total_loss += losses
      all_finite = tf.logical_and(all_finite, tf.reduce_all(tf.math.is_finite(losses)))
    return total_loss, all_finite

  def _group_step(self, group: VariantGroup, indices, step, learning_rate, uniform_steps):
    """One training step of `group`'s variants; returns their mean batch losses."""
    batch = self.config.batch_size
    variables = [group.params[n] for n in self._names]
    # Static shapes, so that the graph optimizer folds the shape arithmetic (`loop.static_batch`).
    idx = tf.reshape(indices[group.start:group.start + group.size, step * batch:(step + 1) * batch],
                     [group.size, batch])
    x = tf.gather(self._x_train, idx)
    y = tf.gather(self._y_train, idx)
    augments = self._augments[group.start:group.start + group.size]
    if augments[0] is not None:
      x = tf.stack([fn(x[i], self.iteration) for i, fn in enumerate(augments)])
    with tf.GradientTape() as tape:
      logits = self._forward(group.params, x)
      losses = tf.reduce_mean(
          tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits), axis=1)
      loss = tf.reduce_sum(losses)
    grads = tape.gradient(loss, variables)
    losses = tf.reshape(losses, [group.size])  # a static shape, also for a group of one
    decay = self.config.weight_decay
    if uniform_steps:  # one step count: the fused kernels, their coefficients computed once
      fused = self._update.fused(self._scratch, learning_rate, group.steps[0])
    for name, variable, grad in zip(self._names, variables, grads):
      if decay:
        grad = grad + decay * variable
      grad = grad * group.masks[name]
      if uniform_steps:
        fused(variable, grad, group.slots[name])
      else:  # per-variant bias corrections, broadcast against this variable
        steps = tf.reshape(group.steps, [-1] + [1] * (len(variable.shape) - 1))
        self._update.explicit(self._scratch, learning_rate, steps)(variable, grad, group.slots[name])
    group.steps.assign_add(tf.ones_like(group.steps))
    return losses

  def _evaluate_fn(self, x, y):
    batch = self.runtime.eval_batch_size
    n = tf.shape(x)[0]
    total_loss = tf.zeros([self.size])
    correct = tf.zeros([self.size])
    for start in tf.range(0, n, batch):
      logits = tf.concat([self._forward(group.params, x[None, start:start + batch])
                          for group in self.groups], axis=0)
      labels = y[start:start + batch]
      count = tf.cast(tf.shape(labels)[0], tf.float32)
      labels_k = tf.broadcast_to(labels[None], tf.shape(logits)[:2])
      per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels_k, logits=logits)
      total_loss += tf.reduce_mean(per_example, axis=1) * count
      predicted = tf.cast(tf.argmax(logits, axis=-1), labels.dtype)
      correct += tf.reduce_sum(tf.cast(tf.equal(predicted, labels[None]), tf.float32), axis=1)
    count = tf.cast(n, tf.float32)
    return total_loss / count, correct / count

  # ---- the driver's engine (`lth_tf.training.driver`) ------------------------------------------

  @property
  def variants(self) -> int:
    return self.size

  def train_chunk(self, current: int, stop: int):
    """Trains every variant over iterations [current, stop); returns each one's summed loss
    and whether every loss was finite."""
    indices = np.stack([batch_indices(len(self.data.y_train), self.config.batch_size, seed,
                                      current, stop) for seed in self.seeds])
    steps = self._steps()
    chunk = self._train_chunks[bool(np.all(steps == steps[0]))]
    losses, finite = chunk(tf.constant(indices), tf.constant(stop - current, tf.int32))
    return losses.numpy(), bool(finite)

  def learning_rate_at(self, iteration: int) -> float:
    return float(self.schedule(iteration))

  # ---- public API ---------------------------------------------------------------------------

  def evaluate(self) -> List[Dict[str, float]]:
    """Loss and accuracy on the validation and test sets, one dict per variant."""
    out = [{} for _ in range(self.size)]
    for name, (x, y) in self._eval_sets.items():
      losses, accuracies = self._evaluate(x, y)
      for row, loss, accuracy in zip(out, losses.numpy(), accuracies.numpy()):
        row[f"{name}_loss"], row[f"{name}_accuracy"] = float(loss), float(accuracy)
    return out

  def fit(self, start_iteration: int, boundaries: Iterable[int] = (),
          on_boundary: Optional[Callable[[int, List[List[Dict[str, float]]]], None]] = None
          ) -> List[TrainResult]:
    """Trains every variant from `start_iteration` to the configured number of iterations.

    Evaluation points, curve rows and early-stopping metrics are those of `Trainer.fit`: both
    run `lth_tf.training.driver.fit`. `on_boundary(iteration, curves)` gets one curve per variant.

    Returns:
      One `TrainResult` per variant, in load order.

    Raises:
      TrainingDiverged: the loss of a variant became NaN or Inf.
    """
    self.iteration.assign(start_iteration)
    return driver.fit(self, start_iteration, boundaries=boundaries, on_boundary=on_boundary)
