"""The experiment hash of every `lth find` preset in flags/, pinned: a preset whose hash moves
no longer finds its old experiment directories, so a change must be deliberate and said in the
README."""
import os

import pytest

from lth_tf import flags as lth_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PINNED = {
    "conv2_cifar10.flags": "f3882e729a35",
    "conv4_cifar10.flags": "67aae201ff21",
    "conv6_cifar10.flags": "f3bb8268e597",
    "demo.flags": "dd0e19d19a00",
    "lenet300_fashion_mnist.flags": "f5e182ae8200",
    "lenet300_mnist.flags": "6f78d88e71f2",
    "tune_demo.flags": "ec976bed7fff",
    "mobilenetv2_cifar10.flags": "d16b5a0f47a8",  # new on 2026-12-02
    # Changed on 2026-12-02 when --augmentation=crop_flip was turned on in them (were
    # 518138b94a8c and 9f419176b44d).
    "resnet20_cifar10.flags": "7ae3c64f83df",
    "vgg19_cifar10.flags": "a59a7ff3030e",
}
AUGMENTED = {"resnet20_cifar10.flags", "vgg19_cifar10.flags"}


def _config(name):
  lth_flags.define_flags()
  try:
    lth_flags.FLAGS(["x", f"--flagfile={os.path.join(ROOT, 'flags', name)}"])
    return lth_flags.config_from_flags()
  finally:
    lth_flags.FLAGS.unparse_flags()


def test_every_preset_is_pinned():
  assert set(PINNED) == set(os.listdir(os.path.join(ROOT, "flags")))


@pytest.mark.parametrize("name", sorted(PINNED))
def test_preset_hash_and_augmentation(name):
  config = _config(name)
  assert config.experiment_hash() == PINNED[name]
  assert config.dataset.augmentation == ("crop_flip" if name in AUGMENTED else "none")
