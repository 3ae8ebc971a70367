"""The lottery engine end to end on synthetic data: levels, rewinding, controls, resume."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import artifacts
import launcher
from lth_tf import io
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig,
                           TrainingConfig)
from lth_tf.errors import ConfigError, UserError
from lth_tf.lottery import BranchFiles, ExperimentLayout, LotteryExperiment
from lth_tf.lottery.branch_run import BranchRun
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf import rundir
from lth_tf.rundir import SUMMARY_KEYS
from lth_tf.pruning import Mask, remaining_after
from lth_tf.pruning import mask_pairs
from lth_tf.training import get_weights, optimizers, set_weights
from lth_tf.training.loop import batch_indices
from lth_tf.training.schedules import from_config as schedule_from_config

LEVELS = 3


def _config(root, **pruning):
  defaults = dict(levels=LEVELS, fc_rate=0.5, output_rate=0.2, reinit=True, random_prune=True)
  defaults.update(pruning)
  return ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=60, eval_every=20, batch_size=50),
      pruning=PruningConfig(**defaults),
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False))


def _masks(layout, seed, branch="ticket"):
  out = []
  for level in range(LEVELS + 1):
    files = BranchFiles(layout.branch_dir(seed, level, branch))
    out.append(Mask.from_dict(io.read_arrays(files.mask)))
  return out


class _StartRecorder:
  """Records, per (seed, level, branch), the optimizer state a branch's trainer held right
  after the runner loaded the branch's start state: what its first step really starts from."""

  def __init__(self):
    self.starts, self._current = {}, None

  def __enter__(self):
    recorder = self
    run_branch, load_state = BranchRun.run, ReplicateModel.load_state

    def recording_run_branch(runner, replicate, seed, level, branch, *args, **kwargs):
      recorder._current = (seed, level, branch)
      return run_branch(runner, replicate, seed, level, branch, *args, **kwargs)

    def recording_load_state(replicate, *args, **kwargs):
      load_state(replicate, *args, **kwargs)
      recorder.starts[recorder._current] = optimizers.get_state(replicate.trainer.optimizer)

    self._saved = run_branch, load_state
    BranchRun.run, ReplicateModel.load_state = recording_run_branch, recording_load_state
    return self

  def __exit__(self, *exc):
    BranchRun.run, ReplicateModel.load_state = self._saved


@pytest.fixture(scope="module")
def rewound(tmp_path_factory):
  """An experiment with rewinding to k=20 and every control, and the optimizer state each
  branch started from."""
  config = _config(tmp_path_factory.mktemp("rewind"), rewind_iteration=20)
  experiment = LotteryExperiment(config, log=lambda line: None)
  with _StartRecorder() as recorder:
    rows = experiment.run()
  return config, experiment, rows, recorder.starts


def test_summary_has_a_row_per_level_and_branch(rewound):
  config, experiment, rows, starts = rewound
  assert [(r["level"], r["branch"]) for r in rows] == [(0, "ticket")] + [
      (level, branch) for level in range(1, LEVELS + 1)
      for branch in ("ticket", "reinit", "random_prune")]
  assert rows == io.read_json(experiment.layout.summary_file)
  for row in rows:
    assert set(SUMMARY_KEYS) <= set(row)
    assert 0 < row["weights_remaining"] <= 1
  assert os.path.exists(experiment.layout.config_file)


def test_density_per_level_and_masks_only_shrink(rewound):
  config, experiment, rows, starts = rewound
  masks = _masks(experiment.layout, 0)
  for level, mask in enumerate(masks):
    for name, density in mask.layer_densities().items():
      rate = 0.2 if name.startswith("output") else 0.5
      assert density == pytest.approx((1 - rate) ** level, abs=1e-3)
  for before, after in zip(masks, masks[1:]):
    assert after.is_subset_of(before)


def test_a_level_starts_from_rewind_weights_times_mask(rewound):
  config, experiment, rows, starts = rewound
  rewind = io.read_arrays(experiment.layout.rewind_file(0))
  level0_start = io.read_arrays(BranchFiles(experiment.layout.branch_dir(0, 0, "ticket")).start_weights)
  for level in range(1, LEVELS + 1):
    files = BranchFiles(experiment.layout.branch_dir(0, level, "ticket"))
    mask = Mask.from_dict(io.read_arrays(files.mask))
    start = io.read_arrays(files.start_weights)
    for name, value in start.items():
      expected = rewind[f"w/{name}"] * mask[name] if name in mask else rewind[f"w/{name}"]
      np.testing.assert_array_equal(value, expected)
  # k = 20 > 0: θk is not θ0.
  assert not np.array_equal(rewind["w/fc1/kernel"], level0_start["fc1/kernel"])


