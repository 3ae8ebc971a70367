"""Column-sharded fully connected layers: one training step of a small network on several cores.

A LeNet-300-100 step is too small for TensorFlow to split one matrix product across threads,
so a single run keeps one core busy. `DenseShards` splits the kernel of every large `Dense`
layer by output columns into `shards` working variables (with their own optimizer slots and
mask slices). Each shard's matrix products, gradient masking and fused optimizer update are
independent operations, which TensorFlow's inter-op threads run at the same time; the layer's
output is the concatenation of the shards' outputs.

The arithmetic is that of the unsharded layer: every output column is the same dot product,
and every weight gets the same fused update. The working copies are loaded from the model's
variables (and the optimizer's slots) at the start of every training chunk and written back at
its end, so evaluation, checkpoints, masks and tickets see the model's own variables only.
Only models that are a chain of layers (each layer's input is the previous layer's output) can
be sharded; the sharded layers must take rank-2 inputs.
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence

import numpy as np

from lth_tf.compat import keras, tf
from lth_tf.errors import ConfigError
from lth_tf.pruning import structure
from lth_tf import mechanism
from lth_tf.training import optimizers

# Layers with fewer weights are not split: their products are too small to outweigh the cost of
# one more operation (LeNet-300-100: both hidden layers are split, the output layer is not).
MIN_SHARD_WEIGHTS = 16384


def column_blocks(kernel_shape, shards: int) -> List[tuple]:
  """The [start, stop) output-column blocks a kernel of `kernel_shape` is split into: one
  block if it has fewer than `MIN_SHARD_WEIGHTS` weights, else `shards` near-equal blocks."""
  if int(np.prod(kernel_shape)) < MIN_SHARD_WEIGHTS:
    return [(0, int(kernel_shape[-1]))]
  return [(int(block[0]), int(block[-1]) + 1)
          for block in np.array_split(np.arange(kernel_shape[-1]), shards) if len(block)]


def _chain(model: keras.Model) -> List[keras.layers.Layer]:
  """The model's layers in order, if each one's input is the previous one's output."""
  input_layer = mechanism.of(model).keras.layers.InputLayer
  layers = [layer for layer in model.layers if not isinstance(layer, input_layer)]
  inputs = structure.graph_inputs(model)
  previous = inputs[0] if len(inputs) == 1 else None
  for layer in layers:
    if structure.children(structure.unwrap(layer)):
      raise ConfigError(f"--dense_shards needs a model that is a chain of plain layers; "
                        f"{model.name}'s layer {layer.name} holds layers of its own")
    if previous is None or layer.input is not previous:
      raise ConfigError(f"--dense_shards needs a model that is a chain of layers; "
                        f"{model.name}'s layer {layer.name} is not fed by the previous layer alone")
    previous = layer.output
  if len(model.outputs) != 1 or model.outputs[0] is not previous:
    raise ConfigError(f"--dense_shards needs a model that is a chain of layers; {model.name} is not")
  return layers


@dataclasses.dataclass
class _Split:
  """One split kernel: its column blocks, and per block the working variable, mask slice and
  optimizer slot slices, beside the model's variables they are copied from and back to."""
  kernel: tf.Variable
  mask: Optional[tf.Variable]
  slots: List[tf.Variable]
  columns: List[tuple]
  parts: List[tf.Variable]
  part_masks: Optional[List[tf.Variable]]
  part_slots: List[List[tf.Variable]]  # per slot, per block


def _dense(layer):
  implementation = mechanism.of(layer)
  inner = implementation.unwrap(layer)
  return inner if isinstance(inner, implementation.keras.layers.Dense) else None


def _kernel(dense):
  """The variable training updates for a Dense layer's kernel."""
  return mechanism.of(dense).variable(dense.kernel)


