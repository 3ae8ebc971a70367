"""`Splits` and the one pipeline every source goes through: filter, hold out, subset, normalise."""
import dataclasses
from typing import Callable, Tuple

import numpy as np

from lth_tf.config import DatasetConfig
from lth_tf.errors import DataError
from lth_tf.registry import Registry


@dataclasses.dataclass(frozen=True)
class RawData:
  """A source's arrays before the pipeline: images NHWC in [0, 255], integer labels."""
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int


@dataclasses.dataclass(frozen=True)
class Splits:
  """Normalised in-memory splits (x float32 NHWC, y int32) and the normalisation used.

  The model input is `(raw_pixels / 255 - mean) / std`, per channel.
  """
  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  input_shape: Tuple[int, ...]
  mean: np.ndarray
  std: np.ndarray
  name: str


Source = Callable[[str, str], RawData]  # (dataset name, data_dir) -> RawData
SOURCES: Registry[Source] = Registry("dataset")


def as_nhwc(images: np.ndarray, what: str) -> np.ndarray:
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
    raise DataError(f"{what}: expected images of shape (N, H, W[, C]); got {images.shape}")
  if images.dtype.kind not in "uif":
    raise DataError(f"{what}: images must be numeric; got dtype {images.dtype}")
  return images


def as_labels(labels: np.ndarray, count: int, what: str) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.dtype.kind not in "ui":
    raise DataError(f"{what}: labels must be integers; got dtype {labels.dtype}")
  labels = labels.reshape(-1).astype(np.int64)
  if len(labels) != count:
    raise DataError(f"{what}: {count} images but {len(labels)} labels")
  if len(labels) and labels.min() < 0:
    raise DataError(f"{what}: negative labels")
  return labels


def _filter_classes(x, y, classes):
  keep = np.isin(y, classes)
  relabel = {c: i for i, c in enumerate(classes)}
  return x[keep], np.array([relabel[v] for v in y[keep]], np.int64)


def _subset(y: np.ndarray, config: DatasetConfig, num_classes: int) -> np.ndarray:
  """Indices of the training subset (sorted), seeded by `split_seed`."""
  rng = np.random.default_rng([config.split_seed, 1])
  if config.train_examples:
    if config.train_examples > len(y):
      raise DataError(f"train_examples={config.train_examples} but only {len(y)} training "
                      "examples remain after the validation hold-out")
    return np.sort(rng.permutation(len(y))[:config.train_examples])
  per_class = config.train_examples_per_class
  chosen = []
  for label in range(num_classes):
    members = np.flatnonzero(y == label)
    if len(members) < per_class:
      raise DataError(f"train_examples_per_class={per_class} but class {label} has only "
                      f"{len(members)} training examples")
    chosen.append(rng.permutation(members)[:per_class])
  return np.sort(np.concatenate(chosen))


def prepare(raw: RawData, config: DatasetConfig) -> Splits:
  """Class filter → validation hold-out → statistics → subset → normalisation."""
  x_train, y_train = raw.x_train, raw.y_train
  x_test, y_test = raw.x_test, raw.y_test
  num_classes = raw.num_classes
  if config.classes:
    bad = [c for c in config.classes if not 0 <= c < num_classes]
    if bad or len(set(config.classes)) != len(config.classes):
      raise DataError(f"classes must be distinct labels in [0, {num_classes}); got {config.classes}")
    x_train, y_train = _filter_classes(x_train, y_train, config.classes)
    x_test, y_test = _filter_classes(x_test, y_test, config.classes)
    num_classes = len(config.classes)
  if config.validation_size >= len(y_train):
    raise DataError(f"validation_size={config.validation_size} leaves no training examples "
                    f"(the training split has {len(y_train)})")
  order = np.random.default_rng([config.split_seed, 0]).permutation(len(y_train))
  val_idx = np.sort(order[:config.validation_size])
  train_idx = np.sort(order[config.validation_size:])
  x_val, y_val = x_train[val_idx], y_train[val_idx]
  x_train, y_train = x_train[train_idx], y_train[train_idx]
  channels = x_train.reshape(-1, x_train.shape[-1]).astype(np.float64) / 255.0
  mean = channels.mean(axis=0).astype(np.float32)
  std = np.maximum(channels.std(axis=0), 1e-6).astype(np.float32)
  if config.train_examples or config.train_examples_per_class:
    keep = _subset(y_train, config, num_classes)
    x_train, y_train = x_train[keep], y_train[keep]

  def normalise(x):
    return ((x.astype(np.float32) / np.float32(255.0) - mean) / std).astype(np.float32)

  return Splits(
      x_train=normalise(x_train), y_train=y_train.astype(np.int32),
      x_val=normalise(x_val), y_val=y_val.astype(np.int32),
      x_test=normalise(x_test), y_test=y_test.astype(np.int32),
      num_classes=int(num_classes), input_shape=tuple(int(d) for d in x_train.shape[1:]),
      mean=mean, std=std, name=config.name)
