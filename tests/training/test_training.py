"""The training loop: the loss falls, masks hold exactly, rewinding resumes the schedule and data order."""
import warnings

import numpy as np
import pytest

from lth_tf import data as data_lib
from lth_tf import io, models, precision, pruning
from lth_tf.compat import keras, tf
from lth_tf.config import DatasetConfig, ModelConfig, RuntimeConfig, TrainingConfig
from lth_tf.errors import ConfigError, TrainingDiverged
from lth_tf.training import Trainer, batch_indices, driver, get_weights, optimizers, set_weights
from lth_tf.training.schedules import LotterySchedule

RUNTIME = RuntimeConfig(progress=False, eval_batch_size=500)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return data_lib.load(DatasetConfig(name="synthetic", validation_size=500),
                       str(tmp_path_factory.mktemp("data")))


def _model(data, seed=0):
  keras.utils.set_random_seed(seed)
  return pruning.wrap_model(models.build(ModelConfig(), data.input_shape, data.num_classes, seed))


def _half_mask(model, seed=0):
  rng = np.random.default_rng(seed)
  return pruning.Mask.from_dict(
      {n: rng.random(s) < 0.5 for n, s in pruning.prunable_shapes(model).items()})


def test_batch_indices_are_a_function_of_iteration():
  whole = batch_indices(100, 10, seed=3, start=0, stop=35)
  pieces = np.concatenate([batch_indices(100, 10, 3, 0, 7), batch_indices(100, 10, 3, 7, 22),
                           batch_indices(100, 10, 3, 22, 35)])
  assert np.array_equal(whole, pieces)
  epoch = whole[:100]
  assert sorted(epoch) == list(range(100))  # each epoch is a permutation
  assert not np.array_equal(whole[:100], whole[100:200])
  assert not np.array_equal(whole, batch_indices(100, 10, seed=4, start=0, stop=35))


def test_loss_falls_and_early_stop_is_recorded(data):
  trainer = Trainer(_model(data), data, TrainingConfig(iterations=300, eval_every=50, batch_size=60),
                    RUNTIME, seed=0)
  result = trainer.fit(0)
  losses = [row["validation_loss"] for row in result.curve]
  assert [row["iteration"] for row in result.curve] == list(range(0, 301, 50))
  assert losses[-1] < 0.5 * losses[0]
  assert result.final_test_accuracy > 0.5
  best = int(np.argmin(losses))
  assert result.early_stop_iteration == result.curve[best]["iteration"]
  assert result.early_stop_test_accuracy == result.curve[best]["test_accuracy"]
  assert result.min_validation_loss == min(losses)


@pytest.mark.parametrize("optimizer", optimizers.OPTIMIZERS.names())
def test_pruned_weights_stay_exactly_zero_and_get_zero_gradients(data, optimizer):
  model = _model(data)
  training = TrainingConfig(optimizer=optimizer, learning_rate=0.01 if optimizer == "sgd" else 1e-3,
                            iterations=120, eval_every=40)
  trainer = Trainer(model, data, training, RUNTIME, seed=0)
  mask = _half_mask(model)
  # Dense optimizer slots from earlier training must not revive pruned weights either.
  trainer.fit(0)
  pruning.set_mask(model, mask)
  before = pruning.prunable_weights(model)
  trainer.fit(0)
  after = pruning.prunable_weights(model)
  for name in mask:
    assert np.all(after[name][~mask[name]] == 0.0), name
    assert np.any(after[name][mask[name]] != before[name][mask[name]]), name
  assert pruning.get_mask(model) == mask  # the frozen mask was never recomputed
  _, grads = trainer.gradients(data.x_train[:60], data.y_train[:60])
  by_variable = {v.ref(): g.numpy() for v, g in zip(model.trainable_variables, grads)}
  for name, weight, _ in pruning.mask_pairs(model):
    assert np.all(by_variable[weight.ref()][~mask[name]] == 0.0), name
    assert np.any(by_variable[weight.ref()][mask[name]] != 0.0), name


def test_schedule_warmup_and_step_decay():
  schedule = LotterySchedule(0.1, warmup_iterations=10, decay_steps=(20, 30), decay_factor=0.1)
  assert float(schedule(0)) == pytest.approx(0.01)
  assert float(schedule(9)) == pytest.approx(0.1)
  assert float(schedule(19)) == pytest.approx(0.1)
  assert float(schedule(20)) == pytest.approx(0.01)
  assert float(schedule(30)) == pytest.approx(0.001)


