"""What the examples of a dataset are, and the preprocessing each kind gets: images, token ids,
tabular features, sequences.

A modality is data (`Modality`), registered by name in `MODALITIES`. It says how a source's
`x` arrays are checked, how the pipeline normalises them, and what an exported model puts in
front of the network so that a client feeds raw inputs:

| modality | x (per split) | model input | normalisation (train statistics) |
|---|---|---|---|
| `image` | (N, H, W[, C]) in [0, 255] | float32 | `(x / 255 - mean) / std` per channel |
| `tokens` | (N, T) integer ids >= 0 | int32 | none |
| `tabular` | (N, F) finite numbers | float32 | `(x - mean) / std` per feature |
| `sequence` | (N, T, F) finite numbers | float32 | `(x - mean) / std` per feature, over N and T |

The rule `infer` applies when `--modality=auto` (the default), from the training `x` alone:
rank 4 is an image; rank 3 is a grayscale image when its values are integers or not negative,
and a sequence when it holds a negative number; rank 2 is token ids when its dtype is an integer type, and
tabular features otherwise. Every image dataset lth_tf read before modalities existed is still
an image. Any other choice is `--modality=NAME`. Augmentation and `--image_size` are for images
only.
"""
import dataclasses
from typing import Tuple

import numpy as np

from lth_tf.errors import DataError
from lth_tf.registry import Registry

AUTO = "auto"


@dataclasses.dataclass(frozen=True)
class Modality:
  """One kind of example.

  Attributes:
    name: the registered name.
    ranks: the ranks `x` may have (with the example axis).
    scale: raw inputs are divided by it before the statistics apply (255 for pixels).
    normalised: the pipeline standardises the last axis with the training split's statistics.
    integer: the examples are integer ids, fed to the model as int32.
    shape: what an example is, for error messages.
  """
  name: str
  ranks: Tuple[int, ...]
  scale: float
  normalised: bool
  integer: bool
  shape: str


MODALITIES: Registry[Modality] = Registry("modality")
for _modality in (
    Modality("image", (3, 4), 255.0, True, False, "images (N, H, W[, C]) in [0, 255]"),
    Modality("tokens", (2,), 1.0, False, True, "token ids (N, T), integers >= 0"),
    Modality("tabular", (2,), 1.0, True, False, "tabular features (N, F)"),
    Modality("sequence", (3,), 1.0, True, False, "sequences (N, T, F)"),
):
  MODALITIES.add(_modality.name, _modality)
NAMES = tuple(MODALITIES.names())


def as_nhwc(images: np.ndarray, what: str) -> np.ndarray:
  """Checks images and returns them as (N, H, W, C); grayscale (N, H, W) gains C = 1.

  Args:
    images: uint8 images, or any numeric type with values in [0, 255].
    what: names the array in error messages.

  Returns:
    The images, not copied when already NHWC.

  Raises:
    DataError: wrong rank, channel count or dtype, or values outside [0, 255].
  """
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
    raise DataError(f"{what}: expected images of shape (N, H, W[, C]) with C in 1, 3, 4; "
                    f"got {images.shape}")
  if images.dtype.kind not in "uif":
    raise DataError(f"{what}: images must be numeric; got dtype {images.dtype}")
  if images.dtype != np.uint8 and images.size:
    low, high = images.min(), images.max()
    if not (np.isfinite(low) and np.isfinite(high) and 0 <= low and high <= 255):
      raise DataError(f"{what}: pixel values must be in [0, 255]; got [{low}, {high}] (not "
                    "images? give --modality=sequence, tabular or tokens)")
  return images


def infer(x: np.ndarray) -> str:
  """The modality of training examples `x` by the rule in the module docstring."""
  x = np.asarray(x)
  integer = x.dtype.kind in "ui"
  if x.ndim == 4:
    return "image"
  if x.ndim == 3:
    if integer or not x.size:
      return "image"
    return "image" if float(np.min(x)) >= 0.0 else "sequence"
  if x.ndim == 2:
    return "tokens" if integer else "tabular"
  raise DataError(f"examples of shape {x.shape} are none of {', '.join(NAMES)} "
                  "(images (N, H, W[, C]), token ids (N, T), tabular (N, F), sequences (N, T, F))")


def resolve(name: str, x_train: np.ndarray) -> Modality:
  """The configured modality, or the inferred one for `auto`."""
  if name == AUTO:
    name = infer(x_train)
  return MODALITIES.get(name)


def check(modality: Modality, x: np.ndarray, what: str) -> np.ndarray:
  """Checks `x` against `modality` and returns it (images as NHWC, tokens as int32).

  Raises:
    DataError: wrong rank or dtype, float token ids, negative ids, non-finite features.
  """
  if modality.name == "image":
    return as_nhwc(x, what)
  x = np.asarray(x)
  if x.ndim not in modality.ranks:
    raise DataError(f"{what}: --modality={modality.name} expects {modality.shape}; got shape "
                    f"{x.shape}")
  if x.dtype.kind not in "uif":
    raise DataError(f"{what}: examples must be numeric; got dtype {x.dtype}")
  if modality.integer:
    if x.dtype.kind == "f":
      raise DataError(f"{what}: token ids must be integers; got dtype {x.dtype} (use "
                      "--modality=tabular or sequence for real-valued features)")
    if x.size and (int(x.min()) < 0 or int(x.max()) > np.iinfo(np.int32).max):
      raise DataError(f"{what}: token ids must be in [0, {np.iinfo(np.int32).max}]; got "
                      f"[{int(x.min())}, {int(x.max())}]")
    return x.astype(np.int32, copy=False)
  if x.size and not np.isfinite(x).all():
    raise DataError(f"{what}: {int(np.count_nonzero(~np.isfinite(x)))} values are not finite")
  return x


def raw_inputs(modality: Modality, x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
  """The raw inputs a client feeds, from the pipeline's normalised `x` (what export checks)."""
  if not modality.normalised:
    return np.asarray(x)
  return ((np.asarray(x, np.float32) * std + mean) * np.float32(modality.scale)).astype(np.float32)
