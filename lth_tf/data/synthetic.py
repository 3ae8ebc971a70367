"""Synthetic, learnable image classification data for tests: class prototypes plus noise."""
import numpy as np

from lth_tf.data.base import SOURCES, RawData


def make(shape, num_classes=10, train=3000, test=1000, seed=1234) -> RawData:
  """Generates uint8 images: a random prototype per class, half-strength, plus Gaussian noise.

  Args:
    shape: (H, W, C) of one image.
    num_classes: number of classes (labels drawn uniformly).
    train, test: examples in each split.
    seed: the fixed seed; the same arguments always give the same arrays.

  Returns:
    The arrays, learnable by a small network in a few hundred iterations.
  """
  rng = np.random.default_rng(seed)
  prototypes = rng.uniform(0, 255, size=(num_classes,) + tuple(shape))

  def sample(count):
    labels = rng.integers(0, num_classes, count)
    noise = rng.normal(0, 70, (count,) + tuple(shape))
    images = np.clip(0.5 * prototypes[labels] + 64 + noise, 0, 255).astype(np.uint8)
    return images, labels

  x_train, y_train = sample(train)
  x_test, y_test = sample(test)
  return RawData(x_train, y_train, x_test, y_test, num_classes)


@SOURCES.register("synthetic")
def _synthetic(name: str, data_dir: str, image_size=()) -> RawData:
  return make((28, 28, 1))


@SOURCES.register("synthetic_cifar")
def _synthetic_cifar(name: str, data_dir: str, image_size=()) -> RawData:
  return make((32, 32, 3))
