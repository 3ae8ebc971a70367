"""Synthetic dataset functions for the model zoo: small, deterministic and learnable.

Each function takes no arguments and returns `x_train, y_train, x_test, y_test` as numpy arrays:
240 training and 120 test examples, labels int64 in 0..2, every class in both splits (labels are
balanced, then shuffled). Every function draws from its own fixed-seed generator.
"""
import numpy as np

try:  # imported as part of a package (tests.zoo.zoo_data, or zoo.zoo_data with tests/ on sys.path)
  from .zoo_models import VOCAB
except ImportError:  # imported as a top-level module with tests/zoo on sys.path
  from zoo_models import VOCAB

NUM_CLASSES = 3
TRAIN, TEST = 240, 120


def _labels(rng, count):
  """Balanced labels 0..2 in a random order, int64."""
  labels = np.arange(count) % NUM_CLASSES
  rng.shuffle(labels)
  return labels.astype(np.int64)


def _splits(make, seed):
  rng = np.random.default_rng(seed)
  x_train, y_train = make(rng, _labels(rng, TRAIN))
  x_test, y_test = make(rng, _labels(rng, TEST))
  return x_train, y_train, x_test, y_test


def images():
  """uint8 (N, 8, 8, 1) in [0, 255]: dim noise plus a bright 4x4 patch in a per-class quadrant."""
  corners = [(0, 0), (0, 4), (4, 2)]  # top-left, top-right, bottom-middle
  def make(rng, labels):
    x = rng.integers(0, 70, (len(labels), 8, 8, 1))
    for label, (row, col) in enumerate(corners):
      x[labels == label, row:row + 4, col:col + 4, :] += 170
    return np.clip(x, 0, 255).astype(np.uint8), labels
  return _splits(make, 101)


def images_rgb():
  """uint8 (N, 8, 8, 3) in [0, 255]: dim noise plus a bright centre patch in a per-class colour."""
  def make(rng, labels):
    x = rng.integers(0, 70, (len(labels), 8, 8, 3))
    for label in range(NUM_CLASSES):
      x[labels == label, 1:7, 1:7, label] += 170
    return np.clip(x, 0, 255).astype(np.uint8), labels
  return _splits(make, 102)


def tokens():
  """int32 token ids (N, 12) in [0, VOCAB): shared filler tokens plus 4 tokens of a per-class set.

  Class k's own tokens are 1 + 5k .. 5 + 5k; the filler is drawn from [16, VOCAB) for every class.
  """
  def make(rng, labels):
    x = rng.integers(16, VOCAB, (len(labels), 12))
    for i, label in enumerate(labels):
      positions = rng.choice(12, size=4, replace=False)
      x[i, positions] = rng.integers(1 + 5 * label, 6 + 5 * label, size=4)
    return x.astype(np.int32), labels
  return _splits(make, 103)


def tabular():
  """float32 (N, 6) on different scales; the class is the largest of three linear scores.

  Columns: a standard normal, a fraction in [0, 1], an amount in the thousands, a small
  measurement (~0.01), a count 0..20, and a noise column. Class k is the k-th of the first three
  columns that is largest once each is standardised (a linear rule; examples within 0.3 of a tie
  are left out); the last three columns do not affect the label.
  """
  def make(rng, labels):
    count = 6 * len(labels)  # drawn in excess, then kept to match the balanced labels
    z = rng.standard_normal((count, 3))
    columns = np.stack([
        z[:, 0],                                    # ~ N(0, 1)
        rng.uniform(0, 1, count),                   # in [0, 1]
        5000.0 + 1500.0 * z[:, 1],                  # thousands
        0.01 * z[:, 2],                             # tiny
        np.clip(np.round(rng.normal(10, 3, count)), 0, 20),  # a count
        rng.uniform(-100, 100, count),              # noise
    ], axis=1)
    scores = (columns[:, :3] - [0.0, 0.5, 5000.0]) / [1.0, 12 ** -0.5, 1500.0]
    top = np.sort(scores, axis=1)
    drawn = np.where(top[:, -1] - top[:, -2] >= 0.3, scores.argmax(axis=1), -1)
    picked = np.concatenate([np.flatnonzero(drawn == label)[:np.sum(labels == label)]
                             for label in range(NUM_CLASSES)])  # grouped by class
    rank = np.argsort(np.argsort(labels, kind="stable"), kind="stable")
    return columns[picked][rank].astype(np.float32), labels
  return _splits(make, 104)


def sequences():
  """float32 (N, 10, 4): noise plus, in channel k for class k, an offset and a pattern over time.

  The patterns are a rising ramp (class 0), a sine (class 1) and a step half-way (class 2);
  channel 3 is noise only.
  """
  steps = np.arange(10, dtype=np.float64)
  patterns = np.zeros((NUM_CLASSES, 10, 4))
  for label in range(NUM_CLASSES):
    patterns[label, :, label] = 2.0                  # the class's channel sits higher
  patterns[0, :, 0] += steps / 4.5 - 1.0              # channel 0 ramps from -1 to 1
  patterns[1, :, 1] += 1.5 * np.sin(steps * np.pi / 3)  # channel 1 oscillates
  patterns[2, 5:, 2] += 1.5                           # channel 2 steps up half-way
  def make(rng, labels):
    x = 0.5 * rng.standard_normal((len(labels), 10, 4)) + patterns[labels]
    return x.astype(np.float32), labels
  return _splits(make, 105)


def tabular_binary():
  """`tabular` with two classes: class 0 against the other two."""
  x_train, y_train, x_test, y_test = tabular()
  return x_train, (y_train > 0).astype(np.int64), x_test, (y_test > 0).astype(np.int64)