def test_resuming_at_an_iteration_equals_an_uninterrupted_run(data):
  training = TrainingConfig(iterations=200, eval_every=50, lr_schedule="step", lr_decay_steps=(80,))
  whole = Trainer(_model(data), data, training, RUNTIME, seed=5)
  captured = {}

  def capture(iteration, curve):
    if iteration == 100:
      captured["weights"] = get_weights(whole.model)
      captured["optimizer"] = optimizers.get_state(whole.optimizer)
      captured["curve"] = list(curve)

  full = whole.fit(0, on_boundary=capture)
  resumed = Trainer(_model(data, seed=9), data, training, RUNTIME, seed=5)
  set_weights(resumed.model, captured["weights"])
  optimizers.set_state(resumed.optimizer, captured["optimizer"])
  assert resumed.learning_rate_at(100) == pytest.approx(training.learning_rate * 0.1)
  second = resumed.fit(100, curve=captured["curve"])
  assert second.curve == full.curve
  for name, value in get_weights(whole.model).items():
    np.testing.assert_array_equal(value, get_weights(resumed.model)[name])


class _Engine:
  """A driver engine without TensorFlow: step i has the loss i (exact in float32), or NaN at the
  iterations of `nan_at`; every evaluation returns its count."""

  def __init__(self, iterations, eval_every, nan_at=()):
    self.config = TrainingConfig(iterations=iterations, eval_every=eval_every)
    self.nan_at = set(nan_at)
    self.chunks, self.evaluations = [], 0

  def train_chunk(self, current, stop):
    self.chunks.append((current, stop))
    loss = np.float32(sum(np.nan if i in self.nan_at else i for i in range(current, stop)))
    return float(loss), bool(np.isfinite(loss))

  def evaluate(self):
    self.evaluations += 1
    return {"validation_loss": 1.0 / self.evaluations, "validation_accuracy": 0.5,
            "test_loss": 0.0, "test_accuracy": 0.25}

  def learning_rate_at(self, iteration):
    return 0.5 if iteration >= 100 else 1.0


def test_the_driver_stops_at_evaluations_extra_boundaries_and_the_end(monkeypatch):
  engine, calls, faults = _Engine(iterations=250, eval_every=100), [], []
  monkeypatch.setattr(io, "fault_point", faults.append)
  result = driver.fit(engine, 30, boundaries=(10, 30, 50, 150, 250, 300),
                      on_boundary=lambda stop, curve: calls.append((stop, len(curve))))
  assert engine.chunks == [(30, 50), (50, 100), (100, 150), (150, 200), (200, 250)]
  assert faults == ["train"] * 5
  # on_boundary at every stop, after the evaluation there; rows only at evaluation points.
  assert calls == [(50, 1), (100, 2), (150, 2), (200, 3), (250, 4)]
  assert [row["iteration"] for row in result.curve] == [30, 100, 200, 250]
  assert [row["learning_rate"] for row in result.curve] == [1.0, 0.5, 0.5, 0.5]
  assert [row["test_loss"] for row in result.curve] == [0.0] * 4
  assert result.early_stop_iteration == 250 and result.iterations == 250


def test_the_drivers_train_loss_is_the_mean_since_the_previous_row_over_its_chunks():
  result = driver.fit(_Engine(iterations=250, eval_every=100), 30, boundaries=(50, 150))
  # Rows at 100, 200, 250: the means of i over [30, 100), [100, 200), [200, 250).
  assert [row["train_loss"] for row in result.curve] == [None, 64.5, 149.5, 224.5]


def test_the_driver_keeps_the_rows_of_a_resumed_curve_and_adds_no_second_start_row():
  engine = _Engine(iterations=200, eval_every=100)
  earlier = [{"iteration": 0, "train_loss": None, "learning_rate": 1.0, "validation_loss": 9.0,
              "validation_accuracy": 0.0, "test_loss": 9.0, "test_accuracy": 0.0},
             {"iteration": 100, "train_loss": 7.0, "learning_rate": 0.5, "validation_loss": 8.0,
              "validation_accuracy": 0.1, "test_loss": 8.0, "test_accuracy": 0.1}]
  given = list(earlier)
  result = driver.fit(engine, 100, given)
  assert given == earlier  # copied, not extended
  assert result.curve[:2] == earlier
  assert [row["iteration"] for row in result.curve] == [0, 100, 200]
  assert engine.evaluations == 1 and result.curve[2]["train_loss"] == 149.5


def test_the_driver_stops_at_the_chunk_whose_loss_diverged(monkeypatch):
  engine, calls, faults = _Engine(iterations=200, eval_every=100, nan_at={120}), [], []
  monkeypatch.setattr(io, "fault_point", faults.append)
  with pytest.raises(TrainingDiverged,
                     match="^the training loss became NaN or Inf between iterations 100 and 150$"):
    driver.fit(engine, 0, boundaries=(150,), on_boundary=lambda stop, curve: calls.append(stop))
  assert engine.chunks == [(0, 100), (100, 150)] and calls == [100] and len(faults) == 1


