"""A user's model as written: names that do not depend on build order, every weighted layer family
pruned (or left dense, with the reason), pruned weights and their optimizer slots exactly zero,
softmax and sigmoid heads, and data that is not images."""
import json
import os
import sys

import numpy as np
import pytest

import keras as keras3
import launcher
from lth_tf import api, data as data_lib, models, pruning, tickets
from lth_tf.compat import keras, tf
from lth_tf.config import DatasetConfig, ModelConfig, TrainingConfig, RuntimeConfig
from lth_tf.data import modality
from lth_tf.data.base import RawData, prepare
from lth_tf.errors import ConfigError, DataError, UserError
from lth_tf.export.inference import inference_model
from lth_tf.pruning import structure
from lth_tf.training import Trainer, get_weights, optimizers, set_weights
from zoo import zoo_data, zoo_models

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))



def _build(name: str, shape, classes=3, seed=0):
  return models.build(ModelConfig(name=f"zoo_models:{name}"), shape, classes, seed)


# ---- names ----------------------------------------------------------------------------------

def _everything(keras=keras):
  """A model with a layer of every family, nested, wrapped and recurrent, all unnamed, in
  `keras` (tf_keras or Keras 3)."""
  inputs = keras.Input((6, 8))
  a = keras.layers.Bidirectional(keras.layers.LSTM(4))(inputs)
  b = keras.layers.MultiHeadAttention(2, 4)(inputs, inputs)
  b = keras.layers.TimeDistributed(keras.layers.Dense(3))(b)
  block = keras.Sequential([keras.layers.Dense(5), keras.layers.Dense(5)])
  b = block(keras.layers.Flatten()(b))
  b = keras.layers.EinsumDense("ab,bc->ac", output_shape=4)(b)
  inner_inputs = keras.Input((4,))
  tower = keras.Model(inner_inputs, keras.layers.Dense(4)(inner_inputs))  # a nested functional
  b = tower(b)
  c = keras.layers.GRU(3)(inputs)
  d = keras.layers.SimpleRNN(3)(inputs)
  e = keras.layers.Conv1D(4, 3)(inputs)
  e = keras.layers.SeparableConv1D(4, 3)(e)
  e = keras.layers.GlobalAveragePooling1D()(e)
  x = keras.layers.Concatenate()([a, b, c, d, e])
  return keras.Model(inputs, keras.layers.Dense(3)(x))


EVERYTHING_PRUNED = {
    "bidirectional/forward_lstm/kernel": "recurrent",
    "bidirectional/forward_lstm/recurrent_kernel": "recurrent",
    "bidirectional/backward_lstm/kernel": "recurrent",
    "bidirectional/backward_lstm/recurrent_kernel": "recurrent",
    "multi_head_attention/query/kernel": "attention",
    "multi_head_attention/key/kernel": "attention",
    "multi_head_attention/value/kernel": "attention",
    "multi_head_attention/attention_output/kernel": "attention",
    "time_distributed/kernel": "fc",
    "sequential/dense_1/kernel": "fc",
    "sequential/dense_2/kernel": "fc",
    "einsum_dense/kernel": "fc",
    "model/kernel": "fc",
    "gru/kernel": "recurrent",
    "gru/recurrent_kernel": "recurrent",
    "simple_rnn/kernel": "recurrent",
    "simple_rnn/recurrent_kernel": "recurrent",
    "conv1d/kernel": "stem",
    "separable_conv1d/pointwise_kernel": "pointwise",
    "dense_4/kernel": "output",
}
# Keras 3 names an unnamed functional model `functional`, tf_keras `model`.
EVERYTHING_PRUNED_KERAS3 = {("functional/kernel" if name == "model/kernel" else name): kind
                            for name, kind in EVERYTHING_PRUNED.items()}
