"""Gradients that pruning-at-initialisation strategies score with, on a wrapped Keras model at the
weights it holds under a mask: the loss gradient on a batch, its Hessian-gradient product, and
SynFlow's gradient of the path norm.

Every function first freezes `mask` in the model (pruned weights become exactly zero) and
differentiates the masked network: a pruned weight is no parameter, so its gradient and its
part of the Hessian are zero. The network runs in inference mode (no dropout, batch norm by its
moving statistics), so that a score depends on the weights, the mask and the batch alone.
"""
from typing import Dict, List, Tuple

import numpy as np

from lth_tf.compat import keras, tf
from lth_tf.errors import UserError
from lth_tf.pruning.mask import Mask
from lth_tf.pruning.masked_model import mask_pairs, set_mask

Arrays = Dict[str, np.ndarray]


def _masked_variables(model: keras.Model, mask: Mask) -> List[Tuple[str, tf.Variable, tf.Tensor]]:
  set_mask(model, mask)
  return [(name, weight, tf.constant(mask[name], weight.dtype))
          for name, weight, _ in mask_pairs(model)]


def _loss(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> tf.Tensor:
  logits = tf.cast(model(tf.constant(images), training=False), tf.float32)
  return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
      tf.constant(labels), logits, from_logits=True))


def _arrays(pairs, tensors, what: str) -> Arrays:
  out = {name: tensor.numpy().astype(np.float64) for (name, _, _), tensor in zip(pairs, tensors)}
  if not all(np.isfinite(array).all() for array in out.values()):
    raise UserError(f"{what} is not finite at these weights; the scores cannot rank them")
  return out


def loss_gradient(model: keras.Model, mask: Mask, images: np.ndarray, labels: np.ndarray) -> Arrays:
  """g = ∂L/∂θ of the mean cross-entropy on the batch, zero at pruned weights."""
  pairs = _masked_variables(model, mask)
  with tf.GradientTape() as tape:
    loss = _loss(model, images, labels)
  grads = tape.gradient(loss, [weight for _, weight, _ in pairs])
  return _arrays(pairs, [g * m for g, (_, _, m) in zip(grads, pairs)], "the loss gradient")


def hessian_gradient(model: keras.Model, mask: Mask, images: np.ndarray,
                     labels: np.ndarray) -> Tuple[Arrays, Arrays]:
  """(g, Hg): the masked loss gradient and its product with the masked Hessian, by double
  backpropagation: Hg = ∂(g · stop_gradient(g))/∂θ."""
  pairs = _masked_variables(model, mask)
  variables = [weight for _, weight, _ in pairs]
  with tf.GradientTape() as outer:
    with tf.GradientTape() as inner:
      loss = _loss(model, images, labels)
    grads = [g * m for g, (_, _, m) in zip(inner.gradient(loss, variables), pairs)]
    flow = tf.add_n([tf.reduce_sum(g * tf.stop_gradient(g)) for g in grads])
  products = [h * m for h, (_, _, m) in zip(outer.gradient(flow, variables), pairs)]
  return (_arrays(pairs, grads, "the loss gradient"),
          _arrays(pairs, products, "the Hessian-gradient product"))


def path_norm_gradient(model: keras.Model, mask: Mask) -> Arrays:
  """∂R/∂θ at |θ| for SynFlow: every weight of the model (biases and batch-norm parameters and
  statistics too) replaced by its absolute value, R the sum of the outputs on one all-ones
  input. The model's weights are restored afterwards."""
  pairs = _masked_variables(model, mask)
  saved = [(variable, variable.numpy()) for variable in model.weights if variable.dtype.is_floating]
  try:
    for variable, value in saved:
      variable.assign(np.abs(value))
    ones = tf.ones((1,) + tuple(model.input_shape[1:]), tf.float32)
    with tf.GradientTape() as tape:
      total = tf.reduce_sum(tf.cast(model(ones, training=False), tf.float32))
    grads = tape.gradient(total, [weight for _, weight, _ in pairs])
    return _arrays(pairs, [g * m for g, (_, _, m) in zip(grads, pairs)],
                   "SynFlow's path-norm gradient (its products may overflow float32 in a deep "
                   "network)")
  finally:
    for variable, value in saved:
      variable.assign(value)
