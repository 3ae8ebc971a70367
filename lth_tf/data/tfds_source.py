"""TensorFlow Datasets: any image-classification dataset by name, loaded whole into memory."""
import os

import numpy as np


from lth_tf.data.base import RawData, as_labels, as_nhwc
from lth_tf.errors import DataError


def _to_numpy(dataset):
  """Materialises an (image, label) dataset in memory, in order."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  images, labels = [], []
  for x, y in tfds.as_numpy(dataset.batch(4096)):
    images.append(x)
    labels.append(y)
  return np.concatenate(images), np.concatenate(labels)


def _builder(name: str, data_dir: str):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  try:
    return tfds.builder(name, data_dir=os.path.join(data_dir, "tfds"))
  except Exception as error:  # unknown names and registry errors
    raise DataError(f"unknown TFDS dataset {name!r} ({str(error).splitlines()[0]})") from None


def prepare(name: str, data_dir: str) -> str:
  """Downloads and prepares a TFDS dataset into `<data_dir>/tfds` (needs the internet)."""
  builder = _builder(name, data_dir)
  try:
    builder.download_and_prepare()
  except Exception as error:  # network and preparation errors
    raise DataError(f"could not download TFDS dataset {name!r}: {str(error).splitlines()[0]}") from None
  return builder.data_dir


def read(name: str, data_dir: str) -> RawData:
  """Loads the prepared `train` and `test` splits of TFDS dataset `name`; never downloads."""
  builder = _builder(name, data_dir)
  try:
    train, test = (_to_numpy(builder.as_dataset(split=split, as_supervised=True))
                   for split in ("train", "test"))
  except Exception as error:  # not prepared, or corrupt files
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    raise DataError(f"TFDS dataset {name!r} is not available in {data_dir} ({message[:200]}); "
                    f"install it with `lth data install` (offline sources) or `lth data install "
                    f"--tfds_datasets={name}` where the internet is reachable") from None
  label = builder.info.features["label"]
  num_classes = int(getattr(label, "num_classes", 0)) or int(max(train[1].max(), test[1].max())) + 1
  x_train = as_nhwc(train[0], f"{name} train")
  x_test = as_nhwc(test[0], f"{name} test")
  return RawData(x_train, as_labels(train[1], len(x_train), name), x_test,
                 as_labels(test[1], len(x_test), name), num_classes)