# The Keras a user's model is written in -> (its module, the kinds of `_everything`'s weights).
FRAMEWORKS = {"tf_keras": (keras, EVERYTHING_PRUNED), "keras3": (keras3, EVERYTHING_PRUNED_KERAS3)}


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_the_same_model_built_again_has_the_same_names_whatever_was_built_before(framework):
  k, expected = FRAMEWORKS[framework]
  first = pruning.wrap_model(structure.canonicalise(_everything(k)))
  _everything(k)  # Keras' counters move on
  again = pruning.wrap_model(structure.canonicalise(_everything(k)))
  assert list(get_weights(first)) == list(get_weights(again))
  set_weights(again, get_weights(first))  # matched by name, all of them
  assert pruning.layer_kinds(again) == expected
  assert all(np.array_equal(a, b) for a, b in zip(get_weights(first).values(),
                                                   get_weights(again).values()))


def test_names_are_those_of_a_first_build_in_a_fresh_process():
  """A fresh process names the first Dense `dense`: canonical names are those (so directories
  written before canonical names existed, by a fresh process, keep their names)."""
  names = list(get_weights(structure.canonicalise(_everything())))
  assert "dense_4/kernel" in names and "sequential/dense_1/kernel" in names
  assert "model/kernel" in names  # the nested functional model, whatever Keras numbered it
  assert "bidirectional/forward_lstm/kernel" in names


def test_a_name_the_user_chose_is_kept():
  inputs = keras.Input((4,))
  x = keras.layers.Dense(3, name="encoder")(inputs)
  x = keras.layers.Dense(3)(x)
  model = structure.canonicalise(keras.Model(inputs, keras.layers.Dense(2, name="output")(x)))
  assert [l.name for l in model.layers[1:]] == ["encoder", "dense", "output"]


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_every_family_is_pruned_or_left_dense_with_a_reason(framework):
  k, expected = FRAMEWORKS[framework]
  model = pruning.wrap_model(structure.canonicalise(_everything(k)))
  pruned, dense = structure.classify(model)
  assert {p.name for p in pruned} == set(expected)
  reasons = {d.name: d.why for d in dense}
  assert reasons["bidirectional/forward_lstm/bias"] == "bias"
  assert "depthwise" in reasons["separable_conv1d/depthwise_kernel"]
  table = pruning.pruning_table(model, pruning.layer_kinds(model))
  assert "| MultiHeadAttention |" not in table  # its projections are rows of their own
  assert "| EinsumDense | kernel | pruned: attention (fc_rate) |" in table
  # Ranked globally (a pruning-at-initialisation strategy): one rate, and outside the ranked
  # kinds nothing is pruned.
  kinds = pruning.layer_kinds(model)
  ranked = tuple(name for name, kind in kinds.items() if kind == "attention")
  table = pruning.pruning_table(model, kinds, global_layers=ranked)
  assert "| EinsumDense | kernel | pruned: attention (ranked globally at global_rate) |" in table
  assert "(fc_rate)" not in table
  assert "dense: fc, outside the global ranking (--global_layers)" in table


# Keras 3 with Adam alone: a Keras 3 model trains with the same optimizers and loop as a tf_keras
# one (its variables are tf.Variables), so SGD and RMSprop add nothing the tf_keras runs do not
# check; tests/mechanism/test_keras3.py checks all three under TicketSearch's Keras 3 optimizers.
@pytest.mark.parametrize("optimizer,framework", [
    ("adam", "tf_keras"), ("sgd", "tf_keras"), ("rmsprop", "tf_keras"), ("adam", "keras3")])
def test_pruned_weights_and_their_slots_stay_zero_in_every_family(optimizer, framework):
  model = pruning.wrap_model(structure.canonicalise(_everything(FRAMEWORKS[framework][0])))
  rng = np.random.default_rng(0)
  mask = pruning.Mask.from_dict({name: rng.random(shape) < 0.5
                                 for name, shape in pruning.prunable_shapes(model).items()})
  pruning.set_mask(model, mask)
  splits = data_lib.Splits(
      x_train=rng.normal(size=(64, 6, 8)).astype(np.float32), y_train=rng.integers(0, 3, 64).astype(np.int32),
      x_val=rng.normal(size=(16, 6, 8)).astype(np.float32), y_val=rng.integers(0, 3, 16).astype(np.int32),
      x_test=rng.normal(size=(16, 6, 8)).astype(np.float32), y_test=rng.integers(0, 3, 16).astype(np.int32),
      num_classes=3, input_shape=(6, 8), mean=np.zeros(8, np.float32), std=np.ones(8, np.float32),
      name="random", modality="sequence")
  training = TrainingConfig(optimizer=optimizer, iterations=5, eval_every=5, batch_size=16,
                            learning_rate=0.1, momentum=0.9)
  trainer = Trainer(model, splits, training, RuntimeConfig(progress=False), seed=0)
  trainer.fit(0)
  for name, weight, mask_var in pruning.mask_pairs(model):
    pruned = mask_var.numpy() == 0
    assert np.all(weight.numpy()[pruned] == 0), name
    assert np.any(weight.numpy()[~pruned] != 0), name
    for slot in optimizers.slots_of(trainer.optimizer, weight):
      assert np.all(slot.numpy()[pruned] == 0), (name, slot.name)


