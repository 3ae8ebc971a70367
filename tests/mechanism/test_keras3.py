"""Keras 3 models through the mechanism seam (`lth_tf.mechanism.keras3`): the same network written
in Keras 3 and in tf_keras trains to the same numbers under the same mask, on every engine; a
pruned weight and its optimizer slots stay exactly zero; bad input is refused in one line."""
import json
import os

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


def test_a_tf_keras_ticket_builds_trains_and_exports_in_keras3():
  """A shipped ticket (found with tf_keras) in the registered model built in Keras 3: the same
  mask and weights by name, the same outputs, a TFLite file holding exactly the mask's weights."""
  from lth_tf import tickets  # pylint: disable=import-outside-toplevel
  from lth_tf.export import formats, inference, tflite_sparse  # pylint: disable=import-outside-toplevel
  ticket = tickets.read(tickets.resolve("lenet300_fashion_mnist_level7"))
  assert ticket.framework == "tf_keras"  # a ticket from before the record
  reference = tickets.build_model(ticket, trained=True)
  ported = tickets.build_model(ticket, trained=True, framework="keras3")
  assert mechanism.of(ported).name == "keras3"
  assert pruning.get_mask(ported) == ticket.mask
  images = np.random.default_rng(0).uniform(0, 255, (16, 28, 28, 1)).astype(np.float32)
  clients = [inference.inference_model(m, ticket.mean, ticket.std) for m in (reference, ported)]
  np.testing.assert_allclose(clients[1].predict(images, verbose=0),
                             clients[0].predict(images, verbose=0), rtol=1e-5, atol=1e-5)
  blob = formats.tflite_bytes(clients[1], "none", images)
  assert sum(tflite_sparse.kernel_nonzeros(blob).values()) == ticket.mask.num_remaining()


def test_lth_find_on_the_registered_lenet_in_keras3_is_the_tf_keras_experiment(tmp_path):
  """`--framework=keras3`: another experiment directory (the flag is hashed), `model.json` says
  so, and every number of the dense network and the ticket is the tf_keras run's (same initial
  weights, data order and operations). The re-init control draws its weights from a derived
  seed whose layer seeds pass 2^32: Keras 3 keeps their low 32 bits, tf_keras all 64, so its
  weights are other draws of the same distribution."""
  rng = np.random.default_rng(0)
  data = (rng.uniform(0, 255, (160, 28, 28, 1)).astype(np.uint8), rng.integers(0, 10, 160),
          rng.uniform(0, 255, (40, 28, 28, 1)).astype(np.uint8), rng.integers(0, 10, 40))
  from lth_tf import api  # pylint: disable=import-outside-toplevel
  settings = dict(levels=1, reinit=True, iterations=20, eval_every=10, batch_size=32,
                  validation_size=32, progress=False, root_dir=str(tmp_path), data_dir=str(tmp_path))
  runs = {framework: api.find("lenet300_100", data, log=lambda line: None, framework=framework,
                              **settings) for framework in ("", "keras3")}
  assert runs[""].directory != runs["keras3"].directory
  for framework, run in runs.items():
    record = json.load(open(os.path.join(run.directory, "model.json")))
    assert record == {"framework": framework or "tf_keras"}
  tickets_of = {f: [r for r in run.rows if r["branch"] == "ticket"] for f, run in runs.items()}
  assert len(tickets_of[""]) == 2 and tickets_of["keras3"] == tickets_of[""]
  assert [(r["level"], r["branch"], r["weights_remaining"]) for r in runs["keras3"].rows] == [
      (r["level"], r["branch"], r["weights_remaining"]) for r in runs[""].rows]


