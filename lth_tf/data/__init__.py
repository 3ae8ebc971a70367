"""Datasets: one registry of sources, one pipeline, one entry point `load`.

Names: a registered dataset (`mnist`, `fashion_mnist`, `cifar10`, `cifar100`, `svhn_cropped`,
`synthetic`, `synthetic_cifar`), `tfds:NAME` for any TFDS image-classification dataset, or
`npz:PATH` for a local file in the Keras datasets layout, or `py:package.module:function` for
your own function returning those four arrays. A registered TFDS dataset installed
offline (`<data_dir>/<name>.npz`, written by `lth data install`) is read from there; otherwise
TFDS loads it from `<data_dir>/tfds`.
"""
import dataclasses
import functools
import os
from typing import Optional, Tuple

from lth_tf.config import DatasetConfig
from lth_tf.data import npz, sizing, tfds_source
from lth_tf.data.base import SCHEMES, SOURCES, RawData, Splits, prepare
from lth_tf.registry import import_modules

# Every module of this package is imported: a source module registers its datasets or its
# `scheme:` (synthetic, npz, tfds, py), so a new source is one new file.
import_modules(__name__, __path__)

TFDS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "svhn_cropped")
# The class count each registered TFDS dataset declares (its installed copy's labels must fit).
DECLARED_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100,
                    "svhn_cropped": 10}



def installed_path(name: str, data_dir: str) -> str:
  """Where `lth data install` puts the offline copy of dataset `name`."""
  return os.path.join(data_dir, f"{name}.npz")


def _installed_or_tfds(name: str, data_dir: str, image_size=()) -> RawData:
  installed = installed_path(name, data_dir)
  if os.path.exists(installed):
    return dataclasses.replace(npz.read(installed), num_classes=DECLARED_CLASSES[name],
                               declared=True)
  return tfds_source.read(name, data_dir, image_size)


for _name in TFDS_DATASETS:
  SOURCES.add(_name, _installed_or_tfds)


def _scheme(name: str) -> Tuple[Optional[str], str]:
  scheme, sep, argument = name.partition(":")
  return (scheme, argument) if sep and scheme in SCHEMES else (None, name)


def read_raw(name: str, data_dir: str, image_size: Tuple[int, ...] = ()) -> RawData:
  """The source's arrays for dataset `name`, before splitting and normalisation.

  Args:
    name: the dataset name.
    data_dir: where offline datasets are installed and TFDS data lives.
    image_size: () keeps the images as stored; (height, width) resizes them to it
      (`lth_tf.data.sizing`).

  Raises:
    ConfigError: an unknown name (the message lists the registered ones).
    DataError: the source is missing, unavailable or corrupt.
  """
  scheme, argument = _scheme(name)
  image_size = sizing.size_of(image_size)
  if scheme is not None:
    raw = SCHEMES.get(scheme)(argument, data_dir, image_size)
  else:
    raw = SOURCES.get(name)(name, data_dir, image_size)
  return sizing.resize_raw(raw, image_size)


def _file_stamp(name: str, data_dir: str) -> Optional[Tuple[str, int, int]]:
  """Identifies the file a name reads (path, size, mtime), so the cache sees it replaced."""
  scheme, argument = _scheme(name)
  if scheme == "npz":
    path = argument
  elif scheme is None and name in TFDS_DATASETS:
    path = installed_path(name, data_dir)
  else:
    return None
  try:
    stat = os.stat(path)
  except OSError:
    return None
  return os.path.abspath(path), stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _load_cached(config: DatasetConfig, data_dir: str, stamp) -> Splits:
  del stamp  # part of the cache key only
  return prepare(read_raw(config.name, data_dir, config.image_size), config)


def load(config: DatasetConfig, data_dir: str) -> Splits:
  """Loads, splits and normalises a dataset.

  Results are cached (their arrays are read-only); a file replaced since is read again.

  Args:
    config: the dataset part of the experiment config.
    data_dir: where offline datasets are installed and TFDS data lives.

  Returns:
    The splits.

  Raises:
    ConfigError: an unknown dataset name.
    DataError: a missing, unavailable or corrupt source, or settings the data cannot satisfy;
      raised before any training starts.
  """
  data_dir = os.path.abspath(data_dir)
  return _load_cached(config, data_dir, _file_stamp(config.name, data_dir))


load.cache_clear = _load_cached.cache_clear

DATASETS = SOURCES
__all__ = ["load", "read_raw", "installed_path", "Splits", "RawData", "DATASETS", "SOURCES",
           "SCHEMES", "TFDS_DATASETS"]
