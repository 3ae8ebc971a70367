"""`lth stability`: the science of the linear path (endpoints, self-path, identical copies, masks,
BatchNorm statistics) and the command end to end, resumed and refused."""
import glob
import os
import subprocess
import sys

import numpy as np
import pytest

import launcher
from lth_tf import io
from lth_tf.compat import keras
from lth_tf.settings import StabilityConfig
from lth_tf.errors import UserError
from lth_tf.lottery.branch_run import BranchRun
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.pruning import Mask
from lth_tf.rundir import BranchFiles, states
from lth_tf.rundir import stability as record
from lth_tf.lottery.tasks import Task, run_detached
from lth_tf.stability import StabilityExperiment, data_seeds, interpolate
from lth_tf.stability.copies import CopyTask
from lth_tf.training import get_weights

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POINTS = 4
# A new experiment (one pruned level, the re-init control) trained by `lth stability` itself,
# then both branches of level 1 measured.
COMMAND = ["stability", "--dataset=synthetic", "--validation_size=500", "--iterations=20",
           "--eval_every=10", "--batch_size=50", "--levels=1", "--fc_rate=0.5",
           "--output_rate=0.2", "--reinit", "--progress=false", "--stability_levels=1",
           "--stability_branches=ticket,reinit", f"--stability_points={POINTS}",
           "--stability_train_examples=500"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """The command run once: its output and the experiment directory it wrote."""
  root = tmp_path_factory.mktemp("stability")
  result = launcher.run(
      [sys.executable, "-m", "lth_tf.cli", *COMMAND, f"--root_dir={root}", f"--data_dir={root}"],
      capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == 0, result.stderr
  (directory,) = [d for d in glob.glob(os.path.join(root, "*")) if os.path.isdir(d)]
  return result, directory


def _experiment(directory, **settings):
  settings = dict(dict(levels=(1,), branches=("ticket", "reinit"), points=POINTS,
                       train_examples=500), **settings)
  return StabilityExperiment.from_directory(directory, StabilityConfig(**settings),
                                            log=lambda line: None)


@pytest.fixture(scope="module")
def replicate(run):
  """The finished experiment's stability runner and a replicate model for in-process paths."""
  experiment = _experiment(run[1])
  return experiment, ReplicateModel(experiment.config, experiment.data, 0, experiment.strategy)


def _pairs(directory):
  return {(p["level"], p["branch"]): p for p in record.read(os.path.join(directory,
                                                                         "stability.json"))}


# ---- the command ------------------------------------------------------------------------------

def test_the_command_writes_the_record_and_figure(run):
  result, directory = run
  pairs = _pairs(directory)
  assert set(pairs) == {(1, "ticket"), (1, "reinit")}
  assert os.path.getsize(os.path.join(directory, "stability.png")) > 0
  assert "instability (test)" in result.stdout
  for (level, branch), pair in pairs.items():
    assert [row["alpha"] for row in pair["path"]] == pytest.approx(np.linspace(0, 1, POINTS + 2))
    assert pair["data_seeds"] == list(data_seeds(0, level, branch))
    assert pair["data_seeds"][0] != pair["data_seeds"][1]
    assert pair["settings"]["train_examples"] == 500
    assert pair["batch_norm"] is False
    errors = [row["test_error"] for row in pair["path"]]
    assert pair["instability"] == max(errors) - (errors[0] + errors[-1]) / 2
    assert pair["instability"] >= 0
  (row,) = [row for row in io.read_json(os.path.join(directory, "stability.json"))["summary"]
            if (row["level"], row["branch"]) == (1, "ticket")]
  assert row["rewind_iteration"] == 0 and row["replicates"] == [0]
  assert row["instability_mean"] == pairs[1, "ticket"]["instability"]


def test_copies_start_where_the_branch_did_and_differ_by_data_order(run):
  """Same start weights and mask as the experiment's branch (the init is unchanged); other
  data orders give other trained weights."""
  directory = run[1]
  for branch in ("ticket", "reinit"):
    trained = BranchFiles(os.path.join(directory, "replicate_0", "level_1", branch))
    copies = [BranchFiles(os.path.join(directory, "stability", "replicate_0", "level_1", branch,
                                       f"copy_{c}")) for c in range(2)]
    for copy in copies:
      for name, value in io.read_arrays(trained.start_weights).items():
        np.testing.assert_array_equal(io.read_arrays(copy.start_weights)[name], value)
      assert Mask.from_dict(io.read_arrays(copy.mask)) == Mask.from_dict(
          io.read_arrays(trained.mask))
    a, b = (io.read_arrays(copy.final_weights) for copy in copies)
    assert any(not np.array_equal(a[name], b[name]) for name in a)


def test_path_endpoints_reproduce_each_copys_own_evaluation(run):
  """At α = 0 and 1 the path's test error and loss are the copies' own final evaluation
  (their metrics and curves), exactly."""
  directory = run[1]
  for branch in ("ticket", "reinit"):
    pair = _pairs(directory)[1, branch]
    for copy, row in zip(range(2), (pair["path"][0], pair["path"][-1])):
      files = BranchFiles(os.path.join(directory, "stability", "replicate_0", "level_1", branch,
                                       f"copy_{copy}"))
      metrics, curve = io.read_json(files.metrics), io.read_json(files.curve_json)
      assert row["test_error"] == 1.0 - metrics["final_test_accuracy"]
      assert row["test_loss"] == curve[-1]["test_loss"]
      assert pair["endpoint_test_error"][copy] == row["test_error"]


def test_interpolation_is_exact_at_the_endpoints():
  rng = np.random.default_rng(0)
  a = {"w": rng.normal(size=(50, 40)).astype(np.float32) * 1e3}
  b = {"w": rng.normal(size=(50, 40)).astype(np.float32) * 1e-3}
  np.testing.assert_array_equal(interpolate.interpolate(a, b, 0.0)["w"], a["w"])
  np.testing.assert_array_equal(interpolate.interpolate(a, b, 1.0)["w"], b["w"])
  assert interpolate.interpolate(a, b, 0.5)["w"].dtype == np.float32


def test_a_resumed_run_trains_no_finished_copy(run, monkeypatch):
  """A rerun with a copy lost (as a killed run leaves it) trains that copy only, evaluates the
  pairs again, and leaves the finished copy's files as they were."""
  directory = run[1]
  pair_dir = os.path.join(directory, "stability", "replicate_0", "level_1", "ticket")
  kept = BranchFiles(os.path.join(pair_dir, "copy_0"))
  lost = BranchFiles(os.path.join(pair_dir, "copy_1"))
  before = io.read_arrays(lost.final_weights)
  kept_stamp = os.stat(kept.final_weights).st_mtime_ns
  for path in (lost.metrics, lost.final_weights, os.path.join(pair_dir, "path.json")):
    os.remove(path)
  previous = _pairs(directory)
  trained = []
  run_branch = BranchRun.run

  def recording(self, *args, files=None, **kwargs):
    trained.append(files.directory)
    return run_branch(self, *args, files=files, **kwargs)

  monkeypatch.setattr(BranchRun, "run", recording)
  _experiment(directory).run()
  assert trained == [lost.directory]
  assert os.stat(kept.final_weights).st_mtime_ns == kept_stamp
  for name, value in io.read_arrays(lost.final_weights).items():
    np.testing.assert_array_equal(value, before[name])  # retrained exactly as before
  assert _pairs(directory) == previous
  _experiment(directory).run()  # nothing left to do
  assert trained == [lost.directory]


@pytest.mark.parametrize("settings, message", [
    (dict(levels=(2,)), "has no level 2"),
    (dict(branches=("ticket", "random_prune")), "trains no random_prune branch"),
    (dict(branches=("tickt",)), "unknown branch 'tickt'"),
    (dict(replicates=(3,)), "replicate 3 is not one of"),
    (dict(points=0), "stability_points must be >= 1"),
    (dict(normalisation="median"), "unknown normalisation rule 'median'"),
])
def test_bad_requests_are_one_line_before_anything_is_written(run, settings, message):
  with pytest.raises(UserError, match=message):
    _experiment(run[1], **settings)


def test_an_unfinished_level_is_refused_before_anything_is_written(run, tmp_path):
  directory = run[1]
  copy = str(tmp_path / os.path.basename(directory))
  os.makedirs(copy)
  for name in ("config.json", "data.json"):
    os.link(os.path.join(directory, name), os.path.join(copy, name))
  with pytest.raises(UserError, match="level 1 branch ticket .* is not finished"):
    _experiment(copy)
  assert sorted(os.listdir(copy)) == ["config.json", "data.json"]


# ---- the science of the path --------------------------------------------------------------------

def test_two_copies_with_one_data_order_are_identical(replicate, tmp_path):
  """The same plan and data-order seed twice: the same weights, bit for bit, and a path whose
  instability is exactly 0."""
  experiment, model = replicate
  pair = (0, 1, "ticket")
  rewind = states.read(io, experiment.layout.rewind_file(0))
  plan = experiment.plan(model, rewind, *pair)
  copies = [BranchFiles(str(tmp_path / f"copy_{c}")) for c in range(2)]
  for files in copies:
    experiment.train_copy(model, pair, plan, files, data_seed=12345)
  a, b = (io.read_arrays(files.final_weights) for files in copies)
  for name in a:
    np.testing.assert_array_equal(a[name], b[name])
  evaluated = experiment.evaluate_pair(model, pair, plan, copies)
  assert evaluated["instability"] == 0.0 and evaluated["train_instability"] == 0.0
  assert len({row["test_error"] for row in evaluated["path"]}) == 1


def test_level_zero_starts_from_the_rewind_point(replicate):
  """Level 0's copies start as the dense network did (k = 0: θ0, iteration 0, unmasked)."""
  experiment, model = replicate
  rewind = states.read(io, experiment.layout.rewind_file(0))
  plan = experiment.plan(model, rewind, 0, 0, "ticket")
  dense = BranchFiles(experiment.layout.branch_dir(0, 0, "ticket"))
  assert plan.start_iteration == 0 and plan.mask.weights_remaining() == 1.0
  for name, value in io.read_arrays(dense.start_weights).items():
    np.testing.assert_array_equal(plan.start_weights[name], value)


def test_a_network_interpolated_with_itself_has_instability_zero(run, replicate):
  """A network whose error is far from 0: every point of its path with itself is that network,
  the barrier is exactly 0."""
  experiment, model = replicate
  files = BranchFiles(os.path.join(run[1], "stability", "replicate_0", "level_1", "ticket",
                                   "copy_0"))
  rng = np.random.default_rng(3)
  weights = {name: rng.normal(size=value.shape).astype(value.dtype)
             for name, value in io.read_arrays(files.final_weights).items()}
  evaluator = interpolate.PathEvaluator(
      model.model, model.trainer.evaluate_on, {"test": (experiment.data.x_test,
                                                         experiment.data.y_test)},
      Mask.from_dict(io.read_arrays(files.mask)), "recompute", [])
  path = evaluator.path(weights, weights, interpolate.alphas(POINTS))
  assert path[0]["test_error"] > 0.1
  assert interpolate.instability([row["test_error"] for row in path]) == 0.0
  assert all(row["test_loss"] == path[0]["test_loss"] for row in path)


def test_pruned_weights_stay_exactly_zero_along_the_path(run, replicate):
  """Endpoints carrying values at pruned positions (as rewind weights do) are evaluated with
  those weights exactly 0 at every point of the path."""
  experiment, model = replicate
  files = BranchFiles(os.path.join(run[1], "stability", "replicate_0", "level_1", "ticket",
                                   "copy_0"))
  mask = Mask.from_dict(io.read_arrays(files.mask))
  rng = np.random.default_rng(1)
  a, b = ({name: value + rng.normal(size=value.shape).astype(value.dtype)
           for name, value in io.read_arrays(files.final_weights).items()} for _ in range(2))
  seen = []

  def evaluate(x, y):
    seen.append(get_weights(model.model))
    return model.trainer.evaluate_on(x, y)

  evaluator = interpolate.PathEvaluator(model.model, evaluate, {"test": (
      experiment.data.x_test[:100], experiment.data.y_test[:100])}, mask, "recompute", [])
  evaluator.path(a, b, interpolate.alphas(POINTS))
  assert len(seen) == POINTS + 2
  for weights in seen:
    for name in mask:
      assert np.all(weights[name][~mask[name]] == 0)
      assert np.count_nonzero(weights[name][mask[name]]) == mask[name].sum()


# ---- BatchNorm ----------------------------------------------------------------------------------

def _batch_norm_model():
  inputs = keras.Input(shape=(6,))
  hidden = keras.layers.Dense(5, name="fc1")(inputs)
  normalised = keras.layers.BatchNormalization(name="bn1")(hidden)
  outputs = keras.layers.Dense(3, name="output")(keras.layers.ReLU()(normalised))
  return keras.Model(inputs, outputs)


def _accuracy(model):
  def evaluate(x, y):
    logits = model(x, training=False).numpy()
    return 0.0, float(np.mean(np.argmax(logits, -1) == y))
  return evaluate


@pytest.mark.parametrize("rule", ["recompute", "interpolate"])
def test_batch_norm_statistics_follow_the_rule(rule):
  """`recompute`: at every point the moving mean and variance are the average, over the fixed
  training batches, of the batch mean and variance of that point's network (after a Dense
  layer: the biased variance, Keras's unfused kernel); they are neither the endpoints' nor
  interpolated ones. `interpolate`: they are interpolated."""
  model = _batch_norm_model()
  rng = np.random.default_rng(2)
  endpoints = []
  for scale in (1.0, -2.0):
    weights = {name: rng.normal(size=value.shape).astype(np.float32) * scale
               for name, value in get_weights(model).items()}
    weights["bn1/moving_mean"] = np.full(5, 50.0 * scale, np.float32)
    weights["bn1/moving_variance"] = np.full(5, 9.0, np.float32)
    endpoints.append(weights)
  batches = [rng.normal(size=(32, 6)).astype(np.float32) for _ in range(3)]
  evaluator = interpolate.PathEvaluator(
      model, _accuracy(model), {"train": (batches[0], np.zeros(32, np.int64))},
      Mask.from_dict({"fc1/kernel": np.ones((6, 5), bool)}), rule, batches)
  for alpha in (0.0, 0.5, 1.0):
    point = interpolate.interpolate(*endpoints, alpha)
    evaluator.at(point)
    mean, variance = (get_weights(model)[f"bn1/moving_{s}"] for s in ("mean", "variance"))
    if rule == "interpolate":
      np.testing.assert_array_equal(mean, point["bn1/moving_mean"])
      continue
    hidden = [x @ point["fc1/kernel"] + point["fc1/bias"] for x in batches]
    np.testing.assert_allclose(mean, np.mean([h.mean(0) for h in hidden], 0), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(variance, np.mean([h.var(0) for h in hidden], 0), rtol=1e-4)
  assert model.get_layer("bn1").momentum == 0.99  # restored after the recomputation


def test_convolutional_batch_norm_averages_unbiased_variances():
  """After a convolution Keras runs BatchNorm's fused kernel, whose moving variance takes the
  Bessel-corrected batch variance (n − 1 over the batch × height × width values of a
  channel): `recompute` averages those."""
  inputs = keras.Input(shape=(5, 5, 2))
  conv = keras.layers.Conv2D(3, 3, name="conv1")(inputs)
  normalised = keras.layers.BatchNormalization(name="bn1")(conv)
  outputs = keras.layers.Dense(2, name="output")(keras.layers.Flatten()(normalised))
  model = keras.Model(inputs, outputs)
  rng = np.random.default_rng(4)
  weights = {name: rng.normal(size=value.shape).astype(np.float32)
             for name, value in get_weights(model).items()}
  weights["bn1/moving_variance"] = np.full(3, 9.0, np.float32)
  batches = [rng.normal(size=(4, 5, 5, 2)).astype(np.float32) for _ in range(3)]
  evaluator = interpolate.PathEvaluator(
      model, _accuracy(model), {"train": (batches[0], np.zeros(4, np.int64))},
      Mask.from_dict({"conv1/kernel": np.ones((3, 3, 2, 3), bool)}), "recompute", batches)
  evaluator.at(weights)
  mean, variance = (get_weights(model)[f"bn1/moving_{s}"] for s in ("mean", "variance"))
  probe = keras.Model(inputs, conv)  # the convolution at the point's weights
  maps = [probe(x, training=False).numpy().reshape(-1, 3) for x in batches]
  np.testing.assert_allclose(mean, np.mean([m.mean(0) for m in maps], 0), rtol=1e-5, atol=1e-5)
  unbiased = np.mean([m.var(0, ddof=1) for m in maps], 0)
  np.testing.assert_allclose(variance, unbiased, rtol=1e-4)
  assert not np.allclose(variance, np.mean([m.var(0) for m in maps], 0), rtol=1e-3)


# ---- the copies as tasks (`stability.copies`) ----------------------------------------------------

class _NoCheckpoints:
  """A detached task's checkpoints, kept nowhere (these tasks are not interrupted)."""

  def __init__(self, store):
    del store

  def read(self, files):
    del files

  def write(self, files, state):
    del files, state

  def clear(self, files):
    del files


def test_a_worker_that_trained_a_copy_trains_the_replicate_s_next_task_in_its_own_order(run):
  """A remote worker keeps its replicate models between tasks (`lottery.tasks.run_detached`):
  a copy trained there equals the local copy, and after it, in another data order, the
  replicate's next task of `lth find` trains in the replicate's own order, as the local run
  did: its weights are the directory's, bit for bit."""
  experiment = _experiment(run[1])
  layout = experiment.layout
  find = experiment.copies.spec.find.work(experiment.data, experiment.strategy,
                                          experiment.trainer, None, 1)
  expected = {
      CopyTask(0, 1, "ticket", 0): layout.stability_pair(0, 1, "ticket").copy(0),
      Task("branch", 0, 1, "reinit"): BranchFiles(layout.branch_dir(0, 1, "reinit"))}
  for (task, files), work in zip(expected.items(), (experiment.copies, find)):
    remote = work.remote(task)
    _, (output,) = run_detached(remote.spec, remote.data, remote.task, remote.inputs,
                                _NoCheckpoints)
    assert output.files.directory == files.directory
    for name, value in io.read_arrays(files.final_weights).items():
      np.testing.assert_array_equal(output.final_weights[name], value, err_msg=f"{task} {name}")


def test_a_finished_experiment_s_copies_run_under_the_executor_given_now(run, tmp_path):
  """`lth stability --experiment_dir=DIR` trains the copies with the executor of its own
  command line (local by default), not the one the experiment recorded."""
  import shutil
  directory = str(tmp_path / os.path.basename(run[1]))
  shutil.copytree(run[1], directory)
  recorded = io.read_json(os.path.join(directory, "config.json"))
  recorded["runtime"]["executor"] = "ray"  # trained under Ray, as far as the record says
  io.write_json(os.path.join(directory, "config.json"), recorded)
  assert _experiment(directory).config.runtime.executor == "local"
  pytest.importorskip("ray")
  settings = StabilityConfig(levels=(1,), branches=("ticket",), points=POINTS,
                             train_examples=500)
  given = StabilityExperiment.from_directory(
      directory, settings, log=lambda line: None,
      executor={"executor": "ray", "cpus_per_task": 2.0})
  assert (given.config.runtime.executor, given.config.runtime.cpus_per_task) == ("ray", 2.0)
  assert given.config.experiment_hash() == _experiment(directory).config.experiment_hash()
