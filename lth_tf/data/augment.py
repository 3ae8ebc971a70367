"""Training-time augmentation: registered batch transforms drawn as a pure function of
(seed, iteration), so a resumed or rewound run sees the same augmented batches.

Every training step's draws are `tf.random.stateless_uniform([B, draws])` (Philox) under the key
`stateless_fold_in([seed, STREAM], iteration)`, where B is the global batch size, `seed` the data
order seed of the trainer and `iteration` the global iteration of the step: row i belongs to
the i-th example of the step's global batch, so a replica that trains examples [a, b) of the
batch takes rows [a, b) and the batch is augmented the same way on any number of replicas. No
stateful generator is involved. Evaluation sets are never augmented.

`crop_flip` is the CIFAR augmentation open_lth trains VGG and ResNet with (torchvision's
`RandomCrop(32, padding=4)` and `RandomHorizontalFlip()`): the image is padded by 4 black pixels
on each side (raw value 0, i.e. `-mean / std` after normalisation), a window of the image's size
is cut at a uniformly drawn offset (0..8 on each axis) and mirrored left-right with probability
1/2.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

from lth_tf.compat import tf
from lth_tf.registry import Registry

NONE = "none"
# Separates the augmentation's random stream from any other stream keyed by the same seed.
STREAM = 0x417567
PADDING = 4


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """A registered augmentation.

  Attributes:
    draws: uniform numbers in [0, 1) it takes per example.
    apply: (images [N, H, W, C] normalised float32, uniforms [N, draws], fill [C], the
      normalised value of a black pixel) -> augmented images of the same shape.
  """
  draws: int
  apply: Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


def check(name: str) -> None:
  """Raises `ConfigError` (listing the choices) unless `name` is `none` or registered."""
  if name != NONE:
    AUGMENTATIONS.get(name)


def crop_flip(images, uniforms, fill):
  """Random crop of the image padded by `PADDING` pixels of `fill`, then a random mirror."""
  height, width = int(images.shape[1]), int(images.shape[2])
  pad = PADDING
  # Zero padding plus `fill` on the border only: the image's own pixels are not re-rounded.
  border = 1.0 - np.pad(np.ones((height, width), np.float32), pad)
  padded = (tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
            + tf.constant(border[None, :, :, None]) * fill)
  offsets = tf.cast(tf.floor(uniforms[:, :2] * (2 * pad + 1)), tf.int32)
  offsets = tf.minimum(offsets, 2 * pad)  # a draw of exactly 1.0 cannot occur; kept in range
  flip = uniforms[:, 2] < 0.5
  rows = offsets[:, :1] + tf.range(height)[None]
  columns = tf.range(width)[None]
  columns = tf.where(flip[:, None], width - 1 - columns, columns) + offsets[:, 1:]
  out = tf.gather(padded, rows, axis=1, batch_dims=1)
  return tf.gather(out, columns, axis=2, batch_dims=1)


AUGMENTATIONS.add("crop_flip", Augmentation(draws=3, apply=crop_flip))


def step_key(seed, iteration):
  """The stateless key of iteration `iteration`'s draws for data-order seed `seed` (an int or
  an int64 tensor)."""
  return tf.random.experimental.stateless_fold_in(
      tf.stack([tf.cast(seed, tf.int64), tf.constant(STREAM, tf.int64)]),
      tf.cast(iteration, tf.int64), alg="philox")


class Augmenter:
  """Augments a trainer's batches: `augmenter(images, iteration, first, total)` is the graph
  function that augments the examples [first, first + N) of iteration `iteration`'s global batch
  of `total` examples.

  The seed is a variable read by the graph at every step: setting `seed` (the trainer does when
  its data order changes, e.g. the copies of `lth stability`) changes the draws of the steps
  that follow, in graph functions already traced too.

  Args:
    name: a registered augmentation.
    seed: the trainer's data-order seed.
    fill: per channel, the normalised value of a black pixel.
  """

  def __init__(self, name: str, seed: int, fill: np.ndarray):
    self.name = name
    self.augmentation = AUGMENTATIONS.get(name)
    self._seed = tf.Variable(int(seed), dtype=tf.int64, trainable=False, name="lth_augment_seed")
    self.fill = tf.constant(np.asarray(fill, np.float32))

  @property
  def seed(self) -> int:
    return int(self._seed.numpy())

  @seed.setter
  def seed(self, value: int) -> None:
    self._seed.assign(int(value))

  def draws(self, iteration, total: int):
    """The uniforms of every example of iteration `iteration`'s global batch: [total, draws]."""
    return tf.random.stateless_uniform([total, self.augmentation.draws],
                                       seed=step_key(self._seed, iteration), alg="philox")

  def __call__(self, images, iteration, first=0, total: Optional[int] = None):
    count = int(images.shape[0])
    total = count if total is None else int(total)
    uniforms = self.draws(iteration, total)
    if count != total:
      uniforms = uniforms[first:first + count]
    return self.augmentation.apply(images, uniforms, self.fill)


def for_training(data, seed: int) -> Optional[Augmenter]:
  """The augmenter of `data.augmentation` for data-order seed `seed`, or None for `none`."""
  if data.augmentation == NONE:
    return None
  return Augmenter(data.augmentation, seed, -np.asarray(data.mean) / np.asarray(data.std))
