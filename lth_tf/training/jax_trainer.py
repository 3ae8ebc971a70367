"""The trainer of Keras 3 models on the JAX backend: the training loop's rules, as one jitted
JAX function per chunk, without TensorFlow.

It is `lth_tf.training.loop.Trainer` for a Keras 3 model on JAX, driven by the same fit driver
(`lth_tf.training.driver`), with the same rules:

- the data order: iteration k's batch is `batch_indices(...)` of the data-order seed, as there;
- the loss: the mean sparse softmax cross-entropy of the logits; weight decay added to the
  gradients (`g + weight_decay * w`);
- the optimizers: Keras 3's Adam, SGD and RMSprop (`lth_tf.training.optimizers`, the same update
  rules and hyperparameters as the tf_keras ones the TensorFlow loop applies), applied
  statelessly (`stateless_apply`) at the schedule's rate of the iteration
  (`lth_tf.training.schedules.LotterySchedule.rate`);
- the masks: at the start of every chunk the pruned weights and their optimizer slots are set to
  zero, and at every step their gradients are multiplied by the mask, so every update of a
  pruned weight is exactly zero (the optimizers' contract) and it stays exactly zero after
  every step; a chunk while nothing is pruned skips the products;
- evaluation: the mean loss and accuracy over the validation and test sets in batches of
  `eval_batch_size`, in inference mode;
- random layers (dropout): their generator states, which are variables but not weights (no
  checkpoint holds them), are drawn at every chunk start from the data-order seed and the
  iteration, so a run resumed from a checkpoint trains to an uninterrupted run's numbers.

A step is one jitted function (the model's `stateless_call`, the gradient, the optimizer's
`stateless_apply`); a network without convolutions runs a whole chunk of them in one jitted
`jax.lax.fori_loop`, a convolutional one calls it once per iteration. Either way the chunk's
state is donated: the weights, the non-trainable variables (batch-norm statistics, dropout's seed state) and the
optimizer variables go in as values and come out as new ones, which are written back to the
Keras variables after the chunk. (XLA's CPU backend runs a convolution inside a loop about 100
times slower than on its own: 12.8 s against 0.15 s for the gradients of Conv-2's two
convolutions, jaxlib 0.10.2 on the 2-core machine; a dense step gains from the loop.)
Between chunks the Keras variables therefore hold the state, and everything that reads or sets
weights, masks or optimizer state (`get_weights`, `set_mask`, `optimizers.get_state`) works on
them as on any model.

Not on JAX (refused in one line before training, `check`): data augmentation, mixed precision,
`tf.distribute` strategies, `--fused_optimizer` and `--dense_shards` (TensorFlow kernels).
"""
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from lth_tf import mechanism
from lth_tf.config import RuntimeConfig, TrainingConfig
from lth_tf.errors import ConfigError
from lth_tf.pruning import kinds, structure
from lth_tf.training import driver, optimizers, schedules
from lth_tf.training.order import batch_indices


def check(training: TrainingConfig, runtime: RuntimeConfig, augmentation: str) -> None:
  """Refuses what the JAX trainer does not do, in one line.

  Raises:
    ConfigError: augmentation, mixed precision, a strategy, fused updates or dense shards.
  """
  refused = []
  if augmentation not in ("", "none"):
    refused.append(f"data augmentation ({augmentation})")
  if training.mixed_precision not in ("", "none", "float32"):
    refused.append(f"--mixed_precision={training.mixed_precision}")
  if runtime.strategy not in ("", "default"):
    refused.append(f"--strategy={runtime.strategy}")
  if runtime.fused_optimizer:
    refused.append("--fused_optimizer")
  if runtime.dense_shards > 1:
    refused.append("--dense_shards")
  if refused:
    raise ConfigError(f"Keras 3 on JAX trains without {', '.join(refused)}: these run on "
                      "TensorFlow (unset KERAS_BACKEND for the TensorFlow backend)")


