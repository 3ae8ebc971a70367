"""The lottery engine end to end on synthetic data: levels, rewinding, controls, resume."""
import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from lth_tf import io
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig,
                           TrainingConfig)
from lth_tf.errors import ConfigError
from lth_tf.lottery import BranchFiles, ExperimentLayout, LotteryExperiment
from lth_tf.lottery.runner import SUMMARY_KEYS
from lth_tf.pruning import Mask
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


@pytest.fixture(scope="module")
def rewound(tmp_path_factory):
  """An experiment with rewinding to k=20 and every control."""
  config = _config(tmp_path_factory.mktemp("rewind"), rewind_iteration=20)
  experiment = LotteryExperiment(config, log=lambda line: None)
  return config, experiment, experiment.run()


def test_summary_has_a_row_per_level_and_branch(rewound):
  config, experiment, rows = rewound
  assert [(r["level"], r["branch"]) for r in rows] == [(0, "ticket")] + [
      (level, branch) for level in range(1, LEVELS + 1)
      for branch in ("ticket", "reinit", "random_prune")]
  assert rows == io.read_json(experiment.layout.summary_file)
  for row in rows:
    assert set(SUMMARY_KEYS) <= set(row)
    assert 0 < row["weights_remaining"] <= 1
  assert os.path.exists(experiment.layout.config_file)


def test_density_per_level_and_masks_only_shrink(rewound):
  config, experiment, rows = rewound
  masks = _masks(experiment.layout, 0)
  for level, mask in enumerate(masks):
    for name, density in mask.layer_densities().items():
      rate = 0.2 if name.startswith("output") else 0.5
      assert density == pytest.approx((1 - rate) ** level, abs=1e-3)
  for before, after in zip(masks, masks[1:]):
    assert after.is_subset_of(before)


def test_a_level_starts_from_rewind_weights_times_mask(rewound):
  config, experiment, rows = rewound
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


def test_the_first_step_after_rewinding_uses_the_schedule_at_k(rewound):
  config, experiment, rows = rewound
  curve = io.read_json(BranchFiles(experiment.layout.branch_dir(0, 1, "ticket")).curve_json)
  assert curve[0]["iteration"] == config.pruning.rewind_iteration
  assert curve[0]["learning_rate"] == pytest.approx(
      float(schedule_from_config(config.training)(config.pruning.rewind_iteration)))


def test_controls(rewound):
  config, experiment, rows = rewound
  layout = experiment.layout
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


def test_pruned_weights_are_exactly_zero_after_training(rewound):
  config, experiment, rows = rewound
  for level in range(1, LEVELS + 1):
    for branch in ("ticket", "reinit", "random_prune"):
      files = BranchFiles(experiment.layout.branch_dir(0, level, branch))
      mask = Mask.from_dict(io.read_arrays(files.mask))
      final = io.read_arrays(files.final_weights)
      for name in mask:
        assert np.all(final[name][~mask[name]] == 0.0)


def test_rerunning_skips_finished_work(rewound):
  config, experiment, rows = rewound
  metrics = BranchFiles(experiment.layout.branch_dir(0, LEVELS, "ticket")).metrics
  stamp = os.path.getmtime(metrics)
  again = LotteryExperiment(config, log=lambda line: None).run()
  assert again == rows
  assert os.path.getmtime(metrics) == stamp


def test_same_seed_gives_the_same_masks(rewound, tmp_path):
  config, experiment, rows = rewound
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


def test_rewind_beyond_training_is_rejected(tmp_path):
  with pytest.raises(ConfigError, match="rewind_iteration"):
    LotteryExperiment(_config(tmp_path, rewind_iteration=60))


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
  return subprocess.run([sys.executable, "-c", _SCRIPT, str(root)], env=dict(_ENV, **env),
                        capture_output=True, text=True)


# Fields that differ between two runs of the same experiment, and why:
# - wall_time_s (a branch's metrics.json, and its sums in compute.json): time, not a result;
# - runtime.root_dir, runtime.data_dir (config.json): the directories the test chose;
# - a TensorBoard event file's name and event wall times: the clock, host and pid (its
#   scalars are compared).
_VARIABLE = {"metrics.json": (("wall_time_s",),),
             "compute.json": (("total", "wall_time_s"),) + tuple(
                 ("by_branch", b, "wall_time_s") for b in ("ticket", "reinit", "random_prune")),
             "config.json": (("runtime", "root_dir"), ("runtime", "data_dir"))}
