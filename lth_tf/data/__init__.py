"""Datasets: one registry of sources, one pipeline, one entry point `load`.

Names: a registered dataset (`mnist`, `fashion_mnist`, `cifar10`, `cifar100`, `svhn_cropped`,
`synthetic`, `synthetic_cifar`), `tfds:NAME` for any TFDS image-classification dataset, or
`npz:PATH` for a local file in the Keras datasets layout. A registered TFDS dataset installed
offline (`<data_dir>/<name>.npz`, written by `lth data install`) is read from there; otherwise
TFDS loads it.
"""
import functools
import os

from lth_tf.config import DatasetConfig
from lth_tf.data import npz, synthetic, tfds_source  # noqa: F401  (sources register themselves)
from lth_tf.data.base import SOURCES, RawData, Splits, prepare

TFDS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "svhn_cropped")


def _installed_or_tfds(name: str, data_dir: str) -> RawData:
  installed = os.path.join(data_dir, f"{name}.npz")
  if os.path.exists(installed):
    return npz.read(installed)
  return tfds_source.read(name, data_dir)


for _name in TFDS_DATASETS:
  SOURCES.add(_name, _installed_or_tfds)


def read_raw(name: str, data_dir: str) -> RawData:
  """The source's arrays for dataset `name`, before splitting and normalisation."""
  if name.startswith("npz:"):
    return npz.read(name[len("npz:"):])
  if name.startswith("tfds:"):
    return tfds_source.read(name[len("tfds:"):], data_dir)
  return SOURCES.get(name)(name, data_dir)


@functools.lru_cache(maxsize=4)
def load(config: DatasetConfig, data_dir: str) -> Splits:
  """Loads, splits and normalises a dataset; errors are `DataError`/`ConfigError` before training."""
  return prepare(read_raw(config.name, data_dir), config)


DATASETS = SOURCES
__all__ = ["load", "read_raw", "Splits", "RawData", "DATASETS", "SOURCES", "TFDS_DATASETS"]