def test_a_notebook_that_built_other_models_resumes_an_experiment_a_fresh_process_started(user_dir):
  settings = ["--model=zoo_models:cnn_unnamed", "--dataset=py:zoo_data:images", "--reinit",
              "--iterations=40", "--eval_every=20", "--batch_size=32", "--validation_size=40",
              "--root_dir=runs", "--data_dir=.", "--progress=false"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
  found = launcher.run([sys.executable, "-m", "lth_tf.cli", "find", "--levels=1", *settings],
                       capture_output=True, text=True, env=env, cwd=str(user_dir))
  assert found.returncode == 0, found.stderr
  for _ in range(2):  # the notebook built other models first: Keras' counters have moved on
    zoo_models.cnn_unnamed((8, 8, 1), 3, 0)
    zoo_models.mlp_softmax((8, 8, 1), 3, 0)
  result = api.find("zoo_models:cnn_unnamed", "py:zoo_data:images", levels=2, reinit=True,
                    iterations=40, eval_every=20, batch_size=32, validation_size=40,
                    root_dir="runs", data_dir=".", progress=False, log=lambda line: None)
  assert [(r["level"], r["branch"]) for r in result.rows] == [
      (0, "ticket"), (1, "ticket"), (1, "reinit"), (2, "ticket"), (2, "reinit")]
  # A ticket saved from this process is read in a fresh one.
  tickets.save(result.directory, 0, 2, "ticket", data_dir=".")
  shown = launcher.run([sys.executable, "-m", "lth_tf.cli", "train", "--ticket=ticket",
                        "--model=zoo_models:cnn_unnamed", "--dataset=py:zoo_data:images",
                        "--iterations=20", "--eval_every=20", "--batch_size=32",
                        "--validation_size=40", "--root_dir=again", "--data_dir=.",
                        "--progress=false"],
                       capture_output=True, text=True, env=env, cwd=str(user_dir))
  assert shown.returncode == 0, shown.stderr


# ---- heads ----------------------------------------------------------------------------------

def test_a_softmax_head_is_trained_on_its_logits_and_exported_as_the_user_wrote_it(user_dir):
  user = zoo_models.mlp_softmax((8, 8, 1), 3, 0)
  model = _build("mlp_softmax", (8, 8, 1))
  assert structure.head(model) == "softmax"
  x = np.random.default_rng(0).normal(size=(5, 8, 8, 1)).astype(np.float32)
  set_weights(model, get_weights(structure.canonicalise(user)))
  logits = model(x).numpy()
  probabilities = user(x).numpy()
  # The loss lth_tf computes on the logits is the user's loss on the probabilities.
  y = np.array([0, 1, 2, 0, 1])
  ours = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits).numpy()
  theirs = keras.losses.SparseCategoricalCrossentropy()(y, probabilities).numpy()
  assert ours == pytest.approx(theirs, rel=1e-5)
  exported = inference_model(pruning.wrap_model(model), [0.0], [1.0 / 255.0])
  np.testing.assert_allclose(exported(x).numpy(), probabilities, rtol=1e-5, atol=1e-6)


def test_one_sigmoid_unit_for_two_classes_is_two_logits(user_dir):
  user = zoo_models.binary_sigmoid((6,), 2, 0)
  model = _build("binary_sigmoid", (6,), classes=2)
  assert structure.head(model) == "sigmoid"
  set_weights(model, get_weights(structure.canonicalise(user)))
  x = np.random.default_rng(1).normal(size=(7, 6)).astype(np.float32)
  p = user(x).numpy()[:, 0]
  softmax = tf.nn.softmax(model(x)).numpy()
  np.testing.assert_allclose(softmax[:, 1], p, rtol=1e-5, atol=1e-6)
  exported = inference_model(pruning.wrap_model(model), np.zeros(6), np.ones(6), "tabular")
  np.testing.assert_allclose(exported(x).numpy()[:, 0], p, rtol=1e-5, atol=1e-6)


