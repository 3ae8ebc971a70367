"""Batched variants: K same-shaped masked variants in one graph step equal K separate runs."""
import numpy as np
import pytest

from lth_tf import data as data_lib
from lth_tf import models, pruning
from lth_tf.compat import keras
from lth_tf.config import DatasetConfig, ModelConfig, RuntimeConfig, TrainingConfig
from lth_tf.errors import ConfigError
from lth_tf.training import Trainer, get_weights, optimizers, set_weights
from lth_tf.training.batched import BatchedTrainer

RUNTIME = RuntimeConfig(progress=False, eval_batch_size=500)
K = 20  # the rewind iteration the variants start from


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return data_lib.load(DatasetConfig(name="synthetic", validation_size=500),
                       str(tmp_path_factory.mktemp("data")))


def _model(data, seed=0, name="lenet300_100"):
  keras.utils.set_random_seed(seed)
  return pruning.wrap_model(models.build(ModelConfig(name=name), data.input_shape,
                                         data.num_classes, seed))


def _random_mask(model, seed, keep):
  rng = np.random.default_rng(seed)
  return pruning.Mask.from_dict(
      {n: rng.random(s) < keep for n, s in pruning.prunable_shapes(model).items()})


# mixed: the re-init control starts with a fresh optimizer beside restored ones (per-variant
# bias corrections); otherwise every variant is at the same optimizer step (fused kernels; for
# Adam that path is also what the `lth find` test below runs).
# groups: the variants split into groups of independent operations (3 groups of 4 variants:
# sizes 2, 1, 1), on the per-variant and on the fused update path.
@pytest.mark.parametrize("optimizer,mixed,groups", [("adam", True, 1), ("sgd", False, 1),
                                                    ("adam", True, 2), ("adam", False, 3)])
def test_a_batched_run_equals_separate_runs_with_the_same_seeds(data, optimizer, mixed, groups):
  training = TrainingConfig(optimizer=optimizer, learning_rate=1e-3 if optimizer == "adam" else 0.05,
                            iterations=50, eval_every=15, batch_size=50, weight_decay=1e-4,
                            lr_schedule="step", lr_decay_steps=(35,))
  # Dense training to the rewind point k: the weights and optimizer state a level starts from.
  dense = _model(data, seed=0)
  trainer = Trainer(dense, data, training.__class__(**{**training.__dict__, "iterations": K}),
                    RUNTIME, seed=0)
  trainer.fit(0)
  rewind_weights = get_weights(dense)
  rewind_optimizer = optimizers.get_state(trainer.optimizer)
  ticket_mask = _random_mask(dense, 1, 0.3)
  # A ticket, a re-init control (fresh weights, fresh optimizer), a random-prune control and a
  # replicate with another data order and mask density: four variants, four data-order seeds.
  variants = [
      (rewind_weights, ticket_mask, rewind_optimizer, 0),
      (get_weights(_model(data, seed=7)), ticket_mask, None if mixed else rewind_optimizer, 0),
      (rewind_weights, _random_mask(dense, 2, 0.3), rewind_optimizer, 0),
      (rewind_weights, _random_mask(dense, 3, 0.07), rewind_optimizer, 5),
  ]
  separate = []
  model = _model(data, seed=11)
  single = Trainer(model, data, training, RUNTIME, seed=0)
  for weights, mask, state, seed in variants:  # one trainer for every branch, as `lth find`
    single.seed = seed
    set_weights(model, weights)
    pruning.set_mask(model, mask)
    optimizers.set_state(single.optimizer, state if state is not None else optimizers.get_state(
        optimizers.build(training, model.trainable_variables)))
    separate.append((single.fit(K), get_weights(model), optimizers.get_state(single.optimizer)))

  batched = BatchedTrainer(_model(data, seed=11), data, training, RUNTIME,
                           seeds=[seed for *_, seed in variants], groups=groups)
  assert [g.size for g in batched.groups] == {1: [4], 2: [2, 2], 3: [2, 1, 1]}[groups]
  for index, (weights, mask, state, _) in enumerate(variants):
    batched.load(index, weights, mask, state)
  results = batched.fit(K)

  assert len(results) == len(variants)
  for index, (result, weights, state) in enumerate(separate):
    got = results[index]
    assert [r["iteration"] for r in got.curve] == [r["iteration"] for r in result.curve]
    for row, expected in zip(got.curve, result.curve):
      for key in ("validation_loss", "test_loss", "train_loss"):
        if expected[key] is not None:
          assert row[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-5), (index, key)
      for key in ("validation_accuracy", "test_accuracy"):
        assert row[key] == pytest.approx(expected[key], abs=0.005), (index, key)
      assert row["learning_rate"] == pytest.approx(expected["learning_rate"])
    final = batched.get_weights(index)
    mask = variants[index][1]
    for name, value in weights.items():
      np.testing.assert_allclose(final[name], value, rtol=1e-3, atol=2e-5, err_msg=f"{index} {name}")
      if name in mask:
        assert np.all(final[name][~mask[name]] == 0.0)
    moved = {n: float(np.abs(weights[n] - variants[index][0][n]).max()) for n in weights}
    assert min(moved.values()) > 1e-3  # the comparison is between trained networks
    got_state = batched.get_optimizer_state(index)
    assert int(got_state["optimizer/0000"]) == int(state["optimizer/0000"])
    for key, value in state.items():
      np.testing.assert_allclose(got_state[key], value, rtol=1e-3, atol=1e-5, err_msg=key)