def test_trainer_on_boundary_gets_its_curve_at_every_stop(data):
  training = TrainingConfig(iterations=30, eval_every=20, batch_size=60)
  trainer = Trainer(_model(data), data, training, RUNTIME, seed=0)
  calls = []
  result = trainer.fit(0, boundaries=(10,), on_boundary=lambda stop, curve: calls.append(
      (stop, [row["iteration"] for row in curve])))
  assert calls == [(10, [0]), (20, [0, 20]), (30, [0, 20, 30])]
  assert [row["iteration"] for row in result.curve] == [0, 20, 30]


def test_diverging_loss_is_an_error(data):
  from lth_tf.errors import TrainingDiverged
  training = TrainingConfig(optimizer="sgd", learning_rate=1e12, iterations=50, eval_every=25)
  trainer = Trainer(_model(data), data, training, RUNTIME, seed=0)
  with pytest.raises(TrainingDiverged, match="NaN or Inf"):
    trainer.fit(0)


def test_the_first_step_after_rewinding_uses_the_schedules_rate_at_k(data):
  training = TrainingConfig(iterations=41, eval_every=41, warmup_iterations=100)
  trainer = Trainer(_model(data), data, training, RUNTIME, seed=0)
  trainer.fit(40)  # one step, at iteration k = 40
  assert float(trainer.optimizer.learning_rate.numpy()) == pytest.approx(
      training.learning_rate * 41 / 100)
  assert int(trainer.iteration.numpy()) == 41


@pytest.mark.parametrize("optimizer", optimizers.OPTIMIZERS.names())
def test_every_optimizer_exposes_its_slots(data, optimizer):
  # The loop zeroes the slots of pruned weights instead of re-masking after every step.
  model = _model(data)
  trainer = Trainer(model, data, TrainingConfig(optimizer=optimizer, iterations=10), RUNTIME, seed=0)
  expected = {"adam": 2, "sgd": 1, "rmsprop": 2}[optimizer]  # rmsprop: averages and momentum
  for variable in model.trainable_variables:
    assert len(optimizers.slots_of(trainer.optimizer, variable)) == expected


def test_a_training_step_sees_a_batch_of_static_shape(data):
  """A static batch shape lets the graph optimizer fold each step's shape arithmetic."""
  trainer = Trainer(_model(data), data, TrainingConfig(iterations=4, eval_every=4, batch_size=60),
                    RUNTIME, seed=0)
  seen = []
  gradients = trainer.gradients

  def recording(x, y, *args):
    seen.append((x.shape.as_list(), y.shape.as_list()))
    return gradients(x, y, *args)

  trainer.gradients = recording
  trainer.fit(0)
  assert seen == [([60] + list(data.input_shape), [60])]


@pytest.mark.parametrize("fused", [False, True])
def test_while_no_weight_is_pruned_the_masks_are_skipped_with_the_same_result(data, fused):
  training = TrainingConfig(iterations=40, eval_every=20, weight_decay=1e-4)
  runtime = RuntimeConfig(progress=False, eval_batch_size=500, fused_optimizer=fused)
  finals = {}
  for pruned in (False, True):
    trainer = Trainer(_model(data), data, training, runtime, seed=0)
    assert not trainer.any_pruned()
    if pruned:  # the masked chunk function, forced, against the one `fit` picks
      trainer.any_pruned = lambda: True
    trainer.fit(0)
    chunks = trainer._train_chunks  # pylint: disable=protected-access
    traced = {p: chunks[p].experimental_get_tracing_count() for p in (False, True)}
    assert traced == {pruned: 1, not pruned: 0}
    finals[pruned] = get_weights(trainer.model)
  for name, value in finals[True].items():
    np.testing.assert_array_equal(finals[False][name], value, err_msg=name)
  pruning.set_mask(trainer.model, _half_mask(trainer.model))
  del trainer.any_pruned
  assert trainer.any_pruned()


