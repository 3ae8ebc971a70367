"""ImageNet-style ResNet-18 / ResNet-50 and their CIFAR variants: weight counts, strides, shapes."""
import functools

import numpy as np
import pytest

from lth_tf import pruning
from lth_tf.compat import keras
from lth_tf.config import ModelConfig
from lth_tf.models import build, count_weights

IMAGENET = (224, 224, 3)
CIFAR = (32, 32, 3)


@functools.lru_cache(maxsize=None)
def built(name, input_shape, classes):
  return build(ModelConfig(name=name), input_shape, classes, seed=0)


def _conv(k, c_in, c_out):
  return k * k * c_in * c_out


def _bn(c):
  return 2 * c  # gamma and beta (the moving statistics are not trained)


def expected_count(depth, stem_kernel, classes, in_channels=3):
  """Counted from the architecture of He et al. (2016), independently of the builder."""
  total = _conv(stem_kernel, in_channels, 64) + _bn(64)
  channels = 64
  blocks = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}[depth]
  for stage, (width, count) in enumerate(zip((64, 128, 256, 512), blocks)):
    for index in range(count):
      strided = stage > 0 and index == 0
      if depth == 18:
        out = width
        total += _conv(3, channels, width) + _bn(width) + _conv(3, width, width) + _bn(width)
      else:
        out = 4 * width
        total += (_conv(1, channels, width) + _bn(width) + _conv(3, width, width) + _bn(width)
                  + _conv(1, width, out) + _bn(out))
      if strided or channels != out:
        total += _conv(1, channels, out) + _bn(out)
      channels = out
  return total + channels * classes + classes


@pytest.mark.parametrize("name,shape,classes,published", [
    ("resnet18", IMAGENET, 1000, 11_689_512),       # torchvision resnet18
    ("resnet50", IMAGENET, 1000, 25_557_032),       # torchvision resnet50
    ("resnet18_cifar", CIFAR, 10, 11_173_962),      # the common CIFAR ResNet-18
    ("resnet50_cifar", CIFAR, 10, 23_520_842),
])
def test_weight_counts_are_the_published_ones(name, shape, classes, published):
  depth = int(name[len("resnet"):].split("_")[0])
  stem = 3 if name.endswith("_cifar") else 7
  assert expected_count(depth, stem, classes) == published
  assert count_weights(built(name, shape, classes)) == published


def test_resnet50_matches_keras_applications_up_to_conv_biases_and_stride_placement():
  ours = built("resnet50", IMAGENET, 1000)
  reference = keras.applications.ResNet50(weights=None)
  convs = [l for l in ours.layers if isinstance(l, keras.layers.Conv2D)]
  theirs = [l for l in reference.layers if isinstance(l, keras.layers.Conv2D)]
  assert sorted(tuple(l.kernel.shape) for l in convs) == sorted(
      tuple(l.kernel.shape) for l in theirs)
  # Keras's convolutions carry a bias (53 convolutions, one per output channel); ours do not.
  biases = sum(l.filters for l in theirs)
  assert count_weights(reference) - biases == count_weights(ours)
  # v1 (Keras) strides the first 1x1 of a downsampling bottleneck, v1.5 (ours) its 3x3.
  assert reference.get_layer("conv3_block1_1_conv").strides == (2, 2)
  assert ours.get_layer("conv_s2_b0_1").strides == (1, 1)
  assert ours.get_layer("conv_s2_b0_2").strides == (2, 2)
  assert ours.get_layer("conv_s2_b0_shortcut").strides == (2, 2)
  assert ours.get_layer("relu_s4_b2_out").output.shape[1:] == (7, 7, 2048)


@pytest.mark.parametrize("name,shape,last", [
    ("resnet18", IMAGENET, (7, 7, 512)), ("resnet18_cifar", CIFAR, (4, 4, 512))])
def test_stems_and_last_stage_shapes(name, shape, last):
  model = built(name, shape, 10)
  assert model.get_layer(f"relu_s4_b1_out").output.shape[1:] == last
  stem = model.get_layer("conv_stem")
  assert stem.kernel.shape[:2] == ((7, 7) if shape == IMAGENET else (3, 3))
  assert stem.strides == ((2, 2) if shape == IMAGENET else (1, 1))
  assert any(l.name == "pool_stem" for l in model.layers) == (shape == IMAGENET)
  logits = model(np.zeros((2,) + shape, np.float32), training=False)
  assert tuple(logits.shape) == (2, 10)


def test_every_convolution_and_the_output_are_prunable_batch_norms_are_not():
  model = pruning.wrap_model(build(ModelConfig(name="resnet18_cifar"), CIFAR, 10, seed=0))
  kinds = pruning.layer_kinds(model)
  prunable = pruning.prunable_weights(model)
  assert len([n for n in prunable if n.startswith("conv")]) == 20  # 17 + 3 shortcuts
  assert "output/kernel" in prunable and not any(n.startswith("bn") for n in prunable)
  assert kinds["output/kernel"] == "output"
