"""Images resized to a stated (height, width) as they are read (`--image_size`): bilinear with
half-pixel centres and no antialiasing (`tf.image.resize`, as the transfer adapters), rounded to
8-bit pixels. The TFDS reader resizes each image inside its `tf.data` pipeline (datasets of
varying image size need it, and large ones are never held at full size); `resize_raw` resizes the
arrays of any other source with the same operation."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from lth_tf.compat import tf
from lth_tf.data.base import RawData, as_nhwc

_CHUNK = 2048  # images resized at a time (bounds the float32 working memory)


def size_of(image_size: Sequence[int]) -> Tuple[int, ...]:
  """`image_size` as a tuple of ints; () keeps images as they are."""
  return tuple(int(d) for d in image_size)


def resize_tensor(images, image_size: Sequence[int]):
  """One image (H, W, C) or a batch (N, H, W, C) of [0, 255] pixels, resized, as uint8."""
  resized = tf.image.resize(tf.cast(images, tf.float32), size_of(image_size), method="bilinear",
                            antialias=False)
  return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def resize_images(images: np.ndarray, image_size: Sequence[int], what: str) -> np.ndarray:
  """NHWC images resized to `image_size` (unchanged, not copied, if already that size)."""
  images = as_nhwc(images, what)
  size = size_of(image_size)
  if not size or tuple(images.shape[1:3]) == size:
    return images
  out = np.empty((len(images),) + size + (images.shape[-1],), np.uint8)
  for start in range(0, len(images), _CHUNK):
    out[start:start + _CHUNK] = resize_tensor(images[start:start + _CHUNK], size).numpy()
  return out


def resize_raw(raw: RawData, image_size: Sequence[int]) -> RawData:
  """Both splits of `raw` at `image_size` (labels unchanged); `raw` itself for ()."""
  if not size_of(image_size):
    return raw
  return RawData(resize_images(raw.x_train, image_size, "x_train"), raw.y_train,
                 resize_images(raw.x_test, image_size, "x_test"), raw.y_test, raw.num_classes,
                 raw.declared)
