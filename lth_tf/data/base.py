"""`Splits` and the one pipeline every source goes through: filter, hold out, subset, normalise."""
import dataclasses
import hashlib
from typing import Callable, List, Tuple

import numpy as np

from lth_tf.config import DatasetConfig
from lth_tf.data import augment
from lth_tf.data import modality as modality_lib
from lth_tf.data.modality import as_nhwc  # noqa: F401  (re-exported: the sources' image check)
from lth_tf.errors import DataError
from lth_tf.registry import Registry

# Examples converted to float64 at a time when computing statistics (bounds the extra memory).
_STATS_CHUNK = 4096


@dataclasses.dataclass(frozen=True)
class RawData:
  """A source's arrays before the pipeline: examples of one modality, integer labels.

  Attributes:
    x_train, x_test: images (N, H, W, C), uint8 or any numeric type with values in [0, 255];
      or token ids, tabular features or sequences (`lth_tf.data.modality`).
    y_train, y_test: labels (N,), non-negative integers below `num_classes`.
    num_classes: the number of classes of the source.
    declared: the source declares `num_classes` (a registered dataset, a TFDS dataset with
      class names); False where it was inferred from the training labels (`inferred_classes`).
  """
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  declared: bool = True


@dataclasses.dataclass(frozen=True)
class Splits:
  """Normalised in-memory splits (x float32, or int32 token ids; y int32) and the normalisation.

  For images the model input is `(raw_pixels / 255 - mean) / std`, per channel; `mean` and `std`
  are in the [0, 1] pixel scale so that an exported model can normalise raw pixels itself. For
  tabular features and sequences it is `(raw - mean) / std` per feature; token ids are fed as
  they are (`lth_tf.data.modality`). The arrays are read-only: `load` caches and shares them.

  Attributes:
    x_train, y_train: the training examples (after the hold-out and any subset).
    x_val, y_val: the validation hold-out, taken from the source's training split.
    x_test, y_test: the source's test split.
    num_classes: classes after any class filter.
    input_shape: one example's shape: (H, W, C) for images.
    mean, std: float32 per-channel (per-feature) statistics of the training split after the
      hold-out and before any subset; 0 and 1 for token ids.
    name: the dataset name as configured.
    digest: SHA-256 of the dtype, shape and bytes of every split's images and labels before
      normalisation: names the data an experiment trains on, whatever file it came from.
    augmentation: the augmentation of training batches (`lth_tf.data.augment`; `none`): the
      arrays are never augmented, the trainers augment each batch they draw from `x_train`.
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
  digest: str = ""
  augmentation: str = "none"
  modality: str = "image"

  def batch(self, seed: int, size: int, per_class: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Training examples drawn without replacement by a generator seeded with `seed`, in
    training-set order: what a strategy scores a network on. `size` examples of the whole split
    (all of them if it is smaller), or with `per_class` `size` examples of every class (all of
    a class that has fewer), the balanced batch of GraSP's reference code."""
    order = np.random.default_rng(seed).permutation(len(self.y_train))
    if per_class:
      labels = self.y_train[order]
      index = np.concatenate([order[labels == label][:size] for label in np.unique(labels)])
    else:
      index = order[:size]
    index = np.sort(index)
    return self.x_train[index], self.y_train[index]


# (dataset name, data_dir, image_size) -> RawData. `image_size` is () or the (height, width)
# the images are asked at: a source may return them at that size (the TFDS reader does, which
# datasets of varying image size need) or as stored; `read_raw` resizes what is not yet.
Source = Callable[[str, str, Tuple[int, ...]], RawData]
SOURCES: Registry[Source] = Registry("dataset")
# `SCHEME:ARGUMENT` names (`npz:PATH`, `tfds:NAME`, `py:module:function`): (argument, data_dir,
# image_size) -> RawData; each source module registers its scheme.
SCHEMES: Registry[Source] = Registry("dataset scheme")


