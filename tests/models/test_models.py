"""Tests of the model zoo: shapes, weight counts, naming, seeded Glorot init, dropout, tfmot."""
import numpy as np
import pytest

from lth_tf.compat import keras, tfmot
from lth_tf.config import ModelConfig
from lth_tf.errors import ConfigError
from lth_tf.models import MODELS, build, count_weights

CIFAR = (32, 32, 3)
MNIST = (28, 28, 1)
NUM_CLASSES = 10
# The MobileNet family has its own tests (tests/models/test_mobilenet.py): depthwise kernels and
# tf_keras's own layer names do not fit the checks below, and each MobileNetV2 build takes seconds.
MOBILE_MODELS = [name for name in MODELS.names() if name.startswith("mobilenet")]
ALL_MODELS = [name for name in MODELS.names() if name not in MOBILE_MODELS]
MNIST_MODELS = ["lenet300_100", "conv2", "conv4", "conv6"]
# Rebuilding these costs seconds each; their families are covered by vgg16, resnet20 and
# resnet18 (ResNet-50 also by tests/models/test_resnet_imagenet.py).
SLOW_MODELS = {"vgg19", "resnet32", "resnet44", "resnet56", "resnet110", "resnet50",
               "resnet50_cifar"}
FAST_MODELS = [name for name in ALL_MODELS if name not in SLOW_MODELS]

EXACT_COUNTS = {
    ("lenet300_100", MNIST): 266_610,
    ("conv2", CIFAR): 4_301_642,
    ("conv4", CIFAR): 2_425_930,
    ("conv6", CIFAR): 2_262_602,
    ("vgg16", CIFAR): 14_728_266,
    ("vgg19", CIFAR): 20_040_522,
    ("resnet20", CIFAR): 272_474,
    ("resnet32", CIFAR): 466_906,
    ("resnet44", CIFAR): 661_338,
    ("resnet56", CIFAR): 855_770,
    ("resnet110", CIFAR): 1_730_714,
}

_CACHE = {}


def cached(name, input_shape=CIFAR, seed=0):
  """Builds each (name, shape, seed) once per test session; VGG-19 alone has 20M weights."""
  key = (name, input_shape, seed)
  if key not in _CACHE:
    _CACHE[key] = build(ModelConfig(name=name), input_shape, NUM_CLASSES, seed)
  return _CACHE[key]


def kernel_layers(model):
  return [layer for layer in model.layers
          if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]


def test_registry_lists_every_family():
  assert set(ALL_MODELS) == {
      "lenet300_100", "conv2", "conv4", "conv6", "vgg16", "vgg19",
      "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
      "resnet18", "resnet18_cifar", "resnet50", "resnet50_cifar"}
  assert set(MOBILE_MODELS) == {"mobilenetv2_035", "mobilenetv2_050", "mobilenetv2_100",
                                "mobilenetv1_025", "mobilenetv1_050", "mobilenetv1_100"}


@pytest.mark.parametrize("name", ALL_MODELS)
def test_builds_functional_model_with_logits(name):
  model = cached(name)
  assert model.name == name
  assert isinstance(model, keras.Model)
  assert model._is_graph_network  # pylint: disable=protected-access
  assert model.input_shape == (None,) + CIFAR
  logits = model(np.zeros((2,) + CIFAR, np.float32), training=False)
  assert tuple(logits.shape) == (2, NUM_CLASSES)
  assert model.layers[-1].name == "output"
  assert model.layers[-1].get_config()["activation"] == "linear"


@pytest.mark.parametrize("name", MNIST_MODELS)
def test_builds_for_mnist_shape(name):
  model = cached(name, MNIST)
  assert tuple(model(np.zeros((3,) + MNIST, np.float32)).shape) == (3, NUM_CLASSES)


@pytest.mark.parametrize("key", list(EXACT_COUNTS), ids=lambda key: key[0])
def test_weight_counts(key):
  name, input_shape = key
  assert count_weights(cached(name, input_shape)) == EXACT_COUNTS[key]


def test_weight_counts_match_papers():
  papers = {"conv2": 4.3e6, "conv4": 2.4e6, "vgg19": 20.0e6}
  for name, count in papers.items():
    assert round(count_weights(cached(name)) / 1e5) == round(count / 1e5), name
  assert abs(count_weights(cached("vgg19")) - 20.0e6) / 20.0e6 < 0.01
  # 272,474 trainable as in open_lth; with the batch-norm moving statistics, 274,042 = 274K.
  assert abs(count_weights(cached("resnet20")) - 274e3) / 274e3 < 0.01
  assert cached("resnet20").count_params() == 274_042


@pytest.mark.parametrize("name", FAST_MODELS)
def test_same_seed_same_weights_other_seed_other_weights(name):
  first = cached(name)
  again = build(ModelConfig(name=name), CIFAR, NUM_CLASSES, 0)
  other = build(ModelConfig(name=name), CIFAR, NUM_CLASSES, 1)
  for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(kernel_layers(first), kernel_layers(other), strict=True):
    assert not np.array_equal(a.kernel.numpy(), b.kernel.numpy()), a.name


