"""CIFAR augmentation (random crop with 4-pixel padding, horizontal flip): exact on a hand-made
image, a pure function of (seed, iteration), applied to the training batches of every step
engine and never to evaluation, and a killed-and-resumed augmented run equals an uninterrupted
one."""
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import launcher
from lth_tf import data as data_lib
from lth_tf import io, models, pruning
from lth_tf.compat import keras, tf
from lth_tf.config import (DatasetConfig, ExperimentConfig, ModelConfig,
                           RuntimeConfig, TrainingConfig)
from lth_tf.data import augment
from lth_tf.errors import ConfigError
from lth_tf.lottery import LotteryExperiment
from lth_tf.training import Trainer, get_weights, set_weights
from lth_tf.training.loop import batch_indices

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
RUNTIME = RuntimeConfig(progress=False, eval_batch_size=500)
SGD = TrainingConfig(optimizer="sgd", momentum=0.0, learning_rate=0.1, iterations=1,
                     eval_every=1, batch_size=32)


def _uniforms_for(offset_y, offset_x, flip):
  """Draws that select exactly this offset (0..8) and mirror."""
  span = 2 * augment.PADDING + 1
  return [(offset_y + 0.5) / span, (offset_x + 0.5) / span, 0.25 if flip else 0.75]


def test_crop_and_flip_of_a_hand_made_image():
  image = np.arange(6 * 5 * 2, dtype=np.float32).reshape(6, 5, 2) + 1.0  # no pixel equals fill
  fill = np.array([-3.0, -7.0], np.float32)
  cases = [(4, 4, False), (0, 0, False), (8, 8, True), (1, 6, True), (8, 0, False)]
  images = np.repeat(image[None], len(cases), axis=0)
  uniforms = np.array([_uniforms_for(*case) for case in cases], np.float32)
  out = augment.crop_flip(tf.constant(images), tf.constant(uniforms), tf.constant(fill)).numpy()
  padded = np.stack([np.pad(image[..., c], 4, constant_values=fill[c]) for c in range(2)], -1)
  for got, (dy, dx, flip) in zip(out, cases):
    want = padded[dy:dy + 6, dx:dx + 5]
    np.testing.assert_array_equal(got, want[:, ::-1] if flip else want)
  np.testing.assert_array_equal(out[0], image)                 # centred, unflipped: the image
  assert (out[1][:4, :, 0] == -3.0).all() and (out[1][:, :4, 1] == -7.0).all()  # the border
  np.testing.assert_array_equal(out[1][4:, 4:], image[:2, :1])  # the top-left corner moved
  # Offset (8, 8), mirrored: image pixel (4, 4) lands at the top right, the rest is border.
  np.testing.assert_array_equal(out[2][0, 4], image[4, 4])
  np.testing.assert_array_equal(out[2][1, 4], image[5, 4])
  np.testing.assert_array_equal(out[2][2:], np.broadcast_to(fill, (4, 5, 2)))
  np.testing.assert_array_equal(out[2][:2, :4], np.broadcast_to(fill, (2, 4, 2)))


def test_fill_is_the_normalised_black_pixel():
  splits = data_lib.load(DatasetConfig(name="synthetic_cifar", validation_size=500,
                                       augmentation="crop_flip"), ".")
  augmenter = augment.for_training(splits, seed=0)
  black = (np.zeros(3, np.float32) - splits.mean) / splits.std  # what the pipeline makes of 0
  np.testing.assert_array_equal(augmenter.fill.numpy(), black)
  assert augment.for_training(dataclasses.replace(splits, augmentation="none"), 0) is None


def test_draws_are_a_function_of_seed_and_iteration_only():
  fill = np.zeros(3, np.float32)
  first, again = augment.Augmenter("crop_flip", 3, fill), augment.Augmenter("crop_flip", 3, fill)
  draws = first.draws(tf.constant(7, tf.int64), 64).numpy()
  np.testing.assert_array_equal(draws, again.draws(7, 64).numpy())
  assert not np.array_equal(draws, first.draws(8, 64).numpy())
  assert not np.array_equal(draws, augment.Augmenter("crop_flip", 4, fill).draws(7, 64).numpy())
  images = tf.constant(np.random.default_rng(0).normal(size=(64, 8, 8, 3)).astype(np.float32))
  out = first(images, 7).numpy()
  np.testing.assert_array_equal(out, again(images, 7).numpy())
  assert not np.array_equal(out, first(images, 8).numpy())
  # A replica's share of the global batch gets that share's rows of the global draws.
  np.testing.assert_array_equal(first(images[16:32], 7, 16, 64).numpy(), out[16:32])
  # Offsets cover 0..8 on both axes, half of the examples are mirrored.
  many = first.draws(0, 20000).numpy()
  offsets = np.floor(many[:, :2] * 9).astype(int)
  assert set(offsets.ravel()) == set(range(9))
  assert abs((many[:, 2] < 0.5).mean() - 0.5) < 0.02


