"""Your own dataset function, `py:package.module:function`: its four arrays, checked as the npz
source checks a file."""
import numpy as np

from lth_tf import user_code
from lth_tf.data import npz
from lth_tf.data.base import SCHEMES, RawData
from lth_tf.errors import DataError


@SCHEMES.register("py")
def read(spec: str, data_dir: str, image_size=()) -> RawData:
  """Calls `function()` and checks that it returns `x_train, y_train, x_test, y_test`.

  Images are (N, H, W) or (N, H, W, C) in [0, 255] (the pipeline normalises them), labels
  integers; the class count is the largest training label plus one, every class below it with
  a training example (`base.class_count`), unless `--num_classes` declares it.

  Raises:
    ConfigError: a malformed spec, a missing module or function.
    DataError: the function raised, or returned something else than four arrays that pass the
      npz source's checks.
  """
  del data_dir, image_size  # the function finds its own data; `read_raw` resizes
  what = f"dataset py:{spec}"
  function = user_code.load(spec, "dataset")
  try:
    result = function()
  except Exception as error:  # the user's function failed: one line, its own message
    raise DataError(f"{what}: the function raised {type(error).__name__}: {error}") from None
  if not isinstance(result, (tuple, list)) or len(result) != len(npz.KEYS):
    raise DataError(f"{what}: the function must return the four arrays "
                    f"{', '.join(npz.KEYS)}; it returned {type(result).__name__}")
  arrays = {}
  for key, value in zip(npz.KEYS, result):
    array = np.asarray(value)
    if array.dtype == object:
      raise DataError(f"{what}: {key} is not a numeric array")
    arrays[key] = array
  return npz.from_arrays(arrays, what)