def _write_models(path, text):
  path.write_text("import tf_keras as keras\n" + text)


def test_heads_whose_loss_would_be_wrong_are_refused(user_dir):
  _write_models(user_dir / "heads.py", """
def sigmoid3(input_shape, num_classes, seed):
  inputs = keras.Input(input_shape)
  return keras.Model(inputs, keras.layers.Dense(num_classes, activation="sigmoid")(inputs))

class Probabilities(keras.Model):
  def __init__(self, n):
    super().__init__()
    self.dense = keras.layers.Dense(n, activation="softmax")
  def call(self, x):
    return self.dense(keras.layers.Flatten()(x))

def subclassed_softmax(input_shape, num_classes, seed):
  return Probabilities(num_classes)

def softmax_op(input_shape, num_classes, seed):
  import tensorflow as tf
  inputs = keras.Input(input_shape)
  return keras.Model(inputs, tf.nn.softmax(keras.layers.Dense(num_classes)(inputs)))

def softmax_layer(input_shape, num_classes, seed):
  inputs = keras.Input(input_shape)
  x = keras.layers.Dense(num_classes)(inputs)
  return keras.Model(inputs, keras.layers.Softmax()(x))
""")
  with pytest.raises(ConfigError, match="sigmoid over 3 outputs"):
    models.build(ModelConfig(name="heads:sigmoid3"), (4,), 3, 0)
  with pytest.raises(ConfigError, match="returns probabilities"):
    models.build(ModelConfig(name="heads:subclassed_softmax"), (4,), 3, 0)
  with pytest.raises(ConfigError, match="returns probabilities"):
    models.build(ModelConfig(name="heads:softmax_op"), (4,), 3, 0)
  model = models.build(ModelConfig(name="heads:softmax_layer"), (4,), 3, 0)
  assert structure.head(model) == "softmax"
  out = model(np.ones((2, 4), np.float32)).numpy()
  assert not np.allclose(out.sum(1), 1.0)  # logits, not probabilities


# ---- data beyond images ---------------------------------------------------------------------

@pytest.mark.parametrize("shape,dtype,low,high,expected", [
    ((5, 8, 8, 3), np.uint8, 0, 255, "image"),
    ((5, 8, 8), np.uint8, 0, 255, "image"),
    ((5, 8, 8), np.float32, 0, 255, "image"),
    ((5, 10, 4), np.float32, -3, 3, "sequence"),
    ((5, 10, 4), np.float32, 300, 400, "image"),  # refused as pixels: --modality=sequence
    ((5, 12), np.int32, 0, 50, "tokens"),
    ((5, 12), np.int64, 0, 50, "tokens"),
    ((5, 6), np.float32, -1000, 1000, "tabular"),
])
def test_the_modality_rule(shape, dtype, low, high, expected):
  x = np.random.default_rng(0).uniform(low, high, size=shape).astype(dtype)
  assert modality.infer(x) == expected


def _raw(x_train, x_test, classes=3):
  rng = np.random.default_rng(0)
  return RawData(x_train, rng.integers(0, classes, len(x_train)), x_test,
                 np.arange(len(x_test)) % classes, classes)


def test_tabular_features_are_standardised_per_feature_with_training_statistics():
  x, y, xt, yt = zoo_data.tabular()
  splits = prepare(RawData(x, y, xt, yt, 3), DatasetConfig(name="t", validation_size=40))
  assert splits.modality == "tabular"
  np.testing.assert_allclose(splits.x_train.mean(0), 0, atol=0.2)
  assert splits.mean.shape == (6,) and splits.mean[2] > 1000  # in the feature's own units
  np.testing.assert_allclose(modality.raw_inputs(modality.MODALITIES.get("tabular"),
                                                 splits.x_test, splits.mean, splits.std), xt,
                             rtol=1e-4, atol=1e-3)


