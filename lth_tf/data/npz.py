"""Local `.npz` files in the Keras datasets layout (`x_train, y_train, x_test, y_test`), never unpickled."""
import os
import zipfile

import numpy as np

from lth_tf.data.base import RawData, as_labels, as_nhwc
from lth_tf.errors import DataError

KEYS = ("x_train", "y_train", "x_test", "y_test")


def read(path: str) -> RawData:
  """Reads and checks a Keras-layout `.npz`; any problem is a one-line `DataError`."""
  if not os.path.isfile(path):
    raise DataError(f"dataset file {path} does not exist")
  try:
    with np.load(path, allow_pickle=False) as archive:
      missing = [k for k in KEYS if k not in archive.files]
      if missing:
        raise DataError(f"{path}: missing arrays {', '.join(missing)} (need {', '.join(KEYS)})")
      arrays = {k: archive[k] for k in KEYS}
  except DataError:
    raise
  except ValueError as error:
    raise DataError(f"{path}: refused to load ({error})") from None
  except (zipfile.BadZipFile, OSError, EOFError, KeyError) as error:
    raise DataError(f"{path}: corrupt or truncated npz file ({error})") from None
  x_train = as_nhwc(arrays["x_train"], f"{path} x_train")
  x_test = as_nhwc(arrays["x_test"], f"{path} x_test")
  if x_train.shape[1:] != x_test.shape[1:]:
    raise DataError(f"{path}: train images {x_train.shape[1:]} and test images "
                    f"{x_test.shape[1:]} differ in shape")
  y_train = as_labels(arrays["y_train"], len(x_train), f"{path} y_train")
  y_test = as_labels(arrays["y_test"], len(x_test), f"{path} y_test")
  num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
  return RawData(x_train, y_train, x_test, y_test, num_classes)
