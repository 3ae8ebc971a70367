"""Input adapters: deterministic maps from a target dataset's images to a ticket's input shape.

The rule, chosen from the source (ticket) and target input shapes (H, W, C) alone:
1. Channels, first. Same count: nothing. Target 3 → ticket 1: `rgb_to_grey`, the ITU-R BT.601
   luma 0.299 R + 0.587 G + 0.114 B. Target 1 → ticket 3: `grey_to_rgb`, the grey channel
   repeated three times. Any other pair of channel counts cannot be adapted.
2. Size, second. Same (H, W): nothing. Otherwise `resize`: bilinear interpolation with
   half-pixel centres and no antialiasing (`tf.image.resize`), to the ticket's (H, W).
3. The result is rounded to 8-bit pixels, so the adapted images go through the ordinary
   pipeline (validation hold-out, per-channel normalisation with statistics of the adapted
   training split, example budget) exactly like a dataset of that shape.
Adapters act on raw pixels before normalisation. Every step is a registered function.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Sequence, Tuple

import numpy as np

from lth_tf.compat import tf
from lth_tf.data import RawData
from lth_tf.data.base import as_nhwc
from lth_tf.errors import TicketError
from lth_tf.registry import Registry

# An adapter step: (images NHWC float32 in [0, 255], ticket input shape) -> images NHWC float32.
ADAPTERS: Registry[Callable[[np.ndarray, Tuple[int, ...]], np.ndarray]] = Registry("input adapter")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_CHUNK = 4096  # images adapted at a time (bounds the float32 working memory)


@ADAPTERS.register("rgb_to_grey")
def rgb_to_grey(images: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
  del shape
  return np.tensordot(images, LUMA, axes=([-1], [0]))[..., None].astype(np.float32)


@ADAPTERS.register("grey_to_rgb")
def grey_to_rgb(images: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
  del shape
  return np.repeat(images, 3, axis=-1)


@ADAPTERS.register("resize")
def resize(images: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
  return tf.image.resize(images, shape[:2], method="bilinear", antialias=False).numpy()


# (target channels, ticket channels) -> the channel step; equal counts need none.
CHANNEL_STEPS: Dict[Tuple[int, int], str] = {(3, 1): "rgb_to_grey", (1, 3): "grey_to_rgb"}


@dataclasses.dataclass(frozen=True)
class Adapter:
  """The steps that map images of `target_shape` to `source_shape`; none is the identity."""
  target_shape: Tuple[int, ...]
  source_shape: Tuple[int, ...]
  steps: Tuple[str, ...]

  def describe(self) -> str:
    how = " then ".join(self.steps) if self.steps else "identity"
    return f"{'x'.join(map(str, self.target_shape))} -> {'x'.join(map(str, self.source_shape))}: {how}"

  def __call__(self, images: np.ndarray) -> np.ndarray:
    """Adapts uint8-range NHWC images; returns uint8 images of the source shape."""
    if not self.steps:
      return images
    out = np.empty((len(images),) + tuple(self.source_shape), np.uint8)
    for start in range(0, len(images), _CHUNK):
      chunk = np.asarray(images[start:start + _CHUNK], np.float32)
      for step in self.steps:
        chunk = ADAPTERS.get(step)(chunk, self.source_shape)
      out[start:start + _CHUNK] = np.clip(np.rint(chunk), 0, 255).astype(np.uint8)
    return out


def choose(target_shape: Sequence[int], source_shape: Sequence[int]) -> Adapter:
  """The adapter of the module rule from the target's image shape to the ticket's input shape.

  Raises:
    TicketError: the shapes are not images, or their channel counts cannot be adapted.
  """
  target, source = tuple(int(d) for d in target_shape), tuple(int(d) for d in source_shape)
  if len(target) != 3 or len(source) != 3:
    raise TicketError(f"cannot adapt inputs of shape {target} to the ticket's input shape "
                      f"{source}: both must be images (height, width, channels)")
  steps = []
  if target[2] != source[2]:
    step = CHANNEL_STEPS.get((target[2], source[2]))
    if step is None:
      raise TicketError(f"cannot adapt {target[2]}-channel target images to the ticket's "
                        f"{source[2]}-channel input (adapters: 3->1 grey, 1->3 repeat)")
    steps.append(step)
  if target[:2] != source[:2]:
    steps.append("resize")
  return Adapter(target, source, tuple(steps))


def adapt_raw(raw: RawData, adapter: Adapter) -> RawData:
  """The raw dataset with both splits adapted (labels unchanged)."""
  if not adapter.steps:
    return raw
  return RawData(adapter(as_nhwc(raw.x_train, "x_train")), raw.y_train,
                 adapter(as_nhwc(raw.x_test, "x_test")), raw.y_test, raw.num_classes,
                 raw.declared)