def test_token_ids_are_fed_as_they_are():
  x, y, xt, yt = zoo_data.tokens()
  splits = prepare(RawData(x, y, xt, yt, 3), DatasetConfig(name="t", validation_size=40))
  assert splits.modality == "tokens" and splits.x_test.dtype == np.int32
  np.testing.assert_array_equal(splits.x_test, xt)


@pytest.mark.parametrize("config,x,message", [
    (DatasetConfig(name="t", validation_size=2, modality="tokens"),
     np.full((10, 4), 0.5, np.float32), "token ids must be integers"),
    (DatasetConfig(name="t", validation_size=2, modality="tokens"),
     np.full((10, 4), -1, np.int32), "token ids must be in"),
    (DatasetConfig(name="t", validation_size=2, augmentation="crop_flip"),
     np.zeros((10, 4), np.int32), "augmentation 'crop_flip' is for images"),
    (DatasetConfig(name="t", validation_size=2, modality="sequence"),
     np.zeros((10, 4), np.float32), "expects sequences"),
    (DatasetConfig(name="t", validation_size=2, modality="tabular"),
     np.full((10, 4), np.nan, np.float32), "not finite"),
])
def test_bad_combinations_are_one_line_errors(config, x, message):
  with pytest.raises(DataError, match=message):
    prepare(_raw(x, x[:3]), config)


def test_an_image_model_on_token_data_is_refused_before_anything_is_written(user_dir):
  with pytest.raises(ConfigError, match="image"):  # a convolution needs (H, W, C)
    api.find("conv2", "py:zoo_data:tokens", levels=1, iterations=10, eval_every=10,
             batch_size=16, validation_size=20, root_dir="runs", data_dir=".",
             progress=False, log=lambda line: None)
  with pytest.raises(UserError, match="no Embedding layer"):  # an MLP takes any shape
    api.find("lenet300_100", "py:zoo_data:tokens", levels=1, iterations=10, eval_every=10,
             batch_size=16, validation_size=20, root_dir="runs", data_dir=".",
             progress=False, log=lambda line: None)
  assert not os.path.exists("runs") or not [p for p in os.listdir("runs") if p != "datasets"]
  with pytest.raises(UserError, match="one token id"):  # SynFlow's all-ones input
    api.find("zoo_models:text_cnn", "py:zoo_data:tokens", levels=1, iterations=10,
             eval_every=10, batch_size=16, validation_size=20, root_dir="runs", data_dir=".",
             pruning_strategy="synflow", progress=False, log=lambda line: None)
  with pytest.raises(UserError, match="embeds token ids"):  # float features into an Embedding
    api.find("zoo_models:text_cnn", "py:zoo_data:tabular", levels=1, iterations=10,
             eval_every=10, batch_size=16, validation_size=20, root_dir="runs", data_dir=".",
             progress=False, log=lambda line: None)


def test_the_modality_is_recorded_in_data_json_and_the_ticket(user_dir):
  result = api.find("zoo_models:text_cnn", "py:zoo_data:tokens", levels=1, iterations=20,
                    eval_every=20, batch_size=32, validation_size=40, fc_rate=0.5,
                    root_dir="runs", data_dir=".", progress=False, log=lambda line: None)
  record = json.load(open(os.path.join(result.directory, "data.json")))
  assert record["modality"] == "tokens"
  tickets.save(result.directory, 0, 1, "ticket", data_dir=".")
  assert tickets.read("ticket").modality == "tokens"


def test_a_tfds_dataset_of_features_is_read_as_tabular_data(tmp_path):
  """TFDS `iris`: supervised input `features`, a float vector of 4 (mock data, no download)."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from lth_tf.data import tfds_source  # pylint: disable=import-outside-toplevel
  with tfds.testing.mock_data(num_examples=60):
    raw = tfds_source.read("iris", str(tmp_path), splits=("train[:50%]", "train[50%:]"))
  assert raw.x_train.shape[1:] == (4,) and raw.x_train.dtype.kind == "f"
  splits = prepare(raw, DatasetConfig(name="tfds:iris", validation_size=5))
  assert splits.modality == "tabular" and splits.mean.shape == (4,)