def test_the_rewind_point_is_level_0_at_iteration_k(rewound):
  config, experiment, rows, starts = rewound
  k = config.pruning.rewind_iteration
  rewind = io.read_arrays(experiment.layout.rewind_file(0))
  # The optimizer state was captured after exactly k steps (its first variable counts them).
  state = {n: v for n, v in rewind.items() if n.startswith("optimizer/")}
  assert int(state["optimizer/0000"]) == k
  # The weights are level 0's at k: evaluated, they give level 0's own evaluation at k, and
  # not its evaluation at 0 or at the next evaluation point.
  curve = {row["iteration"]: row for row in io.read_json(
      BranchFiles(experiment.layout.branch_dir(0, 0, "ticket")).curve_json)}
  replicate = ReplicateModel(config, experiment.data, 0, experiment.strategy)
  set_weights(replicate.model, {n[2:]: v for n, v in rewind.items() if n.startswith("w/")})
  evaluated = replicate.trainer.evaluate()
  for key in ("test_loss", "validation_loss"):
    assert evaluated[key] == pytest.approx(curve[k][key], rel=1e-6, abs=1e-7)
    for other in (0, k + config.training.eval_every):
      assert evaluated[key] != pytest.approx(curve[other][key], rel=1e-4)


def test_the_first_step_after_rewinding_uses_the_schedule_at_k(tmp_path):
  # Warm-up makes the rate a function of the iteration; plain SGD makes the first step's
  # update -rate * gradient, so the rate the step really used can be read off the weights.
  k = 20
  config = _config(tmp_path, levels=1, reinit=False, random_prune=False, rewind_iteration=k)
  config = dataclasses.replace(config, training=dataclasses.replace(
      config.training, iterations=k + 1, optimizer="sgd", momentum=0.0, learning_rate=0.5,
      warmup_iterations=100))
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  files = BranchFiles(experiment.layout.branch_dir(0, 1, "ticket"))
  curve = io.read_json(files.curve_json)
  schedule = schedule_from_config(config.training)
  assert curve[0]["iteration"] == k
  assert curve[0]["learning_rate"] == pytest.approx(float(schedule(k)))
  # The gradient of the one step from k, on the batch of iteration k.
  replicate = ReplicateModel(config, experiment.data, 0, experiment.strategy)
  mask = Mask.from_dict(io.read_arrays(files.mask))
  replicate.load_state(io.read_arrays(files.start_weights), mask, None)
  idx = batch_indices(len(experiment.data.y_train), config.training.batch_size, 0, k, k + 1)
  _, grads = replicate.trainer.gradients(experiment.data.x_train[idx], experiment.data.y_train[idx])
  kernels = {name: weight for name, weight, _ in mask_pairs(replicate.model)}
  (index,) = [i for i, v in enumerate(replicate.model.trainable_variables)
              if v is kernels["fc1/kernel"]]
  gradient = grads[index].numpy()
  step = (io.read_arrays(files.final_weights)["fc1/kernel"]
          - io.read_arrays(files.start_weights)["fc1/kernel"])
  used = -np.sum(step * gradient) / np.sum(gradient * gradient)
  assert used == pytest.approx(float(schedule(k)), rel=1e-3)
  assert float(schedule(k)) > 10 * float(schedule(0))  # the schedule at 0 would be told apart


def test_controls(rewound):
  config, experiment, rows, starts = rewound
  layout = experiment.layout
  rewind = io.read_arrays(layout.rewind_file(0))
  captured = {n: v for n, v in rewind.items() if n.startswith("optimizer/")}
  for level in range(1, LEVELS + 1):
    ticket = BranchFiles(layout.branch_dir(0, level, "ticket"))
    reinit = BranchFiles(layout.branch_dir(0, level, "reinit"))
    random = BranchFiles(layout.branch_dir(0, level, "random_prune"))
    ticket_mask = Mask.from_dict(io.read_arrays(ticket.mask))
    assert Mask.from_dict(io.read_arrays(reinit.mask)) == ticket_mask
    random_mask = Mask.from_dict(io.read_arrays(random.mask))
    assert random_mask.layer_counts() == ticket_mask.layer_counts()
    assert random_mask != ticket_mask
    ticket_start = io.read_arrays(ticket.start_weights)
    reinit_start = io.read_arrays(reinit.start_weights)
    kernel = "fc1/kernel"
    kept = ticket_mask[kernel]
    assert not np.array_equal(ticket_start[kernel][kept], reinit_start[kernel][kept])
    assert np.all(reinit_start[kernel][~kept] == 0)
    # Random pruning starts from θk under its own mask.
    random_start = io.read_arrays(random.start_weights)
    for name, value in random_start.items():
      expected = rewind[f"w/{name}"] * random_mask[name] if name in random_mask else rewind[f"w/{name}"]
      np.testing.assert_array_equal(value, expected)
    # Every branch starts from the optimizer state captured at k (slots of its own mask's
    # pruned weights zeroed): the controls differ from the ticket in weights or mask only.
    for branch, mask in (("ticket", ticket_mask), ("random_prune", random_mask),
                         ("reinit", ticket_mask)):
      _assert_restored(starts[(0, level, branch)], captured, mask, experiment)


