"""Column-sharded Dense kernels (`--dense_shards`): the fused update's results, masks exact, clear errors."""
import numpy as np
import pytest

from lth_tf import data as data_lib
from lth_tf import models, pruning
from lth_tf.compat import keras
from lth_tf.config import (DatasetConfig, ExperimentConfig, ModelConfig, RuntimeConfig, TrainingConfig)
from lth_tf.validation import validate
from lth_tf.errors import ConfigError
from lth_tf.training import Trainer, get_weights, optimizers
from lth_tf.training.sharded import DenseShards


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return data_lib.load(DatasetConfig(name="synthetic", validation_size=500),
                       str(tmp_path_factory.mktemp("data")))


def _model(data, name="lenet300_100"):
  keras.utils.set_random_seed(0)
  return pruning.wrap_model(models.build(ModelConfig(name=name), data.input_shape, data.num_classes, 0))


def _train(data, training, **runtime):
  model = _model(data)
  trainer = Trainer(model, data, training, RuntimeConfig(progress=False, eval_batch_size=500, **runtime),
                    seed=0)
  rng = np.random.default_rng(1)
  mask = pruning.Mask.from_dict(
      {n: rng.random(s) < 0.3 for n, s in pruning.prunable_shapes(model).items()})
  pruning.set_mask(model, mask)
  result = trainer.fit(0)
  return model, trainer, mask, result


@pytest.mark.parametrize("optimizer,shards", [("adam", 2), ("sgd", 3)])
def test_sharded_training_equals_the_fused_update_and_keeps_masks_exact(data, optimizer, shards):
  training = TrainingConfig(optimizer=optimizer, learning_rate=1e-3 if optimizer == "adam" else 0.05,
                            iterations=60, eval_every=20, weight_decay=1e-4)
  plain, plain_trainer, mask, plain_result = _train(data, training, fused_optimizer=True)
  split, split_trainer, _, split_result = _train(data, training, dense_shards=shards)
  weights, split_weights = get_weights(plain), get_weights(split)
  assert not np.allclose(weights["fc1/kernel"], get_weights(_model(data))["fc1/kernel"])  # it trained
  for name, value in weights.items():
    np.testing.assert_allclose(split_weights[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
  state, split_state = (optimizers.get_state(t.optimizer) for t in (plain_trainer, split_trainer))
  assert int(split_state["optimizer/0000"]) == 60
  for key, value in state.items():  # the shards' slots were written back into the optimizer's
    np.testing.assert_allclose(split_state[key], value, rtol=1e-4, atol=1e-7, err_msg=key)
  for name in mask:
    assert np.all(pruning.prunable_weights(split)[name][~mask[name]] == 0.0), name
  # Evaluation through the shards gives the model's own metrics.
  for row, split_row in zip(plain_result.curve, split_result.curve):
    assert split_row["iteration"] == row["iteration"]
    assert split_row["test_accuracy"] == pytest.approx(row["test_accuracy"], abs=2e-3)
  assert split_trainer.evaluate()["test_loss"] == pytest.approx(plain_trainer.evaluate()["test_loss"], rel=1e-4)


def test_the_large_dense_kernels_are_split_by_columns(data):
  model = _model(data)
  trainer = Trainer(model, data, TrainingConfig(iterations=10, eval_every=10),
                    RuntimeConfig(progress=False, dense_shards=2), seed=0)
  shards = DenseShards(model, trainer.optimizer, [None] * len(model.trainable_variables), 2)
  shapes = [tuple(v.shape) for v in shards.variables]
  fc1, fc2 = (model.get_layer(f"mask_freeze_wrapper_{n}").layer.kernel.shape for n in ("fc1", "fc2"))
  assert shapes[:2] == [(fc1[0], fc1[1] // 2), (fc1[0], fc1[1] - fc1[1] // 2)]
  assert (fc2[0], fc2[1] // 2) in shapes
  assert tuple(model.get_layer("mask_freeze_wrapper_output").layer.kernel.shape) in shapes  # too small to split
  assert len(shards.variables) == len(model.trainable_variables) + 2


def test_dense_shards_refuses_models_it_cannot_split_before_training(data):
  training = TrainingConfig(iterations=10, eval_every=10)
  with pytest.raises(ConfigError, match="chain of layers"):
    Trainer(_model(data, "resnet20"), data, training, RuntimeConfig(progress=False, dense_shards=2), seed=0)
  with pytest.raises(ConfigError, match="--dense_shards"):
    Trainer(_model(data), data, TrainingConfig(iterations=10, eval_every=10,
                                               mixed_precision="mixed_float16"),
            RuntimeConfig(progress=False, dense_shards=2), seed=0)
  with pytest.raises(ConfigError, match="dense_shards must be >= 1"):
    validate(ExperimentConfig(runtime=RuntimeConfig(dense_shards=0)))
  with pytest.raises(ConfigError, match="--dense_shards splits one device"):
    validate(ExperimentConfig(runtime=RuntimeConfig(dense_shards=2, strategy="mirrored")))