@pytest.mark.parametrize("optimizer", optimizers.FUSED_UPDATES.names())
def test_fused_optimizer_matches_the_keras_update(data, optimizer):
  training = TrainingConfig(optimizer=optimizer, learning_rate=1e-3 if optimizer == "adam" else 0.05,
                            iterations=60, eval_every=30, lr_schedule="step", lr_decay_steps=(40,))
  finals = {}
  for fused in (False, True):
    model = _model(data)
    trainer = Trainer(model, data, training, RuntimeConfig(progress=False, eval_batch_size=500,
                                                           fused_optimizer=fused), seed=0)
    mask = _half_mask(model)
    pruning.set_mask(model, mask)
    trainer.fit(0)
    finals[fused] = (get_weights(model), optimizers.get_state(trainer.optimizer))
    for name in mask:
      assert np.all(pruning.prunable_weights(model)[name][~mask[name]] == 0.0), name
  (weights, state), (fused_weights, fused_state) = finals[False], finals[True]
  assert int(fused_state["optimizer/0000"]) == 60
  for name, value in weights.items():
    if optimizer == "sgd":  # the same formula with the same rounding
      np.testing.assert_array_equal(fused_weights[name], value, err_msg=name)
    else:
      np.testing.assert_allclose(fused_weights[name], value, rtol=1e-3, atol=2e-5, err_msg=name)
  for key, value in state.items():
    np.testing.assert_allclose(fused_state[key], value, rtol=1e-3, atol=1e-6, err_msg=key)


def test_fused_optimizer_refuses_an_optimizer_without_fused_kernels_before_training(data):
  training = TrainingConfig(optimizer="rmsprop", iterations=10, eval_every=10)
  with pytest.raises(ConfigError, match="unknown fused optimizer 'rmsprop'; choose one of: adam, sgd"):
    Trainer(_model(data), data, training, RuntimeConfig(progress=False, fused_optimizer=True), seed=0)


def test_fused_optimizer_refuses_loss_scaling(data):
  training = TrainingConfig(iterations=10, eval_every=10, mixed_precision="mixed_float16")
  with pytest.raises(ConfigError, match="--fused_optimizer"):
    Trainer(_model(data), data, training, RuntimeConfig(progress=False, fused_optimizer=True), seed=0)


@pytest.mark.parametrize("cpuinfo,expected", [
    ("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n", False),
    ("processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16\n", True),
    ("processor\t: 0\nflags\t\t: avx2 amx_bf16 amx_tile\n", True),
    ("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n", True),
    ("processor\t: 0\nFeatures\t: fp asimd\n", False),
    ("nothing about features\n", None),
    (None, None),  # no such file
])
def test_the_cpus_bfloat16_arithmetic_is_read_from_its_features(tmp_path, monkeypatch, cpuinfo, expected):
  path = tmp_path / "cpuinfo"
  if cpuinfo is not None:
    path.write_text(cpuinfo)
  monkeypatch.setattr(precision, "CPUINFO", str(path))
  assert precision.cpu_has_bfloat16() is expected


@pytest.mark.parametrize("policy,flags,accelerators,warned", [
    ("mixed_bfloat16", "fpu sse2 avx2 fma", [], True),
    ("mixed_bfloat16", "avx2 avx512_bf16", [], False),
    ("mixed_bfloat16", "fpu sse2 avx2 fma", ["/device:GPU:0"], False),  # the GPU computes it
    ("none", "fpu sse2 avx2 fma", [], False),
])
def test_bfloat16_emulated_on_the_cpu_is_warned_of_before_training(data, tmp_path, monkeypatch, policy,
                                                                    flags, accelerators, warned):
  path = tmp_path / "cpuinfo"
  path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
  monkeypatch.setattr(precision, "CPUINFO", str(path))
  monkeypatch.setattr(precision, "accelerators", lambda: accelerators)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    Trainer(_model(data), data, TrainingConfig(iterations=10, eval_every=10, mixed_precision=policy),
            RUNTIME, seed=0)
  messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
  assert any("emulates" in m and "mixed_bfloat16" in m for m in messages) == warned, messages


def test_weight_decay_is_added_to_the_gradient_of_every_trainable_variable(data):
  # As the docstring says (and open_lth does): kernels, biases, everything trained; masked
  # entries of pruned kernels still get exactly zero.
  model = _model(data)
  rng = np.random.default_rng(0)
  for variable in model.trainable_variables:  # biases start at 0: give every variable values
    variable.assign(rng.normal(scale=0.05, size=variable.shape).astype(np.float32))
  pruning.set_mask(model, _half_mask(model))
  x, y = data.x_train[:60], data.y_train[:60]
  plain = Trainer(model, data, TrainingConfig(), RUNTIME, seed=0).gradients(x, y)[1]
  decayed = Trainer(model, data, TrainingConfig(weight_decay=0.01), RUNTIME,
                    seed=0).gradients(x, y)[1]
  masks = {weight.ref(): mask for _, weight, mask in pruning.mask_pairs(model)}
  assert any("bias" in v.name for v in model.trainable_variables)
  for variable, g0, g1 in zip(model.trainable_variables, plain, decayed):
    mask = masks.get(variable.ref())
    expected = 0.01 * variable.numpy() * (1 if mask is None else mask.numpy())
    np.testing.assert_allclose(g1.numpy() - g0.numpy(), expected, rtol=1e-4, atol=1e-7,
                               err_msg=variable.name)
