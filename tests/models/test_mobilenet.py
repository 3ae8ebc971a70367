"""MobileNet-class models: weight counts, seeded init, tfmot's registry on them, and which
weights each layer kind and `--global_layers=pointwise` prune."""
import numpy as np
import pytest

from lth_tf import pruning
from lth_tf.compat import keras, tfmot
from lth_tf.config import ModelConfig, PruningConfig
from lth_tf.models import build, count_weights
from lth_tf.pruning import kinds as kinds_lib

CIFAR = (32, 32, 3)
LARGE = (96, 96, 3)
# Trainable weights (batch-norm moving statistics excluded) with 10 classes. They do not depend
# on the input size (global average pooling before the classifier); 96x96 is pinned where a
# build is cheap. MobileNetV2 1.0: tf_keras's 2,223,872 without top + 1280 * 10 + 10.
COUNTS = {
    ("mobilenetv2_035", CIFAR): 408_938,
    ("mobilenetv2_035", LARGE): 408_938,
    ("mobilenetv2_050", CIFAR): 700_490,
    ("mobilenetv2_100", CIFAR): 2_236_682,
    ("mobilenetv1_025", CIFAR): 215_642,
    ("mobilenetv1_025", LARGE): 215_642,
    ("mobilenetv1_050", CIFAR): 823_722,
    ("mobilenetv1_100", CIFAR): 3_217_226,
    ("mobilenetv1_100", LARGE): 3_217_226,
}
_CACHE = {}


def cached(name, shape=CIFAR, seed=0):
  if (name, shape, seed) not in _CACHE:
    _CACHE[(name, shape, seed)] = build(ModelConfig(name=name), shape, 10, seed)
  return _CACHE[(name, shape, seed)]


@pytest.mark.parametrize("key", list(COUNTS), ids=lambda key: f"{key[0]}-{key[1][0]}")
def test_weight_counts(key):
  name, shape = key
  model = cached(name, shape)
  assert count_weights(model) == COUNTS[key]
  assert model.layers[-1].name == "output"
  assert model(np.zeros((1,) + shape, np.float32)).shape == (1, 10)


@pytest.mark.parametrize("name", ["mobilenetv2_035", "mobilenetv1_025"])
def test_seeded_glorot_kernels_and_zoo_names(name):
  first, again = cached(name), build(ModelConfig(name=name), CIFAR, 10, 0)
  for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
    np.testing.assert_array_equal(a, b)
  other = cached(name, seed=1)
  convs = [layer for layer in first.layers
           if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
  for layer in convs:
    assert layer.name.startswith("conv_"), layer.name
    init = (layer.depthwise_initializer if isinstance(layer, keras.layers.DepthwiseConv2D)
            else layer.kernel_initializer)
    assert isinstance(init, keras.initializers.GlorotNormal), layer.name
    assert not np.array_equal(layer.get_weights()[0],
                              other.get_layer(layer.name).get_weights()[0]), layer.name
  for layer in first.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      assert layer.name.startswith("bn_"), layer.name


@pytest.mark.parametrize("name", ["mobilenetv2_035", "mobilenetv1_025"])
def test_tfmot_accepts_them_and_wraps_only_kernels_it_lists(name):
  model = cached(name)
  pruned = tfmot.sparsity.keras.prune_low_magnitude(model)
  assert len(pruned.layers) == len(model.layers)
  wrapped = pruning.wrap_model(model)
  kinds = pruning.layer_kinds(wrapped)
  # tfmot's registry lists no prunable weight for DepthwiseConv2D and BatchNormalization.
  layer_types = {layer.name: type(layer) for layer in model.layers}
  depthwise = [n for n, t in layer_types.items() if t is keras.layers.DepthwiseConv2D]
  assert depthwise and not any(name.split("/")[0] in depthwise for name in kinds)
  assert not any("bn" in name for name in kinds)
  counts = {kind: list(kinds.values()).count(kind) for kind in set(kinds.values())}
  assert counts["stem"] == 1 and counts["output"] == 1
  assert set(counts) == {"stem", "pointwise", "output"}
  inner = {wrapper.layer.name: wrapper.layer for wrapper in pruning.masked_layers(wrapped)}
  stem = next(n for n, k in kinds.items() if k == "stem")
  assert inner[stem.split("/")[0]].kernel_size == (3, 3)
  for weight, kind in kinds.items():
    if kind == "pointwise":
      assert inner[weight.split("/")[0]].kernel_size == (1, 1)


def test_kinds_classify_layers():
  conv = keras.layers.Conv2D(4, 3, name="c")
  assert kinds_lib.layer_kind(conv, first_conv=True) == "stem"
  assert kinds_lib.layer_kind(conv, first_conv=False) == "conv"
  assert kinds_lib.layer_kind(keras.layers.Conv2D(4, 1, name="p"), first_conv=False) == "pointwise"
  assert kinds_lib.layer_kind(keras.layers.DepthwiseConv2D(3, name="d"), False) == "depthwise"
  assert kinds_lib.layer_kind(keras.layers.Dense(3, name="output"), False) == "output"
  assert kinds_lib.layer_kind(keras.layers.Dense(3, name="fc1"), False) == "fc"
  assert set(kinds_lib.KINDS) == set(pruning.LAYER_KINDS)


def test_global_pointwise_prunes_only_the_1x1_convolutions():
  wrapped = pruning.wrap_model(cached("mobilenetv1_025"))
  kinds = pruning.layer_kinds(wrapped)
  weights = pruning.prunable_weights(wrapped)
  mask = pruning.get_mask(wrapped)
  policy = PruningConfig(scope="global", global_layers="pointwise", global_rate=0.5)
  nxt = pruning.next_mask(policy, kinds, weights, mask)
  densities = nxt.layer_densities()
  pointwise = [n for n, k in kinds.items() if k == "pointwise"]
  assert len(pointwise) == 13
  kept = sum(int(nxt[n].sum()) for n in pointwise)
  total = sum(nxt[n].size for n in pointwise)
  assert kept == total - int(0.5 * total)
  for name, kind in kinds.items():
    if kind != "pointwise":
      assert densities[name] == 1.0, name
  # The per-layer densities differ: one threshold across the 1x1 convolutions.
  assert len({round(densities[n], 3) for n in pointwise}) > 1
  # `conv` still ranks the first convolution with the others, as before the finer kinds.
  everything = pruning.next_mask(PruningConfig(scope="global", global_layers="conv",
                                               global_rate=0.5), kinds, weights, mask)
  stem = next(n for n, k in kinds.items() if k == "stem")
  assert everything.layer_densities()[stem] < 1.0
  # Layerwise: every convolution kind takes conv_rate.
  rates = pruning.layer_rates(PruningConfig(conv_rate=0.3, output_rate=0.1), kinds)
  assert {rates[n] for n, k in kinds.items() if k != "output"} == {0.3}