def test_unknown_augmentation_is_refused_before_training():
  with pytest.raises(ConfigError, match="unknown augmentation 'crop'; choose one of: crop_flip"):
    data_lib.load(DatasetConfig(name="synthetic_cifar", validation_size=500,
                                augmentation="crop"), ".")


@pytest.fixture(scope="module")
def cifar():
  config = DatasetConfig(name="synthetic_cifar", validation_size=500, augmentation="crop_flip")
  plain = dataclasses.replace(config, augmentation="none")
  return data_lib.load(config, "."), data_lib.load(plain, ".")


def _lenet(data, seed=0):
  keras.utils.set_random_seed(seed)
  return pruning.wrap_model(models.build(ModelConfig("lenet300_100"), data.input_shape,
                                         data.num_classes, seed))


def test_a_training_step_sees_the_augmented_batch_and_evaluation_does_not(cifar):
  augmented, plain = cifar
  model = _lenet(augmented)
  start = get_weights(model)
  # One plain SGD step by hand, on the augmented batch of iteration 0.
  idx = batch_indices(len(augmented.y_train), SGD.batch_size, 5, 0, 1)
  x = augment.for_training(augmented, 5)(tf.constant(augmented.x_train[idx]), 0)
  loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  with tf.GradientTape() as tape:
    value = loss(augmented.y_train[idx], model(x, training=True))
  grads = dict(zip([v.ref() for v in model.trainable_variables],
                   tape.gradient(value, model.trainable_variables)))
  expected = {v.ref(): v.numpy() - 0.1 * grads[v.ref()].numpy() for v in model.trainable_variables}
  before = Trainer(model, plain, SGD, RUNTIME, seed=5).evaluate()
  trainer = Trainer(model, augmented, SGD, RUNTIME, seed=5)
  assert trainer.evaluate() == before  # evaluation is not augmented
  trainer.fit(0)
  for variable in model.trainable_variables:
    np.testing.assert_allclose(variable.numpy(), expected[variable.ref()], rtol=1e-5, atol=1e-6)
  augmented_step = get_weights(model)
  set_weights(model, start)
  Trainer(model, plain, SGD, RUNTIME, seed=5).fit(0)
  assert not np.allclose(get_weights(model)["fc1/kernel"], augmented_step["fc1/kernel"])


def test_a_new_data_order_redraws_the_augmentation_too(cifar):
  """`lth stability`'s copies differ by "data order and augmentation" (Frankle et al. 2020): a
  trainer whose seed is changed after it has trained (its graph traced) trains exactly as a
  trainer built with that seed, batches and augmentation draws alike."""
  augmented, _ = cifar
  training = dataclasses.replace(SGD, iterations=4, eval_every=2)
  start = get_weights(_lenet(augmented))
  model = _lenet(augmented)
  set_weights(model, start)
  changed = Trainer(model, augmented, training, RUNTIME, seed=0)
  changed.fit(0)
  at_seed_0 = get_weights(model)
  set_weights(model, start)
  changed.seed = 7
  changed.fit(0)
  reseeded = get_weights(model)
  fresh = _lenet(augmented)
  set_weights(fresh, start)
  Trainer(fresh, augmented, training, RUNTIME, seed=7).fit(0)
  for name, value in get_weights(fresh).items():
    np.testing.assert_array_equal(reseeded[name], value, err_msg=name)
  assert not np.array_equal(reseeded["fc1/kernel"], at_seed_0["fc1/kernel"])
  # The draws themselves follow the seed: the same batch, other crops and flips.
  images = tf.constant(augmented.x_train[:8])
  assert not np.array_equal(changed._augment(images, 3).numpy(),  # pylint: disable=protected-access
                            augment.for_training(augmented, 0)(images, 3).numpy())