def as_examples(x: np.ndarray, what: str) -> np.ndarray:
  """Checks that `x` is a numeric array of examples (rank 2 to 4); what they are is the
  pipeline's to check (`lth_tf.data.modality`).

  Raises:
    DataError: not numeric, or of rank below 2 or above 4.
  """
  x = np.asarray(x)
  if x.dtype.kind not in "uif":
    raise DataError(f"{what}: examples must be numeric; got dtype {x.dtype}")
  if not 2 <= x.ndim <= 4:
    raise DataError(f"{what}: expected images (N, H, W[, C]), token ids (N, T), tabular "
                    f"features (N, F) or sequences (N, T, F); got shape {x.shape}")
  return x


def as_labels(labels: np.ndarray, count: int, what: str) -> np.ndarray:
  """Checks labels and returns them as int64 (N,); (N, 1) is accepted.

  Raises:
    DataError: not integers, negative, or not one label per image.
  """
  labels = np.asarray(labels)
  if labels.dtype.kind not in "ui":
    raise DataError(f"{what}: labels must be integers; got dtype {labels.dtype}")
  if labels.ndim > 1 and labels.size != len(labels):
    raise DataError(f"{what}: labels must be one integer per image; got shape {labels.shape}")
  labels = labels.reshape(-1).astype(np.int64)
  if len(labels) != count:
    raise DataError(f"{what}: {count} images but {len(labels)} labels")
  negative = int(np.count_nonzero(labels < 0))
  if negative:
    raise DataError(f"{what}: {negative} negative labels")
  return labels


def inferred_classes(y_train: np.ndarray) -> int:
  """The class count of a source that does not declare one: the largest training label plus one.

  The test split is not consulted: a test label outside the training classes is an error in
  `prepare`, never an extra output of the model; so is a class with no training example
  (`class_count`), unless the user declares the count.
  """
  return int(y_train.max(initial=-1)) + 1


def _missing(present: np.ndarray, shown: int = 5) -> List[int]:
  """Up to `shown` labels below `present`'s largest that `present` (sorted, distinct) lacks,
  found from its gaps (nothing is allocated per missing label)."""
  out: List[int] = []
  previous = -1
  for label in present.tolist():
    out.extend(range(previous + 1, min(label, previous + 1 + shown - len(out))))
    if len(out) >= shown:
      break
    previous = label
  return out


def class_count(raw: RawData, config, y_train: np.ndarray, what: str) -> int:
  """The model's class count: the source's declared one, the user's `num_classes`, or the
  inferred one, whose every class must have a training example; at least two classes must.

  Raises:
    DataError: a declared count the user contradicts, an inferred count with classes no training
      example has (a stray label would add outputs, a huge one allocate them), or fewer than two
      classes among the training labels; one line, before anything is allocated per class.
  """
  present = np.unique(y_train)
  count = raw.num_classes
  if config.num_classes:
    if raw.declared and config.num_classes != raw.num_classes:
      raise DataError(f"{what}: the dataset declares {raw.num_classes} classes; --num_classes="
                      f"{config.num_classes} is for a source that declares none")
    count = config.num_classes
  elif not raw.declared and len(present) < count:
    gaps = _missing(present)
    more = count - len(present) - len(gaps)
    raise DataError(
        f"{what}: classes {', '.join(map(str, gaps))}{f' and {more} more' if more else ''} have "
        f"no training example, but the largest label {int(present[-1])} would give the model "
        f"{count} outputs; relabel the classes 0..n-1, or declare the class count with "
        "--num_classes (a subset of a larger label space)")
  if len(present) < 2:
    raise DataError(f"{what}: the training labels hold {len(present)} class"
                    f"{'' if len(present) == 1 else 'es'} ({', '.join(map(str, present))}); a "
                    "classifier needs at least two")
  return count


def _check_labels(labels: np.ndarray, num_classes: int, what: str) -> None:
  outside = int(np.count_nonzero(labels >= num_classes))
  if outside:
    raise DataError(f"{what}: {outside} labels outside 0..{num_classes - 1} (largest label "
                    f"{int(labels.max())}) but the dataset has {num_classes} classes")