def test_layers_get_distinct_seeds():
  model = cached("resnet20")
  first = model.get_layer("conv_s1_b0_1").kernel.numpy()
  second = model.get_layer("conv_s1_b0_2").kernel.numpy()
  assert first.shape == second.shape
  assert not np.array_equal(first, second)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_layer_naming_convention(name):
  model = cached(name)
  names = [layer.name for layer in model.layers]
  assert len(names) == len(set(names))
  dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
  assert [layer.name for layer in model.layers if layer.name == "output"] == ["output"]
  assert dense[-1].name == "output"
  for layer in dense[:-1]:
    assert layer.name.startswith("fc"), layer.name
  for layer in model.layers:
    if isinstance(layer, keras.layers.Conv2D):
      assert layer.name.startswith("conv"), layer.name
    if isinstance(layer, keras.layers.BatchNormalization):
      assert layer.name.startswith("bn"), layer.name
    if layer.name.startswith(("conv", "fc")) or layer.name == "output":
      assert isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)), layer.name


def test_resnet_shortcuts():
  names = [layer.name for layer in cached("resnet20").layers]
  shortcuts = [name for name in names if "shortcut" in name]
  assert shortcuts == ["conv_s2_b0_shortcut", "bn_s2_b0_shortcut",
                       "conv_s3_b0_shortcut", "bn_s3_b0_shortcut"]
  assert cached("resnet20").get_layer("conv_s2_b0_shortcut").kernel.shape == (1, 1, 16, 32)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_glorot_normal_kernels_and_zero_biases(name):
  model = cached(name)
  layers = kernel_layers(model)
  for layer in layers:
    assert isinstance(layer.kernel_initializer, keras.initializers.GlorotNormal)
    if layer.use_bias:
      assert not np.any(layer.bias.numpy())
  largest = max(layers, key=lambda layer: int(np.prod(layer.kernel.shape)))
  kernel = largest.kernel.numpy()
  receptive = int(np.prod(kernel.shape[:-2]))
  fan_in, fan_out = receptive * kernel.shape[-2], receptive * kernel.shape[-1]
  expected = np.sqrt(2.0 / (fan_in + fan_out))
  assert kernel.std() == pytest.approx(expected, rel=0.03)
  assert abs(kernel.mean()) < 0.05 * expected


def test_dropout_only_when_requested():
  plain = cached("conv2")
  assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)
  dropped = build(ModelConfig(name="conv2", dropout=0.5), CIFAR, NUM_CLASSES, 0)
  dropouts = [layer for layer in dropped.layers if isinstance(layer, keras.layers.Dropout)]
  assert [layer.rate for layer in dropouts] == [0.5, 0.5]
  order = [layer.name for layer in dropped.layers]
  assert order.index("dropout1") == order.index("fc1") + 1
  assert order.index("dropout2") == order.index("fc2") + 1
  # Dropout adds no weights and leaves the initial weights of the same seed unchanged.
  for a, b in zip(plain.get_weights(), dropped.get_weights(), strict=True):
    np.testing.assert_array_equal(a, b)
  x = np.ones((4,) + CIFAR, np.float32)
  np.testing.assert_allclose(dropped(x, training=False), plain(x, training=False), rtol=1e-5)


@pytest.mark.parametrize("name", ["lenet300_100", "vgg16", "resnet20"])
def test_dropout_rejected_where_unsupported(name):
  with pytest.raises(ConfigError, match="dropout"):
    build(ModelConfig(name=name, dropout=0.5), CIFAR, NUM_CLASSES, 0)


def test_unknown_model_is_config_error():
  with pytest.raises(ConfigError, match="unknown model 'resnet19'"):
    build(ModelConfig(name="resnet19"), CIFAR, NUM_CLASSES, 0)


def test_bad_arguments_are_config_errors():
  with pytest.raises(ConfigError):
    build(ModelConfig(name="conv2"), (784,), NUM_CLASSES, 0)
  with pytest.raises(ConfigError):
    build(ModelConfig(name="conv2"), CIFAR, 0, 0)
  with pytest.raises(ConfigError):
    build(ModelConfig(name="conv2", dropout=1.0), CIFAR, NUM_CLASSES, 0)


@pytest.mark.parametrize("name", ["lenet300_100", "conv2", "conv4", "conv6", "vgg19", "resnet20"])
def test_tfmot_accepts_models(name):
  model = cached(name)
  pruned = tfmot.sparsity.keras.prune_low_magnitude(model)
  weighted = (keras.layers.Conv2D, keras.layers.Dense)
  wrapped = [layer.layer.name for layer in pruned.layers
             if isinstance(getattr(layer, "layer", None), weighted)]
  assert wrapped == [layer.name for layer in kernel_layers(model)]