_BRANCH_FILES = ("mask.npz", "start_weights.npz", "final_weights.npz", "curve.json", "curve.csv",
                 "metrics.json", "tensorboard")


def _without(data, paths):
  for path in paths:
    parent = data
    for key in path[:-1]:
      parent = parent.get(key, {})
    parent.pop(path[-1], None)
  return data


def _tensorboard_scalars(directory):
  from lth_tf.compat import tf
  (events,) = os.listdir(directory)  # one event file
  out = []
  for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, events)):
    for value in event.summary.value:
      out.append((event.step, value.tag, tf.make_ndarray(value.tensor).tobytes()))
  return out


def _artifacts(root):
  """Every file of an experiment as a comparable value: arrays bit for bit, JSON whole but for
  `_VARIABLE`, text exactly, TensorBoard scalars; the set of files is part of the value."""
  (experiment,) = [p for p in root.iterdir() if p.is_dir()]
  out = {}
  for path in sorted(experiment.rglob("*")):
    name = str(path.relative_to(experiment))
    if path.parent.name == "tensorboard":
      continue
    if path.name == "tensorboard":
      out[name] = _tensorboard_scalars(path)
    elif path.suffix == ".npz":
      out[name] = {k: (v.dtype.str, v.shape, v.tobytes())
                   for k, v in io.read_arrays(str(path)).items()}
    elif path.suffix == ".json":
      out[name] = _without(json.loads(path.read_text()), _VARIABLE.get(path.name, ()))
    elif path.is_file():
      out[name] = path.read_bytes()
  return out


def _assert_documented_files(artifacts, levels=2, branches=("ticket", "reinit")):
  """Exactly the files the README's experiment layout names: none missing, none extra."""
  expected = {"config.json", "summary.json", "compute.json", "replicate_0/rewind_point.npz"}
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


@pytest.mark.parametrize("kill_at", [
    "train@3",                      # mid-training of level 0, before θk is captured
    "train@9",                      # mid-training of a pruned level
    "write:rewind_point.npz@1",     # while θk is being written
    "write:checkpoint.npz@4",       # while a checkpoint is being written
    "write:mask.npz@2",             # while a level's mask is being written
    "write:summary.json@2",         # while summary.json is being written
    "write:metrics.json@3",         # while a branch's final metrics are being written
    "write:start_weights.npz@1",    # while level 0's start weights are being written
    "write:final_weights.npz@2",    # while a branch's trained weights are being written
    "write:compute.json@2",         # while the compute totals are being written
])
def test_sigkill_at_any_moment_then_rerun_equals_an_uninterrupted_run(tmp_path, uninterrupted,
                                                                     kill_at):
  killed = _run_script(tmp_path, LTH_FAULT_KILL_AT=kill_at)
  assert killed.returncode == -9, killed.stderr  # it really was killed
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
  config, experiment, rows = rewound
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
  (tmp_path / "t" / "ticket.json").write_text(json.dumps(meta))
  with pytest.raises(TicketError):
    tickets.read(path)


def test_tickets_load_returns_the_model_with_the_ticket_applied(rewound, tmp_path):
  from lth_tf import pruning, tickets
  config, experiment, rows = rewound
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


def test_replicates_in_worker_processes_equal_one_process(tmp_path):
  config = _with_runtime(_config(tmp_path / "one", levels=1, random_prune=False), seeds=(0, 1))
  one = LotteryExperiment(config, log=lambda line: None).run()
  parallel = _with_runtime(config, root_dir=str(tmp_path / "two"), replicate_processes=2)
  experiment = LotteryExperiment(parallel, log=lambda line: None)
  rows = experiment.run()
  assert experiment.layout.experiment_hash == LotteryExperiment(config).layout.experiment_hash
  assert [(r["replicate"], r["level"], r["branch"]) for r in rows] == [
      (seed, level, branch) for seed in (0, 1)
      for level, branch in ((0, "ticket"), (1, "ticket"), (1, "reinit"))]
  assert io.read_json(experiment.layout.summary_file) == rows
  for got, expected in zip(rows, one):
    assert got["weights_remaining"] == expected["weights_remaining"]
    assert got["min_validation_loss"] == pytest.approx(expected["min_validation_loss"], rel=1e-4)
    assert got["final_test_accuracy"] == pytest.approx(expected["final_test_accuracy"], abs=0.005)
  for seed in (0, 1):  # the same masks: pruning read the same trained weights
    for got, expected in zip(_masks_of(experiment.layout, seed),
                             _masks_of(LotteryExperiment(config).layout, seed)):
      for name in expected:
        assert np.array_equal(got[name], expected[name])
  assert LotteryExperiment(parallel, log=lambda line: None).run() == rows  # all finished: resumes