def test_fused_and_sharded_engines_train_on_the_same_augmented_batches(cifar):
  augmented, _ = cifar
  training = dataclasses.replace(SGD, momentum=0.9, learning_rate=0.05, iterations=6,
                                 eval_every=3)
  start = get_weights(_lenet(augmented))
  runs = {}
  for name, runtime in (("fused", {"fused_optimizer": True}), ("sharded", {"dense_shards": 2})):
    model = _lenet(augmented)
    set_weights(model, start)
    Trainer(model, augmented, training, dataclasses.replace(RUNTIME, **runtime), seed=0).fit(0)
    runs[name] = get_weights(model)
  assert not np.allclose(runs["fused"]["fc1/kernel"], start["fc1/kernel"])
  for name, value in runs["sharded"].items():
    np.testing.assert_allclose(value, runs["fused"][name], rtol=1e-4, atol=1e-6, err_msg=name)


_MIRRORED = """
import sys
import numpy as np
from lth_tf import data as data_lib, distribute, models, pruning
from lth_tf.config import *
from lth_tf.training import Trainer, get_weights, set_weights
data = data_lib.load(DatasetConfig(name="synthetic_cifar", validation_size=500,
                                   augmentation="crop_flip"), ".")
training = TrainingConfig(optimizer="sgd", learning_rate=0.05, iterations=3, eval_every=3,
                          batch_size=32)
out = {}
for name in ("default", "mirrored"):
  runtime = RuntimeConfig(strategy=name, logical_devices=2, progress=False, eval_batch_size=500)
  strategy = distribute.make_strategy(runtime)
  with strategy.scope():
    model = pruning.wrap_model(models.build(ModelConfig("lenet300_100"), data.input_shape,
                                            data.num_classes, 0))
    trainer = Trainer(model, data, training, runtime, seed=0, strategy=strategy)
  trainer.fit(0)
  out[name] = get_weights(model)
for key, value in out["default"].items():
  np.testing.assert_allclose(out["mirrored"][key], value, rtol=1e-4, atol=1e-6, err_msg=key)
print("replicas agree")
"""


def test_replicas_augment_their_shares_of_the_global_batch_as_one_device_does():
  result = launcher.run([sys.executable, "-c", _MIRRORED], env=ENV, cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "replicas agree" in result.stdout


# ---- a killed and resumed augmented run equals an uninterrupted one ---------------------------

def _find_config(root):
  return ExperimentConfig(
      dataset=DatasetConfig(name="synthetic_cifar", validation_size=500, augmentation="crop_flip"),
      training=TrainingConfig(iterations=40, eval_every=20, batch_size=32),
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False))


# The same experiment as `_find_config`, in a process that the fault point kills.
_FIND = """
import sys
from lth_tf.config import *
from lth_tf.lottery import LotteryExperiment
config = ExperimentConfig(
    dataset=DatasetConfig(name="synthetic_cifar", validation_size=500, augmentation="crop_flip"),
    training=TrainingConfig(iterations=40, eval_every=20, batch_size=32),
    runtime=RuntimeConfig(root_dir=sys.argv[1], data_dir=sys.argv[1], progress=False))
LotteryExperiment(config, log=lambda line: None).run()
"""


def _weights(root):
  (experiment,) = [p for p in root.iterdir() if p.is_dir()]
  return {str(p.relative_to(experiment)): io.read_arrays(str(p))
          for p in sorted(experiment.glob("**/final_weights.npz"))}


def test_killed_and_resumed_augmented_run_equals_an_uninterrupted_one(tmp_path):
  whole, killed = tmp_path / "whole", tmp_path / "killed"
  # SIGKILLed after the second chunk (iterations 20..40), before the end: the rerun resumes
  # from the checkpoint written at iteration 20.
  run = launcher.run([sys.executable, "-c", _FIND, str(killed)], cwd=ROOT, capture_output=True,
                     text=True, timeout=300, env=dict(ENV, LTH_FAULT_KILL_AT="train@2"))
  assert run.returncode == -9, run.stderr[-2000:]
  assert list(killed.glob("**/checkpoint.npz")) and not list(killed.glob("**/final_weights.npz"))
  quiet = dict(log=lambda line: None)
  LotteryExperiment(_find_config(killed), **quiet).run()   # the rerun resumes
  LotteryExperiment(_find_config(whole), **quiet).run()    # the uninterrupted run
  expected, got = _weights(whole), _weights(killed)
  assert len(expected) == 1 and got.keys() == expected.keys()
  for name, arrays in expected.items():
    for key, value in arrays.items():
      np.testing.assert_array_equal(got[name][key], value, err_msg=f"{name} {key}")