def _check_config(config: DatasetConfig, num_classes: int) -> None:
  if config.classes:
    bad = [c for c in config.classes if not 0 <= c < num_classes]
    if bad or len(set(config.classes)) != len(config.classes):
      raise DataError(f"classes must be distinct labels in [0, {num_classes}); got {config.classes}")
  if config.validation_size < 0:
    raise DataError(f"validation_size must be >= 0; got {config.validation_size}")
  if config.train_examples < 0 or config.train_examples_per_class < 0:
    raise DataError("train_examples and train_examples_per_class must be >= 0")
  if config.train_examples and config.train_examples_per_class:
    raise DataError("give train_examples or train_examples_per_class, not both")
  augment.check(config.augmentation)


def _filter_classes(x: np.ndarray, y: np.ndarray, classes: Tuple[int, ...], num_classes: int):
  """Keeps the examples of `classes` and relabels them 0..n-1 in the order given."""
  relabel = np.full(max(num_classes, int(y.max(initial=0)) + 1), -1, np.int64)
  relabel[list(classes)] = np.arange(len(classes))
  keep = np.flatnonzero(relabel[y] >= 0)
  return x[keep], relabel[y[keep]]


def _hold_out(count: int, config: DatasetConfig):
  """Sorted (train, validation) indices: `validation_size` examples chosen by `split_seed`."""
  if config.validation_size >= count:
    raise DataError(f"validation_size={config.validation_size} leaves no training examples "
                    f"(the training split has {count})")
  order = np.random.default_rng([config.split_seed, 0]).permutation(count)
  return np.sort(order[config.validation_size:]), np.sort(order[:config.validation_size])


def channel_statistics(images: np.ndarray, scale: float = 255.0) -> Tuple[np.ndarray, np.ndarray]:
  """Per-channel (last-axis) mean and std of `images / scale` (for pixels: the [0, 1] scale), as
  float32.

  Accumulated in float64 a chunk of examples at a time, so that large uint8 datasets are never
  copied whole.
  """
  channels = images.shape[-1]
  total = np.zeros(channels, np.float64)
  count = images.size // channels
  for start in range(0, len(images), _STATS_CHUNK):
    total += images[start:start + _STATS_CHUNK].reshape(-1, channels).sum(axis=0, dtype=np.float64)
  mean = total / max(count, 1)
  squares = np.zeros(channels, np.float64)
  for start in range(0, len(images), _STATS_CHUNK):
    centred = images[start:start + _STATS_CHUNK].reshape(-1, channels).astype(np.float64) - mean
    squares += np.einsum("ij,ij->j", centred, centred)
  std = np.sqrt(squares / max(count, 1))
  return (mean / scale).astype(np.float32), np.maximum(std / scale, 1e-6).astype(np.float32)


def _subset(y: np.ndarray, config: DatasetConfig, num_classes: int) -> np.ndarray:
  """Sorted indices of the training subset, chosen by `split_seed`."""
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
                      f"{len(members)} training examples after the validation hold-out")
    chosen.append(rng.permutation(members)[:per_class])
  return np.sort(np.concatenate(chosen))


def digest(*arrays: np.ndarray) -> str:
  """SHA-256 of the arrays in order: each one's dtype, shape and bytes."""
  sha = hashlib.sha256()
  for array in arrays:
    array = np.ascontiguousarray(array)
    sha.update(f"{array.dtype.str}{array.shape};".encode())
    sha.update(array.reshape(-1).view(np.uint8))
  return sha.hexdigest()


def _normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray,
               modality: modality_lib.Modality) -> np.ndarray:
  if not modality.normalised:
    out = x.astype(np.int32 if modality.integer else np.float32)
  else:
    out = x.astype(np.float32)  # a fresh array, normalised in place
    out /= np.float32(modality.scale)
    out -= mean
    out /= std
  out.setflags(write=False)
  return out