_WORKERS_SCRIPT = _SCRIPT.replace("levels=2", "levels=1").replace("reinit=True", "reinit=False") \
    .replace("progress=False", "progress=False, seeds=(0, 1), replicate_processes=2")


def _children(pid):
  """Live (not zombie) child processes of `pid`, from /proc."""
  out = []
  for entry in os.listdir("/proc"):
    try:
      with open(f"/proc/{entry}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
      continue
    if int(fields[1]) == pid and fields[0] != "Z":
      out.append(int(entry))
  return out


def _alive(pid):
  try:
    with open(f"/proc/{pid}/stat") as handle:
      return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False


def _holds(pid, path):
  try:
    return any(os.readlink(f"/proc/{pid}/fd/{fd}") == path for fd in os.listdir(f"/proc/{pid}/fd"))
  except OSError:
    return False


def test_replicate_workers_die_with_a_killed_parent_and_the_rerun_equals_an_uninterrupted_run(
    tmp_path):
  whole = tmp_path / "whole"
  assert subprocess.run([sys.executable, "-c", _WORKERS_SCRIPT, str(whole)], env=_ENV,
                        capture_output=True).returncode == 0
  root = tmp_path / "killed"
  parent = subprocess.Popen([sys.executable, "-c", _WORKERS_SCRIPT, str(root)], env=_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 120
    while not list(root.glob("*/replicate_*/level_0/ticket/mask.npz")):  # workers train
      assert parent.poll() is None and time.time() < deadline
      time.sleep(0.05)
    workers = _children(parent.pid)
    assert len(workers) == 2
    (lock,) = [str(p) for p in root.glob("*/.lock")]
    assert all(_holds(pid, lock) for pid in workers)  # the experiment lock, with the parent
  finally:
    parent.kill()
    parent.wait()
  deadline = time.time() + 3
  while any(_alive(pid) for pid in workers) and time.time() < deadline:
    time.sleep(0.05)
  assert not any(_alive(pid) for pid in workers)
  rerun = subprocess.run([sys.executable, "-c", _WORKERS_SCRIPT, str(root)], env=_ENV,
                         capture_output=True, text=True)
  assert rerun.returncode == 0, rerun.stderr
  assert _artifacts(root) == _artifacts(whole)


def _masks_of(layout, seed):
  return [Mask.from_dict(io.read_arrays(BranchFiles(layout.branch_dir(seed, 1, b)).mask))
          for b in ("ticket", "reinit")]


def test_a_worker_process_that_diverges_stops_the_run_with_its_message(tmp_path):
  from lth_tf.errors import TrainingDiverged
  config = _with_runtime(_config(tmp_path, levels=0), seeds=(0, 1), replicate_processes=2)
  config = dataclasses.replace(config, training=dataclasses.replace(
      config.training, optimizer="sgd", learning_rate=1e12))
  with pytest.raises(TrainingDiverged, match=r"replicate \d level 0 ticket: .*NaN or Inf"):
    LotteryExperiment(config, log=lambda line: None).run()


def test_replicate_processes_need_a_local_strategy():
  from lth_tf.config import validate
  with pytest.raises(ConfigError, match="replicate_processes must be >= 1"):
    validate(_with_runtime(_config("runs"), replicate_processes=0))
  with pytest.raises(ConfigError, match="cannot be combined with --strategy=mirrored"):
    validate(_with_runtime(_config("runs"), replicate_processes=2, strategy="mirrored"))
