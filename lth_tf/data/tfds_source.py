"""TensorFlow Datasets: any classification dataset by name whose supervised input is an image or a
numeric array (features, sequences, token ids), loaded whole into memory.

With an image size (`--image_size`) every image is resized inside the `tf.data` pipeline before
the examples are gathered (`lth_tf.data.sizing`): datasets of varying image size (`malaria`) can
then be loaded, and large ones are held only at that size.
"""
from __future__ import annotations

import os
from typing import Sequence, Tuple

import numpy as np

from lth_tf.data import sizing
from lth_tf.data.base import SCHEMES, RawData, as_examples, as_labels, inferred_classes
from lth_tf.errors import DataError

SPLITS = ("train", "test")


def _first_line(error: Exception) -> str:
  text = str(error).strip()
  return (text.splitlines()[0] if text else type(error).__name__)[:200]


def _to_numpy(dataset, image_size: Tuple[int, ...] = ()):
  """Materialises an (image, label) dataset in memory, in order; images resized to
  `image_size` first if it is given."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  if image_size:
    dataset = dataset.map(lambda x, y: (sizing.resize_tensor(x, image_size), y))
  images, labels = [], []
  for x, y in tfds.as_numpy(dataset.batch(4096)):
    images.append(x)
    labels.append(y)
  return np.concatenate(images), np.concatenate(labels)


def _builder(name: str, data_dir: str):
  # TensorFlow is imported only when TFDS is used, and through compat (which chooses Keras 2).
  from lth_tf import compat  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  try:
    return tfds.builder(name, data_dir=os.path.join(data_dir, "tfds"))
  except Exception as error:  # unknown names and registry errors
    raise DataError(f"unknown TFDS dataset {name!r} ({_first_line(error)})") from None


def _check_features(name: str, builder, resized: bool = False) -> int:
  """Checks the supervised input (an `image`, or a numeric array of fixed shape) and `label`
  features, of fixed shape unless the images are `resized`; returns the number of classes (0:
  unknown)."""
  features = builder.info.features
  keys = tuple(builder.info.supervised_keys or ("image", "label"))
  if len(keys) != 2 or keys[0] not in features or keys[1] not in features:
    raise DataError(f"TFDS dataset {name!r} is not a classification dataset of one input and a "
                    f"label (its supervised keys: {keys}; features: {', '.join(features)})")
  inputs, label = features[keys[0]], features[keys[1]]
  dtype = getattr(inputs, "dtype", None)
  if getattr(inputs, "shape", None) is None or dtype is None or not (
      dtype.is_integer or dtype.is_floating):
    raise DataError(f"TFDS dataset {name!r}: its input {keys[0]!r} is not a numeric array "
                    f"(lth_tf reads images, features, sequences and token ids, not "
                    f"{type(inputs).__name__})")
  shape = getattr(inputs, "shape", None)
  if shape is not None and None in tuple(shape) and not resized:
    raise DataError(f"TFDS dataset {name!r} has images of varying size {tuple(shape)}; "
                    "give --image_size=HEIGHT,WIDTH to resize them as they are read")
  return int(getattr(label, "num_classes", 0) or 0)


def prepare(name: str, data_dir: str) -> str:
  """Downloads and prepares a TFDS dataset into `<data_dir>/tfds` (needs the internet).

  Returns:
    The directory TFDS prepared.

  Raises:
    DataError: an unknown name, or a failed download or preparation.
  """
  builder = _builder(name, data_dir)
  try:
    builder.download_and_prepare()
  except Exception as error:  # network and preparation errors
    raise DataError(f"could not download TFDS dataset {name!r}: {_first_line(error)}") from None
  return builder.data_dir


def read(name: str, data_dir: str, image_size: Sequence[int] = (),
         splits: Tuple[str, str] = SPLITS) -> RawData:
  """Loads the prepared training and test splits of TFDS dataset `name`; never downloads.

  Args:
    name: a TFDS name (`mnist`, `cifar10:3.0.2`, ...).
    data_dir: the data directory; TFDS data lives in `<data_dir>/tfds`.
    image_size: () keeps the stored images; (height, width) resizes every image to it.
    splits: the TFDS splits read as the training and the test split; TFDS's slicing syntax
      (`train[:80%]`) names part of one.

  Returns:
    The arrays; `num_classes` comes from the builder's `label` feature, or else from the
    largest training label.

  Raises:
    DataError: an unknown or unsuitable dataset, or one that is not prepared; the message says
      how to install it.
  """
  builder = _builder(name, data_dir)
  image_size = tuple(int(d) for d in image_size)
  num_classes = _check_features(name, builder, resized=bool(image_size))
  try:
    train, test = (_to_numpy(builder.as_dataset(split=split, as_supervised=True), image_size)
                   for split in splits)
  except Exception as error:  # not prepared, missing splits, or corrupt files
    raise DataError(f"TFDS dataset {name!r} is not available in {data_dir} ({_first_line(error)}); "
                    f"install it with `lth data install` (offline sources) or `lth data install "
                    f"--tfds_datasets={name}` where the internet is reachable") from None
  x_train = as_examples(train[0], f"{name} train")
  x_test = as_examples(test[0], f"{name} test")
  y_train = as_labels(train[1], len(x_train), f"{name} train")
  y_test = as_labels(test[1], len(x_test), f"{name} test")
  return RawData(x_train, y_train, x_test, y_test, num_classes or inferred_classes(y_train),
                 declared=bool(num_classes))


@SCHEMES.register("tfds")
def read_scheme(name: str, data_dir: str, image_size: Sequence[int] = ()) -> RawData:
  """`tfds:NAME`: its `train` and `test` splits."""
  return read(name, data_dir, image_size)