def _check_modality(config: DatasetConfig, modality: modality_lib.Modality) -> None:
  if modality.name == "image":
    return
  if config.augmentation != "none":
    raise DataError(f"{config.name}: augmentation {config.augmentation!r} is for images; the "
                    f"examples are {modality.shape}")
  if config.image_size:
    raise DataError(f"{config.name}: --image_size is for images; the examples are "
                    f"{modality.shape}")


def _frozen(labels: np.ndarray) -> np.ndarray:
  labels = labels.astype(np.int32)
  labels.setflags(write=False)
  return labels


def prepare(raw: RawData, config: DatasetConfig) -> Splits:
  """The pipeline: class filter, validation hold-out, statistics, subset, normalisation.

  Args:
    raw: the source's arrays; images (N, H, W) or (N, H, W, C) in [0, 255], token ids,
      tabular features or sequences (`config.modality`), integer labels.
    config: `classes`, `validation_size`, `split_seed`, `train_examples`,
      `train_examples_per_class` and `modality` are used; `name` is recorded.

  Returns:
    The splits. Statistics come from the training split after the hold-out and before the
    subset, so that runs at different data budgets share the same normalisation.

  Raises:
    DataError: inconsistent settings, or too few examples for them.
  """
  if config.num_classes < 0:
    raise DataError(f"num_classes must be >= 0 (0: inferred); got {config.num_classes}")
  y_train = as_labels(raw.y_train, len(raw.x_train), f"{config.name} y_train")
  if not len(y_train):
    raise DataError(f"{config.name}: the training split is empty")
  num_classes = class_count(raw, config, y_train, f"{config.name} y_train")
  _check_config(config, num_classes)
  modality = modality_lib.resolve(config.modality, raw.x_train)
  _check_modality(config, modality)
  x_train = modality_lib.check(modality, raw.x_train, f"{config.name} x_train")
  x_test = modality_lib.check(modality, raw.x_test, f"{config.name} x_test")
  if x_train.shape[1:] != x_test.shape[1:]:
    raise DataError(f"{config.name}: train examples {x_train.shape[1:]} and test examples "
                    f"{x_test.shape[1:]} differ in shape")
  y_test = as_labels(raw.y_test, len(x_test), f"{config.name} y_test")
  _check_labels(y_train, num_classes, f"{config.name} y_train")
  _check_labels(y_test, num_classes, f"{config.name} y_test")
  if config.classes:
    x_train, y_train = _filter_classes(x_train, y_train, config.classes, num_classes)
    x_test, y_test = _filter_classes(x_test, y_test, config.classes, num_classes)
    num_classes = len(config.classes)
  if not len(y_test):
    raise DataError(f"{config.name}: the test split is empty"
                    + (f" after keeping classes {list(config.classes)}" if config.classes else ""))
  train_idx, val_idx = _hold_out(len(y_train), config)
  x_val, y_val = x_train[val_idx], y_train[val_idx]
  x_train, y_train = x_train[train_idx], y_train[train_idx]
  if modality.normalised:
    mean, std = channel_statistics(x_train, modality.scale)
  else:
    mean, std = np.zeros(1, np.float32), np.ones(1, np.float32)
  if config.train_examples or config.train_examples_per_class:
    keep = _subset(y_train, config, num_classes)
    x_train, y_train = x_train[keep], y_train[keep]
  mean.setflags(write=False)
  std.setflags(write=False)
  fingerprint = digest(x_train, y_train, x_val, y_val, x_test, y_test)
  return Splits(
      x_train=_normalise(x_train, mean, std, modality), y_train=_frozen(y_train),
      x_val=_normalise(x_val, mean, std, modality), y_val=_frozen(y_val),
      x_test=_normalise(x_test, mean, std, modality), y_test=_frozen(y_test),
      num_classes=num_classes, input_shape=tuple(int(d) for d in x_train.shape[1:]),
      mean=mean, std=std, name=config.name, digest=fingerprint,
      augmentation=config.augmentation, modality=modality.name)