def _assert_restored(state, captured, mask, experiment):
  """`state` is `captured` with the slots of `mask`'s pruned weights zeroed."""
  assert sorted(state) == sorted(captured)
  replicate = ReplicateModel(experiment.config, experiment.data, 0, experiment.strategy)
  slot_masks = {}
  for name, weight, _ in mask_pairs(replicate.model):
    for slot in optimizers.slots_of(replicate.trainer.optimizer, weight):
      slot_masks[slot.ref()] = mask[name]
  for index, variable in enumerate(replicate.trainer.optimizer.variables):
    key = f"optimizer/{index:04d}"
    expected = captured[key] * slot_masks.get(variable.ref(), 1)
    np.testing.assert_array_equal(state[key], expected)
  assert int(state["optimizer/0000"]) == experiment.config.pruning.rewind_iteration


def test_pruned_weights_are_exactly_zero_after_training(rewound):
  config, experiment, rows, starts = rewound
  for level in range(1, LEVELS + 1):
    for branch in ("ticket", "reinit", "random_prune"):
      files = BranchFiles(experiment.layout.branch_dir(0, level, branch))
      mask = Mask.from_dict(io.read_arrays(files.mask))
      final = io.read_arrays(files.final_weights)
      for name in mask:
        assert np.all(final[name][~mask[name]] == 0.0)


def test_rerunning_skips_finished_work(rewound):
  config, experiment, rows, starts = rewound
  metrics = BranchFiles(experiment.layout.branch_dir(0, LEVELS, "ticket")).metrics
  stamp = os.path.getmtime(metrics)
  again = LotteryExperiment(config, log=lambda line: None).run()
  assert again == rows
  assert os.path.getmtime(metrics) == stamp


def test_a_rerun_with_other_seeds_adds_replicates_and_drops_none(tmp_path):
  """`--seeds=0,1`, then `--seeds=1` (or `--seeds=2`): the summary, compute record and
  config.json hold every replicate the directory trained, not the last run's only."""
  config = _config(tmp_path, levels=1, reinit=False, random_prune=False)
  config = config.replace(training=TrainingConfig(iterations=20, eval_every=20, batch_size=50))
  first = LotteryExperiment(_with_runtime(config, seeds=(0, 1)), log=lambda line: None)
  rows = first.run()
  assert sorted({row["replicate"] for row in rows}) == [0, 1]
  for seeds, expected in (((1,), [0, 1]), ((2,), [0, 1, 2])):
    again = LotteryExperiment(_with_runtime(config, seeds=seeds), log=lambda line: None)
    assert again.layout.directory == first.layout.directory
    rows = again.run()
    summary = io.read_json(again.layout.summary_file)
    assert sorted({row["replicate"] for row in summary}) == expected
    assert rows == summary and len(summary) == 2 * len(expected)
    assert io.read_json(again.layout.config_file)["runtime"]["seeds"] == expected
    assert io.read_json(again.layout.compute_file)["total"]["runs"] == 2 * len(expected)
  from lth_tf.stability.experiment import read_config  # pylint: disable=import-outside-toplevel
  assert read_config(first.layout.directory).runtime.seeds == (0, 1, 2)


def test_same_seed_gives_the_same_masks(rewound, tmp_path):
  config, experiment, rows, starts = rewound
  other = dataclasses.replace(config, runtime=dataclasses.replace(config.runtime, root_dir=str(tmp_path)))
  other = dataclasses.replace(other, pruning=dataclasses.replace(other.pruning, levels=1))
  rerun = LotteryExperiment(other, log=lambda line: None)
  rerun.run()
  a = Mask.from_dict(io.read_arrays(BranchFiles(experiment.layout.branch_dir(0, 1, "ticket")).mask))
  b = Mask.from_dict(io.read_arrays(BranchFiles(rerun.layout.branch_dir(0, 1, "ticket")).mask))
  assert a == b


def test_one_shot_prunes_the_dense_network_to_each_density(tmp_path):
  config = _config(tmp_path, mode="one_shot", reinit=False, random_prune=False)
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  dense = io.read_arrays(BranchFiles(experiment.layout.branch_dir(0, 0, "ticket")).final_weights)
  for level, mask in enumerate(_masks(experiment.layout, 0)):
    for name in mask:
      rate = 0.2 if name.startswith("output") else 0.5
      assert int(mask[name].sum()) == remaining_after(mask[name].size, rate, level)
      kept, dropped = np.abs(dense[name][mask[name]]), np.abs(dense[name][~mask[name]])
      if dropped.size:
        assert kept.min() >= dropped.max()


def test_mask_that_does_not_fit_is_an_error_before_training(tmp_path):
  from lth_tf.errors import TicketError
  config = _config(tmp_path, levels=1, reinit=False, random_prune=False)
  layout = ExperimentLayout.for_config(config)
  bad = {"fc1/kernel": np.ones((3, 3), bool)}
  io.write_arrays(BranchFiles(layout.branch_dir(0, 1, "ticket")).mask, bad)
  with pytest.raises(TicketError, match="does not fit"):
    LotteryExperiment(config, log=lambda line: None)
  assert not os.path.exists(layout.config_file)
  assert not os.path.exists(layout.branch_dir(0, 0, "ticket"))


