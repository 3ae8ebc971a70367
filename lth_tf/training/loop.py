"""The one training loop: in-memory data, whole chunks of iterations in one graph, masks enforced.

Every command trains through `Trainer`. Iterations between two evaluation (or checkpoint)
points run inside a single `tf.function` while-loop over data held in memory, which is what
makes masked training cheap on a CPU. Pruned weights stay exactly zero after every optimizer
step without a per-step re-mask: at the start of every chunk the pruned weights and their
optimizer slots are set to zero, and their gradients are masked at every step, so each step's
update of a pruned weight is exactly zero (Adam: 0 / (sqrt(0) + epsilon); SGD momentum: 0).
Every registered optimizer must keep that property (`lth_tf.training.optimizers`). While no
weight is pruned (every mask all ones: level 0, a dense run), a chunk skips the masks' products,
which would return the gradients unchanged.

`Trainer.fit` hands the Python around the chunks to `lth_tf.training.driver`, the one fit
driver: where the chunks end (every multiple of `eval_every`, extra boundaries, the end), the
curve rows, the NaN/Inf guard, the progress bar and the `on_boundary` calls. This module is the
engine: the chunk functions, evaluation, the schedule.

The data order is a pure function of (seed, iteration): epoch e is the permutation drawn by
`numpy.random.default_rng([seed, e])`, so a run resumed or rewound at iteration k sees the
same batches as an uninterrupted one. A dataset's augmentation (`lth_tf.data.augment`) is a pure
function of (seed, iteration) too: each step's batch is augmented inside the graph step, and the
evaluation sets never are.

Under a multi-replica strategy (`lth_tf.distribute.uses_replica_steps`) every iteration is one
`strategy.run`: replica r takes examples [r * B/N, (r + 1) * B/N) of the global batch of B
examples, its loss is its summed per-example loss divided by B, the optimizer all-reduces
(sums) the gradients, and the re-mask runs once on the mirrored variables after the step.
The default and one-device strategies keep the single-device step unchanged.
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from lth_tf import distribute, mechanism, precision
from lth_tf.compat import keras, tf
from lth_tf.config import RuntimeConfig, TrainingConfig
from lth_tf.data import Splits, augment
from lth_tf.errors import ConfigError
from lth_tf.pruning import mask_pairs, structure, zero_pruned
from lth_tf.training import driver, optimizers, schedules, sharded
from lth_tf.training.driver import TrainResult
from lth_tf.training.order import batch_indices  # noqa: F401  (the data order, re-exported)


def static_batch(indices, step, batch_size: int):
  """Iteration `step`'s `batch_size` example indices out of a chunk's concatenated ones, with a
  static shape: the step's tensors then have static shapes, and the graph optimizer folds the
  shape arithmetic of the forward and backward pass away (the same values, fewer operations per
  step)."""
  return tf.reshape(indices[step * batch_size:(step + 1) * batch_size], [batch_size])


def in_memory(data: Splits):
  """The training split as constants, and the evaluation sets by name."""
  eval_sets = {"validation": (tf.constant(data.x_val), tf.constant(data.y_val)),
               "test": (tf.constant(data.x_test), tf.constant(data.y_test))}
  return tf.constant(data.x_train), tf.constant(data.y_train), eval_sets


def check_engine(model: keras.Model, training: TrainingConfig, runtime: RuntimeConfig,
                 strategy: tf.distribute.Strategy) -> None:
  """The rules of the step engines that depend on the model or the strategy: checked by
  `Trainer` and, before anything is written, by the commands' preflight.

  Raises:
    ConfigError: a global batch that does not divide over the replicas; fused updates or
      dense shards with a multi-replica strategy, loss scaling or an optimizer without fused
      kernels; dense shards on a model they cannot split.
  """
  replicated = distribute.uses_replica_steps(strategy)
  if replicated:
    distribute.check_batch_size(strategy, training.batch_size, runtime.strategy)
  if not (runtime.fused_optimizer or runtime.dense_shards > 1):
    return
  if replicated or precision.needs_loss_scaling(training.mixed_precision):
    raise ConfigError("--fused_optimizer and --dense_shards run on one device without loss "
                      "scaling; they cannot be combined with a multi-replica strategy or "
                      "--mixed_precision=mixed_float16")
  optimizers.FUSED_UPDATES.get(training.optimizer)
  if runtime.dense_shards > 1:
    sharded.check_model(model, runtime.dense_shards)


class Trainer:
  """Trains one (possibly masked) model on in-memory data with the configured optimizer.

  Args:
    model: a Keras model, wrapped with `lth_tf.pruning.wrap_model` if it is to be masked.
    data: the dataset splits.
    training: the training configuration.
    runtime: evaluation batch size, progress bar.
    seed: the data-order seed.
    strategy: the `tf.distribute` strategy the model was built in.
  """

  def __init__(self, model: keras.Model, data: Splits, training: TrainingConfig,
               runtime: RuntimeConfig, seed: int, strategy: Optional[tf.distribute.Strategy] = None):
    if training.batch_size > len(data.y_train):
      raise ConfigError(
          f"batch_size {training.batch_size} exceeds the {len(data.y_train)} training examples")
    self.model = model
    self.data = data
    self.config = training
    self.runtime = runtime
    self._augment = None
    self.seed = seed
    self.strategy = strategy or tf.distribute.get_strategy()
    self.schedule = schedules.from_config(training)
    with self.strategy.scope():
      self.optimizer = optimizers.build(training, structure.trainable_weights(model))
      self.iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="lth_iteration")
    self._x_train, self._y_train, self._eval_sets = in_memory(data)
    # The dataset's augmentation of training batches (None: none), keyed by (seed, iteration).
    self._augment = augment.for_training(data, seed)
    masks = {weight.ref(): mask for _, weight, mask in mask_pairs(model)}
    # The variables a step differentiates and updates (Keras 3: the tf.Variables its variables hold).
    self._variables = structure.trainable_weights(model)
    self._masks = [masks.get(v.ref()) for v in self._variables]
    check_engine(model, training, runtime, self.strategy)
    self._replicated = distribute.uses_replica_steps(self.strategy)
    self._scale_loss = precision.needs_loss_scaling(training.mixed_precision)
    emulated = precision.emulation_warning(training.mixed_precision)
    if emulated:
      warnings.warn(emulated, RuntimeWarning, stacklevel=2)
    self._fused = runtime.fused_optimizer or runtime.dense_shards > 1
    self._update = (optimizers.FUSED_UPDATES.get(training.optimizer)
                    if self._fused else None)
    # (variable, mask, optimizer slots) of every masked variable, zeroed at each chunk start.
    self._masked = [(v, m, optimizers.slots_of(self.optimizer, v))
                    for v, m in zip(self._variables, self._masks) if m is not None]
    # Column-sharded working copies of the large Dense kernels (`lth_tf.training.sharded`).
    self._shards = None
    if runtime.dense_shards > 1:
      with self.strategy.scope():
        self._shards = sharded.DenseShards(model, self.optimizer, self._masks, runtime.dense_shards)
    # One chunk function per `pruned`: while every mask is all ones (level 0, a dense run) the
    # masks' products would return the gradients unchanged, so that chunk function skips them.
    chunk_fn = self._replica_chunk_fn if self._replicated else self._train_chunk_fn
    self._train_chunks = {
        pruned: tf.function(functools.partial(chunk_fn, pruned=pruned), input_signature=[
            tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)])
        for pruned in (True, False)}
    self._evaluate = tf.function(self._evaluate_fn)
    self._loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    self._per_example_loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction=keras.losses.Reduction.NONE)

  # ---- graph functions ----------------------------------------------------------------------


  @property
  def seed(self) -> int:
    """The data-order seed: the batches' order and their augmentation draws follow it."""
    return self._seed

  @seed.setter
  def seed(self, value: int) -> None:
    self._seed = int(value)
    if self._augment is not None:
      self._augment.seed = self._seed
  def gradients(self, x, y, pruned: bool = True):
    """Training loss and the gradients the optimizer applies: weight decay added, masks applied.

    The gradients are those of `trained_variables()`; the gradient of every pruned weight is
    exactly zero. `pruned=False` skips the masks, which is exact only while `any_pruned()` is
    False.
    """
    forward = self.model if self._shards is None else self._shards
    with tf.GradientTape() as tape:
      loss = self._loss(y, forward(x, training=True))
      differentiated = self._scaled(loss)
    return loss, self._masked_gradients(tape, differentiated, self.config.weight_decay, pruned)

  def trained_variables(self):
    """The variables a step updates and their masks (or None): the model's, or with
    `--dense_shards` the working shards in place of the split kernels."""
    if self._shards is not None:
      return self._shards.variables, self._shards.masks
    return self._variables, self._masks

  def _trained_slots(self):
    """Per variable of `trained_variables()`, its optimizer slots."""
    if self._shards is not None:
      return self._shards.slots
    return [optimizers.slots_of(self.optimizer, v) for v in self._variables]

  def _scaled(self, loss):
    """The loss the gradient is taken of: scaled by the loss scale under float16."""
    if not self._scale_loss:
      return loss
    return mechanism.of(self.optimizer).scale_loss(self.optimizer, loss)

  def _masked_gradients(self, tape, differentiated, weight_decay, pruned):
    """Gradients (unscaled under float16), weight decay added, masks applied if `pruned`."""
    variables, masks = self.trained_variables()
    grads = tape.gradient(differentiated, variables)
    if self._scale_loss:
      grads = mechanism.of(self.optimizer).unscale_gradients(self.optimizer, grads)
    if weight_decay:
      grads = [g + weight_decay * v for g, v in zip(grads, variables)]
    if not pruned:
      return grads
    return [g if m is None else g * m for g, m in zip(grads, masks)]

  def _enforce_masks(self):
    """Zeroes pruned weights and their optimizer slots (whatever set them: a load, a user)."""
    for variable, mask, slots in self._masked:
      zero_pruned([variable] + slots, mask)

  def _train_chunk_fn(self, indices, num_steps, pruned):
    batch = self.config.batch_size
    variables, _ = self.trained_variables()
    slots = self._trained_slots() if self._fused else None
    self._enforce_masks()
    if self._shards is not None:
      self._shards.load()
    total_loss = tf.constant(0.0)
    all_finite = tf.constant(True)
    for step in tf.range(num_steps):
      idx = static_batch(indices, step, batch)
      x = tf.gather(self._x_train, idx)
      y = tf.gather(self._y_train, idx)
      if self._augment is not None:
        x = self._augment(x, self.iteration)
      if not self.schedule.is_constant:
        self.optimizer.learning_rate.assign(self.schedule(self.iteration))
      loss, grads = self.gradients(x, y, pruned)
      # Masked gradients and zero slots: pruned weights get exactly zero updates (no re-mask).
      if self._fused:
        optimizers.fused_step(self._update, self.optimizer, grads, variables, slots)
      else:
        self.optimizer.apply_gradients(zip(grads, variables))
      self.iteration.assign_add(1)
      total_loss += loss
      all_finite = tf.logical_and(all_finite, tf.math.is_finite(loss))
    if self._shards is not None:
      self._shards.store()
    return total_loss, all_finite

  def _replica_step_fn(self, global_indices, pruned):
    """One iteration on one replica: its share of the global batch, all-reduced gradients."""
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    share = self.config.batch_size // replicas
    idx = static_batch(global_indices, context.replica_id_in_sync_group, share)
    x = tf.gather(self._x_train, idx)
    y = tf.gather(self._y_train, idx)
    if self._augment is not None:  # this replica's rows of the global batch's draws
      x = self._augment(x, self.iteration, context.replica_id_in_sync_group * share,
                        self.config.batch_size)
    with tf.GradientTape() as tape:
      per_example = self._per_example_loss(y, self.model(x, training=True))
      loss = tf.reduce_sum(per_example) / float(self.config.batch_size)
      differentiated = self._scaled(loss)
    # The weight-decay gradient is added once in the sum over replicas.
    grads = self._masked_gradients(tape, differentiated, self.config.weight_decay / replicas,
                                   pruned)
    self.optimizer.apply_gradients(zip(grads, self._variables))
    return loss

  def _replica_chunk_fn(self, indices, num_steps, pruned):
    batch = self.config.batch_size
    variables = self._variables
    total_loss = tf.constant(0.0)
    all_finite = tf.constant(True)
    for step in tf.range(num_steps):
      if not self.schedule.is_constant:
        self.optimizer.learning_rate.assign(self.schedule(self.iteration))
      per_replica = self.strategy.run(functools.partial(self._replica_step_fn, pruned=pruned),
                                      args=(static_batch(indices, step, batch),))
      loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
      for variable, mask in zip(variables, self._masks):
        if pruned and mask is not None:
          zero_pruned([variable], mask)
      self.iteration.assign_add(1)
      total_loss += loss
      all_finite = tf.logical_and(all_finite, tf.math.is_finite(loss))
    return total_loss, all_finite

  def _evaluate_fn(self, x, y):
    batch = self.runtime.eval_batch_size
    n = tf.shape(x)[0]
    total_loss = tf.constant(0.0)
    correct = tf.constant(0.0)
    forward = self.model
    if self._shards is not None:  # the shards' products run on every core, as in training
      self._shards.load(weights_only=True)
      forward = self._shards
    for start in tf.range(0, n, batch):
      logits = forward(x[start:start + batch], training=False)
      labels = y[start:start + batch]
      total_loss += self._loss(labels, logits) * tf.cast(tf.shape(labels)[0], tf.float32)
      predicted = tf.cast(tf.argmax(logits, axis=-1), labels.dtype)
      correct += tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32))
    count = tf.cast(n, tf.float32)
    return total_loss / count, correct / count

  # ---- public API ---------------------------------------------------------------------------

  def evaluate(self) -> Dict[str, float]:
    """Loss and accuracy on the validation and test sets."""
    out = {}
    for name, (x, y) in self._eval_sets.items():
      loss, accuracy = self._evaluate(x, y)
      out[f"{name}_loss"], out[f"{name}_accuracy"] = float(loss), float(accuracy)
    return out

  def evaluate_on(self, x: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    """Mean loss and accuracy of the model as it is on the arrays `(x, y)`, computed as
    `evaluate` computes them."""
    loss, accuracy = self._evaluate(tf.constant(x), tf.constant(y))
    return float(loss), float(accuracy)

  def any_pruned(self) -> bool:
    """Whether some weight is pruned: some mask has a zero."""
    return any(not np.all(mask.numpy()) for mask in self._masks if mask is not None)

  def learning_rate_at(self, iteration: int) -> float:
    return float(self.schedule(iteration))

  def fit(self, start_iteration: int, curve: Optional[List[Dict[str, float]]] = None,
          boundaries: Iterable[int] = (),
          on_boundary: Optional[Callable[[int, List[Dict[str, float]]], bool]] = None,
          description: str = "") -> TrainResult:
    """Trains from `start_iteration` to the configured number of iterations.

    The model's weights and the optimizer state must already be those at `start_iteration`.
    Evaluation runs at `start_iteration`, at every multiple of `eval_every` and at the end.

    Args:
      start_iteration: the iteration the current state belongs to.
      curve: evaluation rows already recorded (when resuming a checkpoint).
      boundaries: extra iterations at which to stop the graph loop and call `on_boundary`
        (rewind capture, checkpoints).
      on_boundary: called as `on_boundary(iteration, curve)` at every evaluation point and
        every extra boundary, after the evaluation at that point; True at an evaluation point
        ends the training there.
      description: label of the progress bar.

    Returns:
      The learning curve and its early-stopping metrics.

    Raises:
      TrainingDiverged: the loss became NaN or Inf.
    """
    self.iteration.assign(start_iteration)
    return driver.fit(_Engine(self), start_iteration, curve, boundaries, on_boundary,
                      description, self.runtime.progress)


class _Engine:
  """A `Trainer` as the driver's engine (`lth_tf.training.driver`), trained by the chunk
  function that the masks call for (they stay as they are during `fit`)."""

  def __init__(self, trainer: Trainer):
    self.trainer = trainer
    self.config = trainer.config
    self._chunk = trainer._train_chunks[trainer.any_pruned()]  # pylint: disable=protected-access

  def train_chunk(self, current: int, stop: int):
    trainer = self.trainer
    indices = batch_indices(len(trainer.data.y_train), trainer.config.batch_size, trainer.seed,
                            current, stop)
    loss, finite = self._chunk(tf.constant(indices), tf.constant(stop - current, tf.int32))
    return float(loss.numpy()), bool(finite)

  def evaluate(self) -> Dict[str, float]:
    return self.trainer.evaluate()

  def learning_rate_at(self, iteration: int) -> float:
    return self.trainer.learning_rate_at(iteration)