def check_model(model: keras.Model, shards: int) -> List[keras.layers.Layer]:
  """The model's layers if `--dense_shards=shards` can split it (run before anything is
  written, and by `DenseShards`).

  Raises:
    ConfigError: the model is not a chain, splits a Dense layer whose input is not of rank 2,
      or has no Dense layer large enough to split.
  """
  layers = _chain(model)
  split = 0
  for layer in layers:
    dense = _dense(layer)
    if dense is None or len(column_blocks(dense.kernel.shape, shards)) == 1:
      continue
    rank = len(layer.input.shape)
    if rank != 2:
      raise ConfigError(f"--dense_shards splits Dense layers with rank-2 inputs; {layer.name} "
                        f"takes rank {rank}")
    split += 1
  if not split:
    raise ConfigError(f"--dense_shards found no Dense layer of {model.name} with at least "
                      f"{MIN_SHARD_WEIGHTS} weights to split")
  return layers


class DenseShards:
  """Working copies of a chain model's large `Dense` kernels, split by output columns.

  Args:
    model: the (wrapped) chain model.
    optimizer: its optimizer, with slots built for the model's variables.
    masks: per trainable variable of the model, its mask variable or None.
    shards: the number of column blocks per split kernel (>= 2).

  Raises:
    ConfigError: the model is not a chain, or has no `Dense` layer large enough to split.
  """

  def __init__(self, model: keras.Model, optimizer, masks: Sequence, shards: int):
    self.model = model
    self._layers = check_model(model, shards)
    mask_of = {v.ref(): m for v, m in zip(structure.trainable_weights(model), masks)}
    self._split = {}  # kernel ref -> _Split
    for layer in self._layers:
      dense = _dense(layer)
      if dense is None:
        continue
      columns = column_blocks(dense.kernel.shape, shards)
      if len(columns) == 1:
        continue
      kernel = _kernel(dense)

      def blocks(name, trainable=False, kernel=kernel, columns=columns):
        return [tf.Variable(tf.zeros([kernel.shape[0], b - a], kernel.dtype), trainable=trainable,
                            name=f"{name}{i}") for i, (a, b) in enumerate(columns)]

      mask = mask_of.get(kernel.ref())
      slots = optimizers.slots_of(optimizer, kernel)
      self._split[kernel.ref()] = _Split(
          kernel=kernel, mask=mask, slots=slots, columns=columns,
          parts=blocks(f"{dense.name}_shard", trainable=True),
          part_masks=None if mask is None else blocks(f"{dense.name}_mask"),
          part_slots=[blocks(f"{dense.name}_slot{j}_") for j in range(len(slots))])
    # The variables a step differentiates and updates, with their masks and optimizer slots.
    self.variables, self.masks, self.slots = [], [], []
    for variable, mask in zip(structure.trainable_weights(model), masks):
      split = self._split.get(variable.ref())
      if split is None:
        self.variables.append(variable)
        self.masks.append(mask)
        self.slots.append(optimizers.slots_of(optimizer, variable))
        continue
      self.variables += split.parts
      self.masks += split.part_masks or [None] * len(split.parts)
      self.slots += [[slot[i] for slot in split.part_slots] for i in range(len(split.parts))]

  def load(self, weights_only: bool = False) -> None:
    """Copies the model's kernels (and unless `weights_only`, its masks and optimizer slots)
    into the working shards."""
    for split in self._split.values():
      pairs = [(split.kernel, split.parts)]
      if not weights_only:
        pairs += list(zip(split.slots, split.part_slots))
        if split.mask is not None:
          pairs.append((split.mask, split.part_masks))
      for source, targets in pairs:
        for (a, b), target in zip(split.columns, targets):
          target.assign(source[:, a:b])

  def store(self) -> None:
    """Writes the working shards back into the model's kernels and optimizer slots."""
    for split in self._split.values():
      for target, sources in [(split.kernel, split.parts)] + list(zip(split.slots, split.part_slots)):
        target.assign(tf.concat(sources, axis=1))

  def __call__(self, x, training: bool):
    """The model's output, its split kernels read from the working shards."""
    for layer in self._layers:
      dense = _dense(layer)
      split = None if dense is None else self._split.get(_kernel(dense).ref())
      if split is None:
        x = layer(x, training=training)
        continue
      x = tf.cast(x, dense.compute_dtype)
      x = tf.concat([tf.matmul(x, tf.cast(part, x.dtype)) for part in split.parts], axis=1)
      if dense.use_bias:
        x = tf.nn.bias_add(x, tf.cast(mechanism.of(dense).variable(dense.bias), x.dtype))
      if dense.activation is not None:
        x = dense.activation(x)
    return x
