"""Gradients that pruning-at-initialisation strategies score with, on a wrapped Keras model at the
weights it holds under a mask: the loss gradient on a batch, its Hessian-gradient product, and
SynFlow's gradient of the path norm.

Every function differentiates the network under `mask` (pruned weights exactly zero): a pruned
weight is no parameter, so its gradient and its part of the Hessian are zero. The network runs
in inference mode (no dropout, batch norm by its moving statistics), so that a score depends on
the weights, the mask and the batch alone.

Scoring never changes the model it scores: every variable of the model and every mask is put
back as it was, whatever mask was scored (`scoring`). A strategy that scores in several steps
sets a sparser mask at each step; the model it was given holds its own mask and weights
afterwards, so a training that scores on the side (the early-bird watch) goes on untouched.
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterator, List, Tuple

import numpy as np

from lth_tf.compat import keras, tf
from lth_tf.errors import UserError
from lth_tf.pruning.mask import Mask
from lth_tf.pruning import structure
from lth_tf.pruning.masked_model import mask_pairs, set_mask

Arrays = Dict[str, np.ndarray]


@contextlib.contextmanager
def scoring(model: keras.Model, mask: Mask) -> Iterator[List[Tuple[str, tf.Variable, tf.Tensor]]]:
  """Sets `mask` on `model` (pruned weights zero) and yields (name, weight, mask tensor) of every
  prunable weight; on exit every variable of the model, and every mask variable, holds again
  what it held on entry."""
  pairs = mask_pairs(model)
  variables = {variable.ref(): variable for variable in structure.weights(model)}
  for _, weight, mask_var in pairs:  # masks kept beside the model are not in `model.weights`
    variables.setdefault(weight.ref(), weight)
    variables.setdefault(mask_var.ref(), mask_var)
  saved = [(variable, variable.numpy()) for variable in variables.values()]
  try:
    set_mask(model, mask)
    yield [(name, weight, tf.constant(mask[name], weight.dtype)) for name, weight, _ in pairs]
  finally:
    for variable, value in saved:
      variable.assign(value)


def _loss(model: keras.Model, images: np.ndarray, labels: np.ndarray,
          temperature: float = 1.0) -> tf.Tensor:
  """The mean cross-entropy of the batch on the logits divided by `temperature`."""
  logits = tf.cast(model(tf.constant(images), training=False), tf.float32)
  return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
      tf.constant(labels), logits / temperature, from_logits=True))


def _arrays(pairs, tensors, what: str) -> Arrays:
  out = {name: tensor.numpy().astype(np.float64) for (name, _, _), tensor in zip(pairs, tensors)}
  if not all(np.isfinite(array).all() for array in out.values()):
    raise UserError(f"{what} is not finite at these weights; the scores cannot rank them")
  return out


def loss_gradient(model: keras.Model, mask: Mask, images: np.ndarray, labels: np.ndarray) -> Arrays:
  """g = ∂L/∂θ of the mean cross-entropy on the batch, zero at pruned weights."""
  with scoring(model, mask) as pairs:
    with tf.GradientTape() as tape:
      loss = _loss(model, images, labels)
    grads = tape.gradient(loss, [weight for _, weight, _ in pairs])
    return _arrays(pairs, [g * m for g, (_, _, m) in zip(grads, pairs)], "the loss gradient")


def hessian_gradient(model: keras.Model, mask: Mask, images: np.ndarray, labels: np.ndarray,
                     temperature: float = 1.0) -> Tuple[Arrays, Arrays]:
  """(g, Hg): the masked gradient of the loss on the logits divided by `temperature` (GraSP's T)
  and its product with the masked Hessian of that loss, by double backpropagation:
  Hg = ∂(g · stop_gradient(g))/∂θ."""
  with scoring(model, mask) as pairs:
    variables = [weight for _, weight, _ in pairs]
    with tf.GradientTape() as outer:
      with tf.GradientTape() as inner:
        loss = _loss(model, images, labels, temperature)
      grads = [g * m for g, (_, _, m) in zip(inner.gradient(loss, variables), pairs)]
      flow = tf.add_n([tf.reduce_sum(g * tf.stop_gradient(g)) for g in grads])
    products = [h * m for h, (_, _, m) in zip(outer.gradient(flow, variables), pairs)]
    return (_arrays(pairs, grads, "the loss gradient"),
            _arrays(pairs, products, "the Hessian-gradient product"))


def path_norm_gradient(model: keras.Model, mask: Mask) -> Arrays:
  """∂R/∂θ at |θ| for SynFlow: every weight of the model (biases and batch-norm parameters and
  statistics too) replaced by its absolute value, R the sum of the outputs on one all-ones
  input."""
  with scoring(model, mask) as pairs:
    for variable in structure.weights(model):
      if variable.dtype.is_floating:
        variable.assign(tf.abs(variable))
    ones = tf.ones((1,) + tuple(structure.graph_inputs(model)[0].shape[1:]), tf.float32)
    with tf.GradientTape() as tape:
      total = tf.reduce_sum(tf.cast(model(ones, training=False), tf.float32))
    grads = tape.gradient(total, [weight for _, weight, _ in pairs])
    return _arrays(pairs, [g * m for g, (_, _, m) in zip(grads, pairs)],
                   "SynFlow's path-norm gradient (its products may overflow float32 in a deep "
                   "network)")
