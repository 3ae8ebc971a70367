"""Keras 3 models through the mechanism seam (`lth_tf.mechanism.keras3`): the same network written
in Keras 3 and in tf_keras trains to the same numbers under the same mask, on every engine; a
pruned weight and its optimizer slots stay exactly zero; bad input is refused in one line."""
import numpy as np
import pytest

import keras as keras3
from lth_tf import mechanism, models, pruning
from lth_tf.compat import keras
from lth_tf.config import ModelConfig, RuntimeConfig, TrainingConfig
from lth_tf.data import Splits
from lth_tf.errors import ConfigError
from lth_tf.pruning import structure
from lth_tf.training import Trainer, get_weights, optimizers, set_weights


def _lenet(k, seed=0):
  """LeNet-300-100 in `k` (tf_keras or Keras 3), its layers named as the registered model's."""
  init = k.initializers.GlorotNormal(seed=seed)
  inputs = k.Input((28, 28, 1))
  x = k.layers.Flatten()(inputs)
  x = k.layers.Dense(300, activation="relu", kernel_initializer=init, name="fc1")(x)
  x = k.layers.Dense(100, activation="relu", kernel_initializer=init, name="fc2")(x)
  return k.Model(inputs, k.layers.Dense(10, kernel_initializer=init, name="output")(x))


def _splits(seed=0, n=256):
  rng = np.random.default_rng(seed)
  def part(count):
    return (rng.normal(size=(count, 28, 28, 1)).astype(np.float32),
            rng.integers(0, 10, count).astype(np.int32))
  (x_train, y_train), (x_val, y_val), (x_test, y_test) = part(n), part(64), part(64)
  return Splits(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, x_test=x_test,
                y_test=y_test, num_classes=10, input_shape=(28, 28, 1),
                mean=np.zeros(1, np.float32), std=np.ones(1, np.float32), name="random")


ENGINES = {"plain": {}, "fused": {"fused_optimizer": True},
           "dense_shards": {"dense_shards": 2}}


def _train(model, mask, engine, optimizer="adam"):
  model = pruning.wrap_model(structure.canonicalise(model))
  pruning.set_mask(model, mask)
  training = TrainingConfig(optimizer=optimizer, iterations=12, eval_every=6, batch_size=32,
                            learning_rate=0.01, momentum=0.9)
  runtime = RuntimeConfig(progress=False, **ENGINES[engine])
  trainer = Trainer(model, _splits(), training, runtime, seed=3)
  result = trainer.fit(0)
  return model, trainer, result


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_the_same_network_in_keras3_trains_to_the_numbers_of_tf_keras(engine):
  """Same weights, same mask, same data order: Keras 3 on the TensorFlow backend and tf_keras
  give the same curve and the same trained weights, bit for bit (both train the same
  tf.Variables with lth_tf's optimizers and the same operations)."""
  reference = _lenet(keras)
  ported = _lenet(keras3)
  names = get_weights(structure.canonicalise(reference))
  assert list(names) == list(get_weights(structure.canonicalise(ported)))
  set_weights(ported, names)
  rng = np.random.default_rng(1)
  mask = pruning.Mask.from_dict({n: rng.random(w.shape) < 0.4 for n, w in names.items()
                                 if n.endswith("kernel")})
  a, _, curve_a = _train(reference, mask, engine)
  b, trainer_b, curve_b = _train(ported, mask, engine)
  assert mechanism.of(b).name == "keras3"
  for name, value in get_weights(a).items():
    np.testing.assert_array_equal(get_weights(b)[name], value, err_msg=name)
  assert curve_b.curve == curve_a.curve
  # Pruned weights of the Keras 3 model and their optimizer slots are exactly zero.
  for name, weight, mask_var in pruning.mask_pairs(b):
    pruned = mask_var.numpy() == 0
    assert pruned.any() and np.all(weight.numpy()[pruned] == 0), name
    for slot in optimizers.slots_of(trainer_b.optimizer, weight):
      assert np.all(slot.numpy()[pruned] == 0), name


def test_a_user_s_keras3_layer_declares_its_prunable_weights():
  """The protocol tfmot's PrunableLayer defines, without its base class: `get_prunable_weights`."""
  from zoo import zoo_keras3  # pylint: disable=import-outside-toplevel
  model = pruning.wrap_model(structure.canonicalise(zoo_keras3.functional_cnn((8, 8, 1), 3, 0)))
  pruned, dense = structure.classify(model)
  assert {p.name: p.family for p in pruned} == {
      "conv2d/kernel": "conv", "scaled_dense/kernel": "custom", "dense/kernel": "fc"}
  assert {d.name: d.why for d in dense}["scaled_dense/scale"] == (
      "not in the layer's get_prunable_weights()")


def test_a_keras3_model_is_refused_under_mixed_precision_in_one_line(monkeypatch, tmp_path):
  module = tmp_path / "k3_models.py"
  module.write_text("import keras\n"
                    "def mlp(input_shape, num_classes, seed):\n"
                    "  inputs = keras.Input(input_shape)\n"
                    "  return keras.Model(inputs, keras.layers.Dense(num_classes)("
                    "keras.layers.Flatten()(inputs)))\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  from lth_tf import precision  # pylint: disable=import-outside-toplevel
  with precision.policy("mixed_bfloat16"):
    with pytest.raises(ConfigError, match="mixed_precision builds tf_keras models only"):
      models.build(ModelConfig(name="k3_models:mlp"), (4, 4, 1), 3, seed=0)
  model = models.build(ModelConfig(name="k3_models:mlp"), (4, 4, 1), 3, seed=0)
  assert mechanism.of(model).name == "keras3"


def test_what_is_not_a_keras_model_is_refused_in_one_line(monkeypatch, tmp_path):
  (tmp_path / "not_models.py").write_text("def f(input_shape, num_classes, seed):\n"
                                          "  return object()\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  with pytest.raises(ConfigError, match="returned object, not a Keras model"):
    models.build(ModelConfig(name="not_models:f"), (4,), 3, seed=0)