def test_a_diverging_branch_stops_the_run_with_its_error_recorded(tmp_path):
  from lth_tf.errors import TrainingDiverged
  config = _config(tmp_path, levels=0)
  config = dataclasses.replace(config, training=dataclasses.replace(
      config.training, optimizer="sgd", learning_rate=1e12))
  experiment = LotteryExperiment(config, log=lambda line: None)
  with pytest.raises(TrainingDiverged, match="level 0 ticket"):
    experiment.run()
  files = BranchFiles(experiment.layout.branch_dir(0, 0, "ticket"))
  assert "NaN or Inf" in io.read_json(files.error)["error"]
  assert not files.is_finished()
  summary = experiment.layout.summary_file
  assert not os.path.exists(summary) or io.read_json(summary) == []


def test_a_live_lock_refuses_and_a_stale_lock_is_taken_over(tmp_path):
  from lth_tf.errors import UserError
  config = _config(tmp_path, levels=0)
  config = dataclasses.replace(config, training=dataclasses.replace(config.training, iterations=20))
  experiment = LotteryExperiment(config, log=lambda line: None)
  lock = os.path.join(experiment.layout.directory, ".lock")
  os.makedirs(experiment.layout.directory)
  # A live lth process: it holds the lock (an flock on .lock) until it is killed.
  sleeper = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from lth_tf import io\n"
       "with io.DirectoryLock(sys.argv[1]):\n print('locked', flush=True); time.sleep(60)",
       experiment.layout.directory], stdout=subprocess.PIPE, text=True)
  try:
    assert sleeper.stdout.readline().strip() == "locked"
    with pytest.raises(UserError, match="in use by another lth process"):
      experiment.run()
    assert not os.path.exists(experiment.layout.config_file)
  finally:
    sleeper.kill()
    sleeper.wait()
  # The owner is gone: the lock is stale and the run proceeds.
  rows = experiment.run()
  assert len(rows) == 1 and not os.path.exists(lock)


def test_levels_past_the_last_one_that_prunes_are_refused_before_anything_is_written(tmp_path):
  """Past the level where the rates round to zero on every layer's survivors, a level would
  train the same mask again: refused in one line, nothing written; a huge count as fast,
  without enumerating its levels."""
  counts = {"fc1": 784 * 300, "fc2": 300 * 100, "output": 100 * 10}  # LeNet-300-100's kernels
  rates = {"fc1": 0.5, "fc2": 0.5, "output": 0.2}
  idle = 1
  while True:  # the first level at which no layer loses a weight, by hand
    after = {n: c - int(np.floor(rates[n] * c + 0.5)) for n, c in counts.items()}
    if after == counts:
      break
    counts, idle = after, idle + 1
  for levels in (idle, idle + 5, 10 ** 9):
    config = _config(tmp_path, levels=levels)
    with pytest.raises(UserError, match=f"--levels={levels}: level {idle} would prune no weight"
                                        f".*give --levels={idle - 1} or fewer"):
      LotteryExperiment(config, log=lambda line: None)
    assert not os.path.exists(ExperimentLayout.for_config(config).directory)
  LotteryExperiment(_config(tmp_path, levels=idle - 1), log=lambda line: None)  # the last one


def test_rewind_beyond_training_is_rejected(tmp_path):
  with pytest.raises(ConfigError, match="rewind_iteration"):
    LotteryExperiment(_config(tmp_path, rewind_iteration=60))


def _interrupted_copy(rewound, tmp_path):
  """A copy of the rewound experiment as if stopped after level 1: levels 2 and up are gone."""
  config, experiment, _, _ = rewound
  directory = tmp_path / experiment.layout.experiment_hash
  shutil.copytree(experiment.layout.directory, directory)
  for level in range(2, LEVELS + 1):
    shutil.rmtree(directory / "replicate_0" / f"level_{level}")
  (directory / "summary.json").unlink()
  return _with_runtime(config, root_dir=str(tmp_path)), directory


def _snapshot(directory):
  return {str(p): p.stat().st_mtime_ns for p in directory.glob("**/*")}


