"""Lottery tickets with your own `model.fit`: wrap a compiled Keras 3 or tf_keras model, train it
with the callbacks given here, then prune, rewind and save a ticket.

    search = TicketSearch(model, rewind_iteration=100)
    search.model.fit(x, y, epochs=2, callbacks=search.callbacks())   # dense; θk captured at k
    for level in range(3):
      search.prune(fc_rate=0.2, output_rate=0.1)                   # magnitude, layerwise
      search.rewind()                                              # θk ⊙ m
      search.model.fit(x, y, epochs=2, callbacks=search.callbacks())
    search.save("my_ticket", model_spec="my_module:build_model", dataset="fashion_mnist")

`search.model` is the model prepared by its mechanism (`lth_tf.mechanism`) and compiled as yours
was, with a new optimizer of the same configuration: a tf_keras model is copied with its
prunable layers in the mask-freeze wrapper (tfmot's prune registry and `PrunableLayer` decide
what is prunable); a Keras 3 model is your model itself, its weights masked at their variables
(the layer rules of `lth_tf.pruning.structure`, and a layer's own `get_prunable_weights()`). The callbacks capture θk (the weights and, by option, the optimizer state)
when the optimizer has taken k steps, and after every step set the pruned weights and their
optimizer slots (Adam's moments, SGD's momentum, RMSprop's averages) to exactly zero, so that a
pruned weight is exactly 0 after every step. Train with `steps_per_execution=1` (the default):
the callbacks run once per execution.
"""
from __future__ import annotations

import functools
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from lth_tf import __version__, mechanism, models, pruning, tickets, user_code
from lth_tf.compat import keras, tf
from lth_tf.branches import derive_seed
from lth_tf.config import DatasetConfig, ExperimentConfig, ModelConfig, PruningConfig, TrainingConfig
from lth_tf.data.modality import MODALITIES
from lth_tf.errors import ConfigError, UserError
from lth_tf.training import get_weights, optimizers, set_weights
from lth_tf.validation import REWIND_OPTIMIZER, validate