def test_variant_groups_are_at_most_the_variants_and_at_least_one(data):
  model = _model(data)
  training = TrainingConfig(iterations=10)
  assert [g.size for g in BatchedTrainer(model, data, training, RUNTIME, seeds=[0, 1],
                                         groups=5).groups] == [1, 1]
  with pytest.raises(ConfigError, match="at least one variant group"):
    BatchedTrainer(model, data, training, RUNTIME, seeds=[0, 1], groups=0)


def test_unsupported_layers_are_refused(data, tmp_path):
  cifar = data_lib.load(DatasetConfig(name="synthetic_cifar", validation_size=100), str(tmp_path))
  with pytest.raises(ConfigError, match="batched training supports"):
    BatchedTrainer(_model(cifar, name="conv2"), cifar, TrainingConfig(iterations=10), RUNTIME,
                   seeds=[0, 1])


def test_an_optimizer_without_stacked_formulas_is_refused_naming_the_supported_ones(data):
  with pytest.raises(ConfigError, match="unknown optimizer for batched training 'rmsprop'; "
                                        "choose one of: adam, sgd"):
    BatchedTrainer(_model(data), data, TrainingConfig(optimizer="rmsprop", iterations=10), RUNTIME,
                   seeds=[0, 1])


def test_lth_find_with_batch_variants_matches_one_by_one(tmp_path, monkeypatch):
  import dataclasses  # pylint: disable=import-outside-toplevel
  from lth_tf import io  # pylint: disable=import-outside-toplevel
  from lth_tf.config import ExperimentConfig, PruningConfig  # pylint: disable=import-outside-toplevel
  from lth_tf.lottery import BranchFiles, LotteryExperiment  # pylint: disable=import-outside-toplevel
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=40, eval_every=20, batch_size=50),
      pruning=PruningConfig(levels=1, fc_rate=0.5, output_rate=0.2, reinit=True, random_prune=True),
      runtime=RuntimeConfig(root_dir=str(tmp_path / "one"), data_dir=str(tmp_path), progress=False))
  one = LotteryExperiment(config, log=lambda line: None).run()
  together = config.replace(runtime=dataclasses.replace(
      config.runtime, root_dir=str(tmp_path / "together"), batch_variants=True))
  lines, sizes = [], []
  fit = BatchedTrainer.fit
  monkeypatch.setattr(BatchedTrainer, "fit",
                      lambda self, *args: sizes.append(self.size) or fit(self, *args))
  experiment = LotteryExperiment(together, log=lines.append)
  rows = experiment.run()
  assert sizes == [3]  # level 1's ticket and both controls, in one batched run
  assert experiment.layout.experiment_hash == LotteryExperiment(config).layout.experiment_hash
  assert [(r["level"], r["branch"]) for r in rows] == [(r["level"], r["branch"]) for r in one]
  assert lines[0].startswith("engine: batched branches") and len(lines) == 1 + len(rows)
  for got, expected in zip(rows, one):
    assert got["weights_remaining"] == expected["weights_remaining"]
    assert got["min_validation_loss"] == pytest.approx(expected["min_validation_loss"], rel=1e-3)
    assert got["final_test_accuracy"] == pytest.approx(expected["final_test_accuracy"], abs=0.01)
  for branch in ("ticket", "reinit", "random_prune"):
    files = BranchFiles(experiment.layout.branch_dir(0, 1, branch))
    mask = io.read_arrays(files.mask)
    final = io.read_arrays(files.final_weights)
    for name, keep in mask.items():
      assert np.all(final[name][~keep.astype(bool)] == 0.0), (branch, name)
    assert io.read_json(files.metrics)["early_stop_iteration"] in (0, 20, 40)