def _cut(path):
  path.write_bytes(path.read_bytes()[:max(1, path.stat().st_size // 2)])


@pytest.mark.parametrize("name,damage,retrain", [
    ("level_1/ticket/metrics.json", _cut, "level_1/ticket"),
    ("level_1/ticket/metrics.json", lambda p: p.write_text("{}"), "level_1/ticket"),
    ("level_1/reinit/metrics.json", lambda p: p.write_text("[]"), "level_1/reinit"),
    ("level_0/ticket/metrics.json", lambda p: p.write_text('{"level": 0}'), "level_0/ticket"),
    ("level_1/ticket/final_weights.npz", _cut, "level_1/ticket"),  # level 2 prunes these
    ("level_1/ticket/mask.npz", _cut, "level_1/ticket"),
    ("rewind_point.npz", _cut, "replicate_0"),
])
def test_a_damaged_finished_branch_is_one_line_before_training(rewound, tmp_path, name, damage,
                                                              retrain):
  config, directory = _interrupted_copy(rewound, tmp_path)
  damage(directory / "replicate_0" / name)
  before = _snapshot(directory)
  with pytest.raises(UserError) as error:
    LotteryExperiment(config, log=lambda line: None).run()
  message = str(error.value)
  assert os.path.basename(name) in message and "\n" not in message
  retrain = directory / retrain if retrain == "replicate_0" else directory / "replicate_0" / retrain
  assert f"delete {retrain} and rerun" in message
  assert _snapshot(directory) == before  # nothing trained, nothing written


def test_following_the_advice_for_a_damaged_branch_resumes(rewound, tmp_path):
  config, directory = _interrupted_copy(rewound, tmp_path)
  (directory / "replicate_0" / "level_1" / "reinit" / "metrics.json").write_text("{}")
  with pytest.raises(UserError, match="delete"):
    LotteryExperiment(config, log=lambda line: None)
  shutil.rmtree(directory / "replicate_0" / "level_1" / "reinit")
  LotteryExperiment(config, log=lambda line: None)  # the preflight passes: it would retrain


@pytest.mark.parametrize("text", ['{"training": {"iterati', "[]", '{"training": 3}'])
def test_a_damaged_config_json_is_one_line_before_training(rewound, tmp_path, text):
  config, directory = _interrupted_copy(rewound, tmp_path)
  (directory / "config.json").write_text(text)
  before = _snapshot(directory)
  with pytest.raises(UserError, match="config.json is not a readable experiment config") as error:
    LotteryExperiment(config, log=lambda line: None).run()
  assert "\n" not in str(error.value)
  assert _snapshot(directory) == before


_SCRIPT = """
import sys
from lth_tf.config import *
from lth_tf.lottery import LotteryExperiment
config = ExperimentConfig(
    dataset=DatasetConfig(name="synthetic", validation_size=500),
    training=TrainingConfig(iterations=80, eval_every=20, batch_size=50),
    pruning=PruningConfig(levels=2, fc_rate=0.5, output_rate=0.2, reinit=True, rewind_iteration=30),
    runtime=RuntimeConfig(root_dir=sys.argv[1], data_dir=sys.argv[1], progress=False))
LotteryExperiment(config, log=lambda line: print(line, flush=True)).run()
"""
_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _run_script(root, **env):
  return launcher.run([sys.executable, "-c", _SCRIPT, str(root)], env=dict(_ENV, **env),
                      capture_output=True, text=True)


_BRANCH_FILES = ("mask.npz", "start_weights.npz", "final_weights.npz", "curve.json", "curve.csv",
                 "metrics.json", "tensorboard")
_artifacts = artifacts.of_experiment


def _assert_documented_files(artifacts, levels=2, branches=("ticket", "reinit")):
  """Exactly the files the README's experiment layout names: none missing, none extra."""
  expected = {"config.json", "data.json", "engine.json", "model.json", "optimizer_policy.json",
              "summary.json",
              "compute.json", "replicate_0/rewind_point.npz"}
  for level in range(levels + 1):
    for branch in branches if level else ("ticket",):
      expected.update(f"replicate_0/level_{level}/{branch}/{name}" for name in _BRANCH_FILES)
  assert set(artifacts) == expected


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  root = tmp_path_factory.mktemp("whole")
  assert _run_script(root).returncode == 0
  artifacts = _artifacts(root)
  _assert_documented_files(artifacts)
  return artifacts


# Ten kill points, two per test: the first kills a fresh run, the second the run that resumes it
# (which must reach that point again: its count is of the resumed process's own events).
@pytest.mark.parametrize("first,second", [
    # while θk is being written; then mid-training of level 0
    ("write:rewind_point.npz@1", "train@3"),
    # while level 0's start weights are being written; then mid-training of a pruned level
    ("write:start_weights.npz@1", "train@9"),
    # while a level's mask is being written; then a branch's trained weights
    ("write:mask.npz@2", "write:final_weights.npz@2"),
    # while a checkpoint is being written; then a branch's final metrics
    ("write:checkpoint.npz@4", "write:metrics.json@3"),
    # while summary.json is being written; then the compute totals
    ("write:summary.json@2", "write:compute.json@2"),
])
def test_sigkill_at_any_moment_then_rerun_equals_an_uninterrupted_run(tmp_path, uninterrupted,
                                                                     first, second):
  for kill_at in (first, second):
    killed = _run_script(tmp_path, LTH_FAULT_KILL_AT=kill_at)
    assert killed.returncode == -9, (kill_at, killed.stderr)  # it really was killed there
    # Whatever is visible under a final name is complete.
    for path in tmp_path.glob("**/*.json"):
      if not path.name.startswith(io.TEMP_PREFIX):
        json.loads(path.read_text())
    for path in tmp_path.glob("**/*.npz"):
      if not path.name.startswith(io.TEMP_PREFIX):
        io.read_arrays(str(path))
  resumed = _run_script(tmp_path)
  assert resumed.returncode == 0, resumed.stderr
  resumed = _artifacts(tmp_path)
  _assert_documented_files(resumed)
  assert resumed.keys() == uninterrupted.keys()
  for name, value in uninterrupted.items():
    assert resumed[name] == value, name
  assert not list(tmp_path.glob("**/checkpoint.npz"))
  assert not list(tmp_path.glob(f"**/{io.TEMP_PREFIX}*"))
  assert not list(tmp_path.glob("**/.lock"))


def test_same_config_and_seed_give_bit_identical_results(tmp_path, uninterrupted):
  assert _run_script(tmp_path).returncode == 0
  assert _artifacts(tmp_path) == uninterrupted


def test_ticket_round_trip_and_tamper_checks(rewound, tmp_path):
  from lth_tf import models, pruning, tickets
  from lth_tf.errors import TicketError
  config, experiment, rows, starts = rewound
  path = tickets.save(experiment.layout.directory, 0, 2, str(tmp_path / "t"))
  ticket = tickets.read(path)
  saved_mask = Mask.from_dict(io.read_arrays(BranchFiles(experiment.layout.branch_dir(0, 2, "ticket")).mask))
  assert ticket.mask == saved_mask
  assert ticket.provenance["experiment_hash"] == experiment.layout.experiment_hash
  assert ticket.metrics["level"] == 2
  model = pruning.wrap_model(models.build(config.model, (28, 28, 1), 10, seed=7))
  tickets.apply(ticket, model)
  assert pruning.get_mask(model) == saved_mask
  for name, value in pruning.prunable_weights(model).items():
    np.testing.assert_array_equal(value, ticket.rewind_weights[name] * saved_mask[name])
  wrong = pruning.wrap_model(models.build(config.model, (32, 32, 3), 10, seed=7))
  with pytest.raises(TicketError, match="shape"):
    tickets.apply(ticket, wrong)
  arrays = tmp_path / "t" / "ticket.npz"
  blob = arrays.read_bytes()
  arrays.write_bytes(blob[:-10])
  with pytest.raises(TicketError, match="checksum"):
    tickets.read(path)
  arrays.write_bytes(blob)
  meta = json.loads((tmp_path / "t" / "ticket.json").read_text())
  np.savez(arrays, payload=np.array([{"x": 1}], dtype=object))
  meta["sha256"] = __import__("hashlib").sha256(arrays.read_bytes()).hexdigest()
  meta["metadata_sha256"] = tickets.format.metadata_digest(meta)  # the npz itself is refused
  (tmp_path / "t" / "ticket.json").write_text(json.dumps(meta))
  with pytest.raises(TicketError):
    tickets.read(path)


def test_tickets_load_returns_the_model_with_the_ticket_applied(rewound, tmp_path):
  from lth_tf import pruning, tickets
  config, experiment, rows, starts = rewound
  path = tickets.save(experiment.layout.directory, 0, 1, str(tmp_path / "t1"))
  ticket = tickets.read(path)
  model = tickets.load(path)
  assert pruning.get_mask(model) == ticket.mask
  trained = tickets.load(path, trained=True)
  final = io.read_arrays(BranchFiles(experiment.layout.branch_dir(0, 1, "ticket")).final_weights)
  for name, value in pruning.prunable_weights(trained).items():
    np.testing.assert_array_equal(value, final[name])


def _with_runtime(config, **runtime):
  return dataclasses.replace(config, runtime=dataclasses.replace(config.runtime, **runtime))


def test_a_directory_trained_by_replicate_worker_processes_resumes(tmp_path):
  """`--replicate_processes` retired: the config.json of a directory it trained still holds it,
  and the directory resumes (the flag's refusal is a command-line test)."""
  config = _with_runtime(_config(tmp_path, levels=1, random_prune=False), seeds=(0, 1))
  experiment = LotteryExperiment(config, log=lambda line: None)
  rows = experiment.run()
  recorded = io.read_json(experiment.layout.config_file)
  recorded["runtime"]["replicate_processes"] = 2
  io.write_json(experiment.layout.config_file, recorded)
  assert LotteryExperiment(config, log=lambda line: None).run() == rows


# ---- the data an experiment directory was trained on ----------------------------------------

def _data_config(root, name, levels=1):
  return ExperimentConfig(
      dataset=DatasetConfig(name=name, validation_size=100),
      training=TrainingConfig(iterations=10, eval_every=5, batch_size=50),
      pruning=PruningConfig(levels=levels, fc_rate=0.5),
      runtime=RuntimeConfig(root_dir=str(root / "runs"), data_dir=str(root), progress=False))


def _write_source(path, seed):
  from lth_tf.data import synthetic
  raw = synthetic.make((8, 8, 1), num_classes=4, train=400, test=100, seed=seed)
  np.savez(path, x_train=raw.x_train, y_train=raw.y_train, x_test=raw.x_test, y_test=raw.y_test)


def _stamps(directory):
  return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(directory.glob("**/*"))}


@pytest.mark.parametrize("source", ["npz", "installed", "registered"])
def test_resuming_on_other_data_is_refused_before_anything_is_written(tmp_path, monkeypatch,
                                                                      request, source):
  """Level 0 trained on one dataset, the data changed, the rerun must not train level 1 on it."""
  import pathlib
  from lth_tf import data as data_lib
  from lth_tf.data import synthetic
  from lth_tf.errors import UserError
  request.addfinalizer(data_lib.load.cache_clear)
  path = {"npz": tmp_path / "mine.npz", "installed": tmp_path / "fashion_mnist.npz",
          "registered": None}[source]
  name = {"npz": f"npz:{path}", "installed": "fashion_mnist", "registered": "synthetic"}[source]

  original = synthetic.make

  def change_data(seed):
    if path is not None:
      _write_source(path, seed)
    else:  # same name and config, other arrays: e.g. another version of the generator
      monkeypatch.setattr(synthetic, "make", lambda shape, **kw: original(shape, train=1000,
                                                                          seed=seed))
      data_lib.load.cache_clear()

  change_data(1)
  config = _data_config(tmp_path, name)
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  directory = pathlib.Path(experiment.layout.directory)
  # As if killed after level 0: level 1 is still to train.
  import shutil
  shutil.rmtree(directory / "replicate_0" / "level_1")
  before = _stamps(directory)

  change_data(2)
  with pytest.raises(UserError) as refused:
    LotteryExperiment(config, log=lambda line: None)
  message = str(refused.value)
  assert "\n" not in message and "other data" in message and name in message
  assert "--root_dir" in message and str(directory) in message
  assert _stamps(directory) == before  # nothing written, nothing trained

  # The data it started with: the run resumes and trains level 1.
  change_data(1)
  rows = LotteryExperiment(config, log=lambda line: None).run()
  assert [r["level"] for r in rows] == [0, 1]
  record = io.read_json(experiment.layout.data_file)
  assert record["sha256"] == experiment.data.digest and record["dataset"] == name
  assert (record["train"], record["validation"]) == (len(experiment.data.y_train), 100)
  # A directory from before data.json existed gains the record and is not refused.
  os.remove(experiment.layout.data_file)
  LotteryExperiment(config, log=lambda line: None).run()
  assert io.read_json(experiment.layout.data_file) == record


def test_the_same_data_rewritten_is_not_other_data(tmp_path):
  from lth_tf import data as data_lib
  config = _data_config(tmp_path, f"npz:{tmp_path / 'mine.npz'}", levels=0)
  _write_source(tmp_path / "mine.npz", 1)
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  _write_source(tmp_path / "mine.npz", 1)  # a new file (new mtime), the same arrays
  os.utime(tmp_path / "mine.npz", ns=(1, 1))
  data_lib.load.cache_clear()
  assert LotteryExperiment(config, log=lambda line: None).data.digest == experiment.data.digest


def _snapshot(directory):
  return {os.path.join(parent, name): (os.stat(os.path.join(parent, name)).st_mtime_ns,
                                       os.stat(os.path.join(parent, name)).st_size)
          for parent, _, files in os.walk(directory) for name in files}


@pytest.mark.parametrize("first, second", [
    ({"engine": "manual"}, {"fused_optimizer": True}),  # fused kernels on a plain start
    ({"fused_optimizer": True}, {"dense_shards": 2}),   # dense shards on a fused start
])
def test_resuming_with_another_engine_is_refused_before_anything_is_written(tmp_path, first,
                                                                            second):
  base = _config(tmp_path, levels=1, random_prune=False)
  config = base.replace(training=dataclasses.replace(base.training, iterations=40))
  engine = lambda **runtime: config.replace(runtime=dataclasses.replace(config.runtime, **runtime))
  # Interrupted in level 1: its branches are still to train.
  experiment = LotteryExperiment(engine(**first), log=lambda line: None)
  experiment.run()
  directory = experiment.layout.directory
  shutil.rmtree(os.path.join(directory, "replicate_0", "level_1"))
  recorded = json.load(open(os.path.join(directory, "engine.json")))
  assert recorded["fused_optimizer"] == bool(first.get("fused_optimizer"))
  before = _snapshot(directory)
  with pytest.raises(UserError, match="an experiment keeps one engine") as refused:
    LotteryExperiment(engine(**second), log=lambda line: None).run()
  assert "\n" not in str(refused.value) and "rerun with --strategy=default" in str(refused.value)
  assert _snapshot(directory) == before
  # The recorded engine continues it; a directory without a record takes the resuming engine.
  rows = LotteryExperiment(engine(**first), log=lambda line: None).run()
  assert [r["level"] for r in rows] == [0, 1, 1]
  os.remove(os.path.join(directory, "engine.json"))
  LotteryExperiment(engine(**second), log=lambda line: None).run()
  assert json.load(open(os.path.join(directory, "engine.json"))) == rundir.engine_record(
      engine(**second).runtime)


def test_a_directory_from_before_the_batched_engine_was_retired(tmp_path):
  """Its `config.json` and `engine.json` hold `batch_variants` and `variant_groups`: off, the
  directory resumes as before; on (it trained batched), it is refused with why, before anything
  is written."""
  base = _config(tmp_path, levels=1, random_prune=False)
  config = base.replace(training=dataclasses.replace(base.training, iterations=40),
                        runtime=dataclasses.replace(base.runtime, engine="manual"))
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  directory = experiment.layout.directory
  shutil.rmtree(os.path.join(directory, "replicate_0", "level_1"))
  config_file, engine_file = (os.path.join(directory, name)
                              for name in ("config.json", "engine.json"))
  old = json.load(open(config_file))
  old["runtime"].update(batch_variants=False, variant_groups=1)
  json.dump(old, open(config_file, "w"))
  json.dump(dict(json.load(open(engine_file)), batch_variants=False, variant_groups=1),
            open(engine_file, "w"))
  rows = LotteryExperiment(config, log=lambda line: None).run()
  assert [r["level"] for r in rows] == [0, 1, 1]
  shutil.rmtree(os.path.join(directory, "replicate_0", "level_1"))
  json.dump(dict(json.load(open(engine_file)), batch_variants=True, variant_groups=2),
            open(engine_file, "w"))
  before = _snapshot(directory)
  with pytest.raises(UserError, match="--batch_variants --variant_groups=2, which lth_tf has "
                                      "retired") as refused:
    LotteryExperiment(config, log=lambda line: None).run()
  assert "\n" not in str(refused.value) and "another --root_dir" in str(refused.value)
  assert _snapshot(directory) == before


def test_json_files_are_strict_and_non_finite_values_are_written_as_null(rewound, tmp_path):
  def strict(text):
    def refuse(constant):
      raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)

  config, experiment, rows, starts = rewound
  directory = experiment.layout.directory
  names = [os.path.join(parent, name) for parent, _, files in os.walk(directory)
           for name in files if name.endswith(".json")]
  assert os.path.join(directory, "summary.json") in names and len(names) > 10
  for name in names:
    with open(name) as handle:
      strict(handle.read())
  path = str(tmp_path / "values.json")
  io.write_json(path, {"loss": float("inf"), "rows": [float("nan"), 0.5, -float("inf")],
                       "n": np.float64("nan"), "ok": 1})
  with open(path) as handle:
    assert strict(handle.read()) == {"loss": None, "rows": [None, 0.5, None], "n": None, "ok": 1}


def test_more_levels_extend_a_finished_experiment_and_fewer_read_a_prefix(tmp_path):
  """`--levels=1`, then `--levels=2` in the same root: the one directory (its name, the hash of
  the first run, unchanged) gains level 2 without retraining levels 0 and 1, and ends equal to a
  run of two levels from scratch; `--levels=1` again trains nothing and returns levels 0 and 1,
  leaving the directory's summary of both levels whole."""
  config = _config(tmp_path / "runs", levels=1, reinit=True, random_prune=False)
  config = config.replace(training=TrainingConfig(iterations=20, eval_every=20, batch_size=50))
  two = config.replace(pruning=dataclasses.replace(config.pruning, levels=2))
  first = LotteryExperiment(config, log=lambda line: None)
  first.run()
  level_1 = BranchFiles(first.layout.branch_dir(0, 1, "ticket")).metrics
  before = os.stat(level_1).st_mtime_ns
  lines = []
  extended = LotteryExperiment(two, log=lines.append)
  assert extended.layout.directory == first.layout.directory
  assert first.layout.experiment_hash == config.experiment_hash() != two.experiment_hash()
  assert any("records 1 levels: extending it to 2" in line for line in lines), lines
  rows = extended.run()
  assert os.stat(level_1).st_mtime_ns == before  # not trained again
  assert sorted({row["level"] for row in rows}) == [0, 1, 2]
  assert io.read_json(first.layout.config_file)["pruning"]["levels"] == 2
  root = tmp_path / "runs"
  assert [name for name in os.listdir(root) if (root / name / "config.json").exists()] == [
      first.layout.experiment_hash]
  scratch = LotteryExperiment(two.replace(runtime=dataclasses.replace(
      two.runtime, root_dir=str(tmp_path / "scratch"))), log=lambda line: None)
  alone = scratch.run()
  key = lambda row: (row["replicate"], row["level"], row["branch"])  # noqa: E731
  for mine, theirs in zip(sorted(rows, key=key), sorted(alone, key=key)):
    assert {k: mine[k] for k in SUMMARY_KEYS} == {k: theirs[k] for k in SUMMARY_KEYS}
  assert _masks_at(first.layout, 2) == _masks_at(scratch.layout, 2)
  prefix = LotteryExperiment(config, log=lambda line: None)
  assert prefix.layout.directory == first.layout.directory
  assert sorted({row["level"] for row in prefix.run()}) == [0, 1]
  assert sorted({row["level"] for row in io.read_json(first.layout.summary_file)}) == [0, 1, 2]
  assert io.read_json(first.layout.config_file)["pruning"]["levels"] == 2
  # Another experiment (another rate) in the same root is never taken for this one.
  other = config.replace(pruning=dataclasses.replace(config.pruning, fc_rate=0.4, levels=2))
  assert LotteryExperiment(other, log=lambda line: None).layout.directory != first.layout.directory


def _masks_at(layout, levels):
  return [Mask.from_dict(io.read_arrays(BranchFiles(layout.branch_dir(0, level, "ticket")).mask))
          for level in range(levels + 1)]