class TicketSearch:
  """Iterative magnitude pruning with rewinding around a user's own `model.fit`.

  Args:
    model: a compiled Keras 3 or tf_keras model (functional or Sequential).
    rewind_iteration: k: the rewind point θk is captured when the optimizer has taken k steps
      (k = 0: the initial weights, captured now).
    rewind_optimizer: `restore` the optimizer state captured at k on `rewind()`, or start a
      `fresh` optimizer (zero state and step count).
    strategy: a registered pruning strategy that needs the trained weights alone (`magnitude`,
      `random`).
    seed: the seed of random strategies (mixed with the level).
  """

  def __init__(self, model: keras.Model, rewind_iteration: int = 0,
               rewind_optimizer: str = "restore", strategy: str = "magnitude", seed: int = 0):
    if not _is_keras_model(model):
      raise UserError("TicketSearch needs a Keras model (Keras 3 or tf_keras); got "
                      f"{type(model).__name__}")
    if getattr(model, "optimizer", None) is None:
      raise UserError("compile the model first (TicketSearch copies its compile settings)")
    if int(rewind_iteration) < 0:
      raise ConfigError(f"rewind_iteration must be >= 0; got {rewind_iteration}")
    if rewind_optimizer not in REWIND_OPTIMIZER:
      raise ConfigError(f"rewind_optimizer must be one of {', '.join(REWIND_OPTIMIZER)}; "
                        f"got {rewind_optimizer!r}")
    pruning.check_inputs(PruningConfig(strategy=strategy), (), "TicketSearch (it prunes the "
                         "trained weights alone; use lth find or lth_tf.api.find)")
    self.rewind_iteration = int(rewind_iteration)
    self.rewind_optimizer = rewind_optimizer
    self.strategy = strategy
    self.seed = int(seed)
    self.level = 0
    self.model = pruning.wrap_model(model)
    self.model.compile_from_config(model.get_compile_config())
    self.optimizer = self.model.optimizer
    self.optimizer.build(self.model.trainable_variables)
    self._keras = mechanism.of(self.model).keras
    self._fresh_optimizer = optimizers.get_state(self.optimizer)
    self.kinds = pruning.layer_kinds(self.model)
    self.rewind_weights: Optional[Dict[str, np.ndarray]] = None
    self.rewind_state: Optional[Dict[str, np.ndarray]] = None
    self._masked = [(weight, mask, optimizers.slots_of(self.optimizer, weight))
                    for _, weight, mask in pruning.mask_pairs(self.model)]
    # One graph for the re-zeroing on TensorFlow; on JAX the variables are assigned directly.
    self._enforce = (self._enforce_fn if mechanism.of(self.model).backend == "jax"
                     else tf.function(self._enforce_fn))
    if self.rewind_iteration == 0:
      self._capture()

  # ---- state --------------------------------------------------------------------------------

  @property
  def iteration(self) -> int:
    """Optimizer steps taken so far (what `rewind_iteration` counts)."""
    return int(self.optimizer.iterations.numpy())

  @property
  def mask(self) -> pruning.Mask:
    return pruning.get_mask(self.model)

  def weights_remaining(self) -> float:
    return self.mask.weights_remaining()

  def _capture(self) -> None:
    self.rewind_weights = get_weights(self.model)
    self.rewind_state = optimizers.get_state(self.optimizer)

  def _enforce_fn(self):
    for weight, mask, slots in self._masked:
      pruning.zero_pruned([weight] + slots, mask)

  def enforce_mask(self) -> None:
    """Sets every pruned weight and its optimizer slots to exactly zero."""
    self._enforce()

  # ---- callbacks ----------------------------------------------------------------------------

  def callbacks(self) -> List[keras.callbacks.Callback]:
    """Callbacks for `search.model.fit`: capture θk at step k, keep pruned weights at zero."""
    return [_callback_class(self._keras)(self)]

  # ---- pruning, rewinding -------------------------------------------------------------------

  def prune(self, fc_rate: float = 0.2, conv_rate: float = 0.1, output_rate: float = 0.1,
            rates: Optional[Mapping[str, float]] = None, scope: str = "layerwise",
            global_layers: str = "all", global_rate: float = 0.2) -> pruning.Mask:
    """Prunes the current (trained) weights one round and freezes the new mask in the model.

    Args:
      fc_rate, conv_rate, output_rate: layerwise scope: the fraction of each layer's remaining
        weights pruned, by layer kind (a layer named `output` is the output layer).
      rates: layerwise scope: per-weight rates by name (`fc1/kernel`), over the kind rates.
      scope: `layerwise` or `global` (one threshold across `global_layers`).
      global_layers: `all` or `conv`.
      global_rate: global scope: the fraction of the remaining weights pruned.

    Returns:
      The new mask (a subset of the previous one).
    """
    if self.rewind_weights is None:
      raise UserError(f"prune: θk was never captured (the model has trained "
                      f"{self.iteration} of the {self.rewind_iteration} steps before k); train "
                      "with search.callbacks() past the rewind iteration first")
    policy = validate(ExperimentConfig(pruning=PruningConfig(
        strategy=self.strategy, scope=scope, conv_rate=conv_rate, fc_rate=fc_rate,
        output_rate=output_rate, global_rate=global_rate, global_layers=global_layers))).pruning
    self.level += 1
    mask = pruning.next_mask(policy, self.kinds, pruning.prunable_weights(self.model), self.mask,
                             seed=derive_seed(self.seed, "keras_fit_prune", self.level),
                             overrides=rates)
    pruning.set_mask(self.model, mask)
    self.enforce_mask()
    return mask

  def rewind(self) -> None:
    """Resets the survivors to θk (θk ⊙ m) and the optimizer as `rewind_optimizer` says."""
    if self.rewind_weights is None:
      raise UserError("rewind: θk was never captured; train with search.callbacks() first")
    mask = self.mask
    set_weights(self.model, self.rewind_weights)
    pruning.set_mask(self.model, mask)
    state = self.rewind_state if self.rewind_optimizer == "restore" else self._fresh_optimizer
    optimizers.set_state(self.optimizer, state)
    self.enforce_mask()

  def trained_weights(self) -> Dict[str, np.ndarray]:
    return get_weights(self.model)

  # ---- saving -------------------------------------------------------------------------------

  def save(self, out_dir: str, model_spec: str, dataset: Union[str, DatasetConfig],
           mean: Sequence[float] = (0.0,), std: Sequence[float] = (1.0,),
           test_data: Optional[Tuple[np.ndarray, np.ndarray]] = None, batch_size: int = 0,
           modality: str = "image", input_shape: Optional[Sequence[int]] = None) -> str:
    """Saves the current level (its mask, θk and the trained weights) as a ticket that
    `lth tickets show`, `lth export`, `lth train --ticket` and `lth transfer` read.

    Args:
      out_dir: a new or empty directory (or a ticket directory, replaced).
      model_spec: `package.module:function` (or a registered name) that builds this model:
        the ticket's readers build it from there; its module's digest is recorded.
      dataset: the dataset the ticket was found on, as a config name (`fashion_mnist`,
        `npz:PATH`, `py:package.module:function`) or a `DatasetConfig`: `lth export` reads its
        test split for its parity checks.
      mean, std: the normalisation your pipeline applies, per channel, to raw pixels / 255 (an
        exported model applies it itself, so that clients feed raw pixels).
      test_data: `(x, y)`, normalised as for training: the ticket's recorded test accuracy.
      batch_size: the batch size you trained with (recorded).
      modality: what the inputs are (`image`, `tokens`, `tabular`, `sequence`: see
        `lth_tf.data.modality`); `mean` and `std` are then per feature, of raw values.
      input_shape: one example's shape; needed for a subclassed model only.
    """
    MODALITIES.get(modality)
    if self.level == 0:
      raise UserError("save: nothing is pruned yet; call prune() and train the ticket first")
    dataset = dataset if isinstance(dataset, DatasetConfig) else DatasetConfig(name=dataset)
    optimizer = self._optimizer_name()
    rate = float(np.asarray(self.optimizer.learning_rate))
    training = TrainingConfig(
        optimizer=optimizer, learning_rate=float(f"{rate:.7g}"),  # as given, not float32's digits
        momentum=float(getattr(self.optimizer, "momentum", 0.0) or 0.0),
        iterations=max(self.iteration, 1), batch_size=batch_size or TrainingConfig().batch_size)
    config = validate(user_code.pin_sources(ExperimentConfig(
        dataset=dataset, model=ModelConfig(name=model_spec, framework=self._framework()),
        training=training,
        pruning=PruningConfig(strategy=self.strategy, levels=self.level,
                              rewind_iteration=min(self.rewind_iteration, training.iterations - 1),
                              rewind_optimizer=self.rewind_optimizer))))
    user_code.trust(user_code.named_code(config))  # named by the caller: its tickets may run it
    inputs = pruning.structure.graph_inputs(self.model)
    if not inputs and input_shape is None:
      raise UserError("save: a subclassed model has no input shape of its own; give "
                      "input_shape (one example's shape)")
    input_shape = tuple(int(d) for d in (input_shape or inputs[0].shape[1:]))
    num_classes = (int(self.model.outputs[0].shape[-1]) if inputs else
                   int(self.model(np.zeros((1,) + input_shape, np.float32)).shape[-1]))
    check = pruning.wrap_model(models.build(config.model, input_shape, num_classes, seed=0))
    try:
      set_weights(check, self.rewind_weights)
      self.mask.check_fits(pruning.prunable_shapes(check))
    except UserError as error:
      raise UserError(f"save: {model_spec} does not build this model ({error})") from None
    metrics = {"weights_remaining": self.weights_remaining(), "iterations": self.iteration,
               "level": self.level}
    if test_data is not None:
      logits = self.model.predict(test_data[0], batch_size=1000, verbose=0)
      accuracy = float(np.mean(np.argmax(logits, axis=-1) == np.asarray(test_data[1]).ravel()))
      metrics.update(early_stop_test_accuracy=accuracy, final_test_accuracy=accuracy,
                     early_stop_iteration=self.iteration)
    provenance = {"source": "TicketSearch around model.fit", "code_version": __version__,
                  "level": self.level, "replicate": self.seed,
                  "experiment_hash": config.experiment_hash()}
    return tickets.write(out_dir, self.mask, self.rewind_weights, self.trained_weights(), config,
                         metrics, provenance, input_shape, num_classes, mean, std,
                         modality=modality, framework=mechanism.of(self.model).name)

  def _framework(self) -> str:
    """`ModelConfig.framework` of the searched model: empty for tf_keras (the default, as a
    ticket from before the field says), the mechanism's name otherwise."""
    name = mechanism.of(self.model).name
    return "" if name == mechanism.DEFAULT else name

  def _optimizer_name(self) -> str:
    kind = type(self.optimizer).__name__.lower()
    if kind not in optimizers.OPTIMIZERS:
      raise UserError(f"save: a ticket records its optimizer as one of "
                      f"{', '.join(optimizers.OPTIMIZERS.names())}; this one is "
                      f"{type(self.optimizer).__name__}")
    return kind