def test_a_framework_that_is_not_the_model_s_is_one_line(monkeypatch, tmp_path):
  from lth_tf.config import ExperimentConfig  # pylint: disable=import-outside-toplevel
  from lth_tf.validation import validate  # pylint: disable=import-outside-toplevel
  with pytest.raises(ConfigError, match="framework must be one of keras3, tf_keras; got 'keras4'"):
    validate(ExperimentConfig(model=ModelConfig(framework="keras4")))
  (tmp_path / "k2_models.py").write_text(
      "import tf_keras as keras\n"
      "def mlp(input_shape, num_classes, seed):\n"
      "  inputs = keras.Input(input_shape)\n"
      "  return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Flatten()(inputs)))\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  with pytest.raises(ConfigError, match="is a tf_keras model, and --framework=keras3 names another"):
    models.build(ModelConfig(name="k2_models:mlp", framework="keras3"), (4, 4, 1), 3, seed=0)
  with pytest.raises(ConfigError, match="MobileNetV2 application, built in tf_keras only"):
    models.build(ModelConfig(name="mobilenetv2_035", framework="keras3"), (32, 32, 3), 10, seed=0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_ticket_search_keeps_a_keras3_model_s_pruned_weights_and_slots_at_zero(optimizer):
  """TicketSearch around the user's own Keras 3 `model.fit`, with a Keras 3 optimizer."""
  from lth_tf.keras_fit import TicketSearch  # pylint: disable=import-outside-toplevel
  model = keras3.Sequential([keras3.Input((8,)), keras3.layers.Dense(32, activation="relu"),
                             keras3.layers.Dense(3)])
  chosen = {"adam": keras3.optimizers.Adam(0.01),
            "sgd": keras3.optimizers.SGD(0.05, momentum=0.9),
            "rmsprop": keras3.optimizers.RMSprop(0.01, momentum=0.5)}[optimizer]
  model.compile(optimizer=chosen, loss=keras3.losses.SparseCategoricalCrossentropy(from_logits=True))
  search = TicketSearch(model, rewind_iteration=2)
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(64, 8)).astype(np.float32), rng.integers(0, 3, 64)
  search.model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=search.callbacks())
  search.prune(fc_rate=0.5, output_rate=0.5)
  search.rewind()
  search.model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=search.callbacks())
  assert search.iteration == 2 + 8 and search.weights_remaining() < 0.55  # rewound to k = 2
  masked = pruning.mask_pairs(search.model)
  assert [name for name, _, _ in masked] == ["dense/kernel", "dense_1/kernel"]
  for name, weight, mask in masked:
    pruned = mask.numpy() == 0
    assert np.all(weight.numpy()[pruned] == 0) and np.any(weight.numpy()[~pruned] != 0), name
    slots = optimizers.slots_of(search.optimizer, weight)
    assert len(slots) == {"adam": 2, "sgd": 1, "rmsprop": 2}[optimizer], name
    for slot in slots:
      assert np.all(slot.numpy()[pruned] == 0) and np.any(slot.numpy()[~pruned] != 0), name


def test_a_keras3_convolution_counts_its_positions_as_tf_keras_does():
  """The training FLOPs a directory records: a convolution applies its kernel at every output
  position, in either Keras."""
  from lth_tf import compute  # pylint: disable=import-outside-toplevel
  counted = {framework: compute.output_positions(pruning.wrap_model(models.build(
      ModelConfig(name="conv2", framework=framework), (32, 32, 3), 10, seed=0)))
      for framework in ("", "keras3")}
  assert counted["keras3"] == counted[""] and counted[""]["conv1"] == 32 * 32


def test_a_softmax_written_as_an_operation_is_refused_in_one_line(monkeypatch, tmp_path):
  """`keras.ops.softmax` is not a layer: the head is looked for behind it, and its output,
  which sums to one, is refused as probabilities lth_tf cannot take off."""
  (tmp_path / "op_models.py").write_text(
      "import keras\n"
      "def softmax_op(input_shape, num_classes, seed):\n"
      "  inputs = keras.Input(input_shape)\n"
      "  logits = keras.layers.Dense(num_classes)(keras.layers.Flatten()(inputs))\n"
      "  return keras.Model(inputs, keras.ops.softmax(logits))\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  with pytest.raises(ConfigError, match="returns probabilities"):
    models.build(ModelConfig(name="op_models:softmax_op"), (4, 4, 1), 3, seed=0)


def test_tf_keras_named_is_the_default_experiment():
  from lth_tf.config import ExperimentConfig  # pylint: disable=import-outside-toplevel
  named = ExperimentConfig(model=ModelConfig(framework="tf_keras"))
  assert named.model.framework == "" and named.experiment_hash() == ExperimentConfig().experiment_hash()