def test_lth_find_trains_a_level_in_variant_groups(tmp_path, monkeypatch):
  import dataclasses  # pylint: disable=import-outside-toplevel
  from lth_tf.config import ExperimentConfig, PruningConfig  # pylint: disable=import-outside-toplevel
  from lth_tf.lottery import LotteryExperiment  # pylint: disable=import-outside-toplevel
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=40, eval_every=20, batch_size=50),
      pruning=PruningConfig(levels=1, fc_rate=0.5, output_rate=0.2, reinit=True, random_prune=True),
      runtime=RuntimeConfig(root_dir=str(tmp_path / "one"), data_dir=str(tmp_path), progress=False,
                            batch_variants=True))
  one = LotteryExperiment(config, log=lambda line: None).run()
  grouped = config.replace(runtime=dataclasses.replace(
      config.runtime, root_dir=str(tmp_path / "grouped"), variant_groups=2))
  shapes = []
  fit = BatchedTrainer.fit
  monkeypatch.setattr(BatchedTrainer, "fit",
                      lambda self, *args: shapes.append([g.size for g in self.groups])
                      or fit(self, *args))
  rows = LotteryExperiment(grouped, log=lambda line: None).run()
  assert shapes == [[2, 1]]  # level 1's three branches: ticket + re-init, random prune
  assert len(rows) == len(one) == 4
  for got, expected in zip(rows, one):
    assert (got["level"], got["branch"]) == (expected["level"], expected["branch"])
    assert got["min_validation_loss"] == pytest.approx(expected["min_validation_loss"], rel=1e-4)
    assert got["final_test_accuracy"] == pytest.approx(expected["final_test_accuracy"], abs=0.005)


def test_one_variant_alone_trains_as_a_single_run(data):
  # SGD: the batched path's fused kernel is exact for it (Adam's rounds 1 - beta differently).
  training = TrainingConfig(optimizer="sgd", learning_rate=0.05, iterations=30, eval_every=10,
                            batch_size=50)
  model = _model(data, seed=3)
  weights = get_weights(model)
  mask = _random_mask(model, 4, 0.5)
  pruning.set_mask(model, mask)
  set_weights(model, weights)
  expected = Trainer(model, data, training, RUNTIME, seed=0).fit(0)
  batched = BatchedTrainer(_model(data, seed=5), data, training, RUNTIME, seeds=[0])
  batched.load(0, weights, mask, None)
  (got,) = batched.fit(0)
  assert got.min_validation_loss == pytest.approx(expected.min_validation_loss, rel=1e-4, abs=1e-5)
  for name, value in get_weights(model).items():
    np.testing.assert_allclose(batched.get_weights(0)[name], value, rtol=1e-3, atol=2e-5)


def test_a_batched_step_sees_batches_of_static_shape(data):
  """Static shapes let the graph optimizer fold each step's shape arithmetic."""
  training = TrainingConfig(iterations=4, eval_every=4, batch_size=50)
  batched = BatchedTrainer(_model(data), data, training, RUNTIME, seeds=[0, 1, 2], groups=2)
  seen = []
  forward = batched._forward  # pylint: disable=protected-access

  def recording(params, x):
    seen.append(x.shape.as_list())
    return forward(params, x)

  batched._forward = recording  # pylint: disable=protected-access
  batched.fit(0)
  # The two groups' training steps (2 and 1 variants). Evaluation's batches keep an unknown
  # batch dimension: the last batch of a set is shorter.
  training_steps = [shape for shape in seen if None not in shape]
  assert sorted(map(str, training_steps)) == [str([1, 50] + list(data.input_shape)),
                                              str([2, 50] + list(data.input_shape))], seen


def test_batched_on_boundary_gets_every_variants_curve_at_every_stop(data):
  training = TrainingConfig(iterations=30, eval_every=20, batch_size=50)
  batched = BatchedTrainer(_model(data), data, training, RUNTIME, seeds=[0, 1])
  for index in range(2):
    batched.load(index, get_weights(_model(data, seed=index)))
  calls = []
  results = batched.fit(0, boundaries=(10,), on_boundary=lambda stop, curves: calls.append(
      (stop, [[row["iteration"] for row in curve] for curve in curves])))
  assert calls == [(10, [[0], [0]]), (20, [[0, 20]] * 2), (30, [[0, 20, 30]] * 2)]
  assert [[row["iteration"] for row in result.curve] for result in results] == [[0, 20, 30]] * 2