def _is_keras_model(model) -> bool:
  try:
    return isinstance(model, mechanism.of(model).keras.Model)
  except TypeError:  # no Keras lth_tf prunes owns it
    return False


@functools.lru_cache(maxsize=None)
def _callback_class(keras_module):
  """The search's callback, as a callback of the model's Keras (`keras_module.callbacks`)."""

  class LotteryCallback(keras_module.callbacks.Callback):
    """Captures θk before step k+1 and re-zeroes pruned weights and slots after every step."""

    def __init__(self, search: TicketSearch):
      super().__init__()
      self._search = search

    def on_train_batch_begin(self, batch, logs=None):
      self.model  # pylint: disable=pointless-statement  # (JAX: the step's state to the variables)
      search = self._search
      if search.rewind_weights is None and search.iteration == search.rewind_iteration:
        search._capture()  # pylint: disable=protected-access

    def on_train_batch_end(self, batch, logs=None):
      if self._search.level:  # level 0 is dense: nothing to keep at zero
        # Reading `self.model` on JAX syncs the step's state to the variables, and the next
        # step reads them back (with the zeros set here); on TensorFlow it is the model.
        self.model  # pylint: disable=pointless-statement
        self._search.enforce_mask()

    def on_train_end(self, logs=None):
      search = self._search
      if search.rewind_weights is None and search.iteration == search.rewind_iteration:
        search._capture()  # pylint: disable=protected-access

  return LotteryCallback
