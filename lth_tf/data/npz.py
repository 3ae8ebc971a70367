"""Local `.npz` files in the Keras datasets layout (`x_train, y_train, x_test, y_test`), never unpickled."""
import os
import zipfile
import zlib

import numpy as np

from lth_tf.data.base import SCHEMES, RawData, as_examples, as_labels, inferred_classes
from lth_tf.errors import DataError

KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_arrays(path: str):
  if not os.path.isfile(path):
    raise DataError(f"dataset file {path} does not exist")
  if not zipfile.is_zipfile(path):
    raise DataError(f"{path}: not an .npz archive (corrupt or truncated file?)")
  try:
    with np.load(path, allow_pickle=False) as archive:
      missing = [k for k in KEYS if k not in archive.files]
      if missing:
        raise DataError(f"{path}: missing arrays {', '.join(missing)} (need {', '.join(KEYS)})")
      return {k: archive[k] for k in KEYS}
  except DataError:
    raise
  except ValueError as error:
    if "pickle" in str(error):
      raise DataError(f"{path}: refused to load object arrays (they would need unpickling); "
                      "store numeric arrays") from None
    raise DataError(f"{path}: corrupt array in the archive ({error})") from None
  except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError) as error:
    raise DataError(f"{path}: corrupt or truncated npz file ({error})") from None


def read(path: str) -> RawData:
  """Reads and checks a Keras-layout `.npz`.

  Args:
    path: the file; images (N, H, W) or (N, H, W, C) in [0, 255] (or token ids, tabular
      features, sequences: `lth_tf.data.modality`), integer labels (N,) or (N, 1).

  Returns:
    The arrays; `num_classes` is the largest training label plus one, not declared (the
    pipeline refuses a test label outside these classes, and a class with no training example
    unless the user declares the count: `base.class_count`).

  Raises:
    DataError: a missing, corrupt or truncated file, missing arrays, object arrays, wrong
      dtypes or shapes, or images and labels of different lengths; one line each.
  """
  return from_arrays(_read_arrays(path), path)


def from_arrays(arrays, what: str) -> RawData:
  """Checks the four arrays of the Keras layout (by name, see `KEYS`) as `read` does.

  Args:
    arrays: `x_train`, `y_train`, `x_test`, `y_test`.
    what: names the source in error messages.
  """
  x_train = as_examples(arrays["x_train"], f"{what} x_train")
  x_test = as_examples(arrays["x_test"], f"{what} x_test")
  if x_train.shape[1:] != x_test.shape[1:]:
    raise DataError(f"{what}: train examples {x_train.shape[1:]} and test examples "
                    f"{x_test.shape[1:]} differ in shape")
  y_train = as_labels(arrays["y_train"], len(x_train), f"{what} y_train")
  y_test = as_labels(arrays["y_test"], len(x_test), f"{what} y_test")
  return RawData(x_train, y_train, x_test, y_test, inferred_classes(y_train), declared=False)


@SCHEMES.register("npz")
def read_scheme(path: str, data_dir: str, image_size=()) -> RawData:
  """`npz:PATH`: the file at PATH (relative to the current directory, not `data_dir`)."""
  del data_dir, image_size  # resized by `read_raw`
  return read(path)