class JaxTrainer:
  """Trains one (possibly masked) Keras 3 model on JAX; the interface of `loop.Trainer` that
  the experiments use (`fit`, `evaluate`, `evaluate_on`, `any_pruned`, `seed`, `optimizer`).

  Args:
    model: a Keras 3 model on the JAX backend, wrapped with `lth_tf.pruning.wrap_model`.
    data: the dataset splits.
    training: the training configuration.
    runtime: evaluation batch size, progress bar.
    seed: the data-order seed.
  """

  def __init__(self, model, data, training: TrainingConfig, runtime: RuntimeConfig, seed: int,
               strategy=None):
    del strategy  # JAX trains on its default device
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
    if training.batch_size > len(data.y_train):
      raise ConfigError(
          f"batch_size {training.batch_size} exceeds the {len(data.y_train)} training examples")
    check(training, runtime, data.augmentation)
    self._jax, self._jnp = jax, jnp
    self.keras = mechanism.of(model).keras
    self.model = model
    self.data = data
    self.config = training
    self.runtime = runtime
    self.seed = seed
    self.schedule = schedules.from_config(training)
    self.optimizer = optimizers.build(training, model.trainable_variables, self.keras)
    views = {id(v.keras_variable): mask for _, v, mask in _mask_pairs(model)}
    # Per trainable variable, its mask view (None: not pruned), and per optimizer variable the
    # mask of the weight it is a slot of.
    self._masks = [views.get(id(v)) for v in model.trainable_variables]
    implementation = mechanism.of(self.optimizer)
    slot_masks = {}
    for variable, mask in zip(model.trainable_variables, self._masks):
      if mask is not None:
        for slot in implementation.slots_of(self.optimizer, mechanism.of(model).variable(variable)):
          slot_masks[id(slot.keras_variable)] = mask
    self._slot_masks = [slot_masks.get(id(v)) for v in self.optimizer.variables]
    # Keras 3's optimizer keeps its rate (a float given) as its variable `learning_rate`.
    self._learning_rate = next(i for i, v in enumerate(self.optimizer.variables)
                               if v.name == "learning_rate")
    self._x_train = jnp.asarray(data.x_train)
    self._y_train = jnp.asarray(data.y_train)
    self._eval_sets = {"validation": (data.x_val, data.y_val), "test": (data.x_test, data.y_test)}
    # A network without convolutions trains a whole chunk in one `fori_loop` (1.1 ms a
    # LeNet-300-100 step against 1.6 ms a step called alone); one with convolutions calls its
    # jitted step once per iteration (see the module docstring).
    self._one_loop = not any(kinds.is_conv(layer) for layer in structure.descendants(model))
    self._functions = {}  # the jitted chunk or step, per `pruned`
    # Random layers' generator states (dropout's: variables that are not weights, so neither
    # checkpoints nor start weights hold them): set at every chunk start from the data-order seed
    # and the iteration, so that a run resumed from a checkpoint draws what an uninterrupted one
    # draws, and every branch's draws follow its own seed.
    weights = {id(v) for v in model.non_trainable_weights}
    self._generator_states = [i for i, v in enumerate(model.non_trainable_variables)
                              if id(v) not in weights]
    self._zero = jax.jit(self._zero_pruned)
    self._forward = jax.jit(self._forward_fn)

  # ---- the state as values ------------------------------------------------------------------

  def _state(self):
    model = self.model
    return ([v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in self.optimizer.variables])

  def _write_state(self, state) -> None:
    model = self.model
    for variables, values in zip((model.trainable_variables, model.non_trainable_variables,
                                  self.optimizer.variables), state):
      for variable, value in zip(variables, values):
        variable.assign(value)

  def _mask_values(self, masks):
    return [None if m is None else self._jnp.asarray(m.numpy()) for m in masks]

  # ---- the jitted functions -----------------------------------------------------------------

  def _loss(self, trainable, non_trainable, x, y, training: bool):
    jnp = self._jnp
    logits, non_trainable = self.model.stateless_call(trainable, non_trainable, x,
                                                      training=training)
    logits = logits.astype(jnp.float32)
    log_probabilities = self._jax.nn.log_softmax(logits, axis=-1)
    per_example = -jnp.take_along_axis(log_probabilities, y[:, None].astype(jnp.int32), axis=-1)
    return jnp.mean(per_example), (logits, non_trainable)

  def _step_fn(self, pruned: bool):
    """One training step: (state, loss sum, all finite) of the chunk so far and the step's
    position `i` in the chunk's indices -> the same after the step."""
    jax, jnp = self._jax, self._jnp
    batch = self.config.batch_size
    weight_decay = self.config.weight_decay
    schedule = self.schedule

    def step(carry, masks, x_train, y_train, indices, i, first_iteration):
      (trainable, non_trainable, optimizer_variables), total, finite = carry
      idx = jax.lax.dynamic_slice(indices, (i * batch,), (batch,))
      x, y = x_train[idx], y_train[idx]
      iteration = (first_iteration + i).astype(jnp.float32)
      rate = schedule.rate(iteration, jnp.float32(schedule.base_rate), jnp)
      optimizer_variables = list(optimizer_variables)
      optimizer_variables[self._learning_rate] = rate.astype(
          optimizer_variables[self._learning_rate].dtype)
      (loss, (_, non_trainable)), grads = jax.value_and_grad(
          lambda t: self._loss(t, non_trainable, x, y, True), has_aux=True)(trainable)
      if weight_decay:
        grads = [g + weight_decay * v for g, v in zip(grads, trainable)]
      if pruned:
        grads = [g if m is None else g * m for g, m in zip(grads, masks)]
      trainable, optimizer_variables = self.optimizer.stateless_apply(
          optimizer_variables, grads, trainable)
      return ((trainable, non_trainable, optimizer_variables), total + loss,
              jnp.logical_and(finite, jnp.isfinite(loss)))

    return step

  def _compiled(self, pruned: bool):
    """The jitted function a chunk calls: the whole chunk in one loop, or one step."""
    jax = self._jax
    step = self._step_fn(pruned)
    if not self._one_loop:
      return jax.jit(step, donate_argnums=(0,))

    def chunk(carry, masks, x_train, y_train, indices, steps, first_iteration):
      return jax.lax.fori_loop(
          0, steps, lambda i, c: step(c, masks, x_train, y_train, indices, i, first_iteration),
          carry)
    return jax.jit(chunk, donate_argnums=(0,))

  def _zero_pruned(self, state, masks, slot_masks):
    """The chunk's start: pruned weights and their slots exactly zero (whatever set them)."""
    trainable, non_trainable, optimizer_variables = state
    return ([v if m is None else v * m for v, m in zip(trainable, masks)], non_trainable,
            [v if m is None else v * m for v, m in zip(optimizer_variables, slot_masks)])

  def _forward_fn(self, trainable, non_trainable, x, y):
    jnp = self._jnp
    loss, (logits, _) = self._loss(trainable, non_trainable, x, y, False)
    correct = jnp.sum((jnp.argmax(logits, axis=-1) == y).astype(jnp.float32))
    return loss * x.shape[0], correct

  # ---- public API ---------------------------------------------------------------------------

  def train_chunk(self, current: int, stop: int) -> Tuple[float, bool]:
    """Trains iterations [current, stop): the sum of the step losses, and whether all were
    finite."""
    jnp = self._jnp
    pruned = self.any_pruned()
    if pruned not in self._functions:
      self._functions[pruned] = self._compiled(pruned)
    function = self._functions[pruned]
    masks = self._mask_values(self._masks)
    state = self._state()
    if self._generator_states:
      state = (state[0], self._seeded(state[1], current), state[2])
    if pruned:
      state = self._zero(state, masks, self._mask_values(self._slot_masks))
    steps, batch = stop - current, self.config.batch_size
    # In one loop the indices are padded to the longest chunk (one compilation for all).
    indices = np.zeros(max(steps, self.config.eval_every if self._one_loop else 0) * batch,
                       np.int32)
    indices[:steps * batch] = batch_indices(len(self.data.y_train), batch, self.seed, current,
                                            stop)
    indices = jnp.asarray(indices)
    carry = (state, jnp.float32(0.0), jnp.bool_(True))
    first = jnp.int32(current)
    if self._one_loop:
      carry = function(carry, masks, self._x_train, self._y_train, indices, jnp.int32(steps),
                       first)
    else:
      for i in range(steps):
        carry = function(carry, masks, self._x_train, self._y_train, indices, jnp.int32(i), first)
    state, total, finite = carry
    self._write_state(state)
    return float(total), bool(finite)

  def _seeded(self, non_trainable, iteration: int):
    """`non_trainable` with every generator state drawn from (seed, iteration, its position)."""
    values = list(non_trainable)
    for k, i in enumerate(self._generator_states):
      draw = np.random.default_rng([self.seed, iteration, k]).integers(
          0, 2**31, size=np.shape(values[i]))
      values[i] = self._jnp.asarray(draw.astype(np.dtype(values[i].dtype)))
    return values

  def evaluate(self) -> Dict[str, float]:
    """Loss and accuracy on the validation and test sets."""
    out = {}
    for name, (x, y) in self._eval_sets.items():
      out[f"{name}_loss"], out[f"{name}_accuracy"] = self.evaluate_on(x, y)
    return out

  def evaluate_on(self, x: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    """Mean loss and accuracy of the model as it is on the arrays `(x, y)`."""
    trainable, non_trainable, _ = self._state()
    batch = self.runtime.eval_batch_size
    total_loss, correct = 0.0, 0.0
    for start in range(0, len(y), batch):
      loss, right = self._forward(trainable, non_trainable, self._jnp.asarray(x[start:start + batch]),
                                  self._jnp.asarray(y[start:start + batch]))
      total_loss += float(loss)
      correct += float(right)
    return total_loss / len(y), correct / len(y)

  def any_pruned(self) -> bool:
    """Whether some weight is pruned: some mask has a zero."""
    return any(not np.all(mask.numpy()) for mask in self._masks if mask is not None)

  def learning_rate_at(self, iteration: int) -> float:
    jnp = self._jnp
    return float(self.schedule.rate(jnp.float32(iteration), jnp.float32(self.schedule.base_rate),
                                    jnp))

  def fit(self, start_iteration: int, curve: Optional[List[Dict[str, float]]] = None,
          boundaries: Iterable[int] = (),
          on_boundary: Optional[Callable[[int, List[Dict[str, float]]], bool]] = None,
          description: str = "") -> driver.TrainResult:
    """Trains from `start_iteration` to the configured number of iterations
    (`loop.Trainer.fit`)."""
    return driver.fit(self, start_iteration, curve, boundaries, on_boundary, description,
                      self.runtime.progress)


def _mask_pairs(model):
  return [(entry.name, entry.weight, entry.mask) for entry in structure.masked(model)]
