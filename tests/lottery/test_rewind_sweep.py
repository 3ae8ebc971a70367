"""A rewind sweep (`lth find --rewind_iteration=K1,K2,...`): one ordinary experiment per k, with
the hash of that k alone, level 0 trained once and copied, θk of every k captured in that one
dense training exactly as a run of that k alone captures it; refusals before training; resume;
the report's figures against k."""
import csv
import os

import numpy as np
import pytest
from absl import flags as absl_flags

from lth_tf import flags as lth_flags
from lth_tf import io
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig, TrainingConfig)
from lth_tf.config_codec import with_rewind_iteration
from lth_tf.errors import ConfigError
from lth_tf.lottery import LotteryExperiment
from lth_tf.lottery.branch_run import BranchRun
from lth_tf.lottery.sweep import LEVEL_0_FILES, RewindSweep
from lth_tf.report import plots, report
from lth_tf.rundir import BranchFiles, ExperimentLayout, states
from lth_tf.rundir import sweep as sweep_record
from lth_tf.rundir import stability as stability_record

# 10 and 30 fall between evaluations (every 20): θk ends a graph chunk of its own there.
KS = (0, 10, 30)
ITERATIONS = 40


def _config(root, **pruning):
  values = dict(levels=1, fc_rate=0.5, output_rate=0.2)
  values.update(pruning)
  return ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=ITERATIONS, eval_every=20, batch_size=50),
      pruning=PruningConfig(**values),
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False,
                            engine="manual"))


class _Trainings:
  """Records every branch training that really trains (its metrics did not exist yet)."""

  def __init__(self):
    self.trained = []

  def __enter__(self):
    run, recorder = BranchRun.run, self

    def recording_run(runner, replicate, seed, level, branch, plan, *args, **kwargs):
      files = kwargs.get("files") or runner.files(seed, level, branch)
      if not files.is_finished():
        recorder.trained.append((runner.directory.layout.experiment_hash, seed, level, branch))
      return run(runner, replicate, seed, level, branch, plan, *args, **kwargs)

    self._saved = run
    BranchRun.run = recording_run
    return self

  def __exit__(self, *exc):
    BranchRun.run = self._saved


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
  """The sweep over KS, trained once, and what it trained."""
  config = _config(tmp_path_factory.mktemp("sweep"))
  sweep = RewindSweep(config, (30, 0, 10), log=lambda line: None)  # given unsorted
  with _Trainings() as trainings:
    rows = sweep.run()
  return config, sweep, rows, trainings.trained


@pytest.fixture(scope="module")
def alone(swept, tmp_path_factory):
  """The last k run alone, in a root of its own."""
  config = _config(tmp_path_factory.mktemp("alone"))
  experiment = LotteryExperiment(with_rewind_iteration(config, KS[-1]), log=lambda line: None)
  return experiment, experiment.run()


def _arrays_equal(a, b):
  assert sorted(a) == sorted(b)
  for name in a:
    assert np.array_equal(a[name], b[name]), name


# ---- what a sweep is ------------------------------------------------------------------------

def test_each_k_is_the_experiment_of_that_k_alone(swept):
  config, sweep, rows, _ = swept
  assert sweep.ks == KS
  for k in KS:
    single = with_rewind_iteration(config, k)
    layout = sweep.experiments[k].layout
    assert layout == ExperimentLayout.for_config(single)  # same hash, same place
    recorded = io.read_json(layout.config_file)
    assert recorded["experiment_hash"] == single.experiment_hash()
    assert recorded["pruning"]["rewind_iteration"] == k
  assert len({sweep.experiments[k].layout.experiment_hash for k in KS}) == len(KS)
  # The record lists them, and reads back as their layouts.
  assert sweep_record.read(sweep.layout.directory) == [
      (k, sweep.experiments[k].layout) for k in KS]


def test_a_single_k_list_flag_is_the_integer_flag(tmp_path):
  lth_flags.define_flags()
  try:
    absl_flags.FLAGS.unparse_flags()
    absl_flags.FLAGS(["lth", "--rewind_iteration=500", "--iterations=1000"])
    config, ks = lth_flags.sweep_from_flags()
    assert ks == (500,) and config == lth_flags.config_from_flags()
    assert config.pruning.rewind_iteration == 500
    assert config.experiment_hash() == ExperimentConfig(
        training=TrainingConfig(iterations=1000),
        pruning=PruningConfig(rewind_iteration=500)).experiment_hash()
    absl_flags.FLAGS.unparse_flags()
    absl_flags.FLAGS(["lth", "--rewind_iteration=0,100,500"])
    config, ks = lth_flags.sweep_from_flags()
    assert ks == (0, 100, 500) and config.pruning.rewind_iteration == 0
    assert "--rewind_iteration=100\n" in lth_flags.flags_text(100)
    with pytest.raises(ConfigError, match="takes one integer here; got 0,100,500"):
      lth_flags.config_from_flags()  # every other command takes one k
    absl_flags.FLAGS.unparse_flags()
    absl_flags.FLAGS(["lth", "--rewind_iteration=0,1.5"])
    with pytest.raises(ConfigError, match="comma-separated list of integers; got '1.5'"):
      lth_flags.sweep_from_flags()
  finally:
    absl_flags.FLAGS.unparse_flags()


# ---- level 0 once, θk exact ---------------------------------------------------------------

def test_level_0_is_trained_once_and_copied_byte_for_byte(swept):
  config, sweep, rows, trained = swept
  first = sweep.experiments[KS[0]].layout
  assert [t for t in trained if t[2] == 0] == [(first.experiment_hash, 0, 0, "ticket")]
  # Every k trains its own pruned level.
  assert sorted(t[0] for t in trained if t[2] == 1) == sorted(
      sweep.experiments[k].layout.experiment_hash for k in KS)
  origin = BranchFiles(first.branch_dir(0, 0, "ticket"))
  for k in KS[1:]:
    layout = sweep.experiments[k].layout
    files = BranchFiles(layout.branch_dir(0, 0, "ticket"))
    for name in LEVEL_0_FILES:
      with open(getattr(origin, name), "rb") as a, open(getattr(files, name), "rb") as b:
        assert a.read() == b.read(), name
      assert not os.path.islink(getattr(files, name))
    assert sorted(os.listdir(files.tensorboard)) == sorted(os.listdir(origin.tensorboard))
    metrics, original = io.read_json(files.metrics), io.read_json(origin.metrics)
    assert metrics["experiment_hash"] == layout.experiment_hash  # names its own experiment
    assert dict(metrics, experiment_hash=None) == dict(original, experiment_hash=None)
    assert not os.path.exists(files.checkpoint)
    # Its summary reads like a run of k alone: level 0 as the first k's, level 1 its own.
    assert rows[k][0] == rows[KS[0]][0]


def test_every_theta_k_is_captured_at_its_own_k(swept):
  config, sweep, rows, _ = swept
  weights = []
  for k in KS:
    rewind = states.read(io, sweep.experiments[k].layout.rewind_file(0))
    assert int(rewind.optimizer["optimizer/0000"]) == k  # the optimizer's step counter
    weights.append(rewind.weights["fc1/kernel"])
  for a, b in zip(weights, weights[1:]):
    assert not np.array_equal(a, b)


def test_the_shared_theta_k_is_exactly_that_of_a_run_of_k_alone(swept, alone):
  config, sweep, rows, _ = swept
  experiment, _ = alone
  k = KS[-1]
  _arrays_equal(io.read_arrays(sweep.experiments[k].layout.rewind_file(0)),
                io.read_arrays(experiment.layout.rewind_file(0)))


def test_a_sweeps_k_equals_the_run_of_k_alone(swept, alone):
  config, sweep, rows, _ = swept
  experiment, alone_rows = alone
  k = KS[-1]
  layout = sweep.experiments[k].layout
  assert rows[k] == alone_rows
  for level in (0, 1):
    ours = BranchFiles(layout.branch_dir(0, level, "ticket"))
    theirs = BranchFiles(experiment.layout.branch_dir(0, level, "ticket"))
    for name in ("mask", "start_weights", "final_weights"):
      _arrays_equal(io.read_arrays(getattr(ours, name)), io.read_arrays(getattr(theirs, name)))
    mine, other = io.read_json(ours.metrics), io.read_json(theirs.metrics)
    for key in ("wall_time_s", "experiment_hash"):
      mine.pop(key, None), other.pop(key, None)
    assert mine == other
    # The curves agree exactly but for the mean training loss of level 0 where another k of
    # the sweep ended a graph chunk inside an evaluation interval (a float32 sum per chunk).
    ours_curve, theirs_curve = io.read_json(ours.curve_json), io.read_json(theirs.curve_json)
    assert len(ours_curve) == len(theirs_curve)
    for a, b in zip(ours_curve, theirs_curve):
      assert (a["train_loss"] is None) == (b["train_loss"] is None)
      if a["train_loss"] is not None:
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
      assert dict(a, train_loss=0) == dict(b, train_loss=0)


def test_a_rerun_resumes_without_training_and_recopies_a_lost_copy(swept):
  config, sweep, rows, _ = swept
  copied = BranchFiles(sweep.experiments[KS[1]].layout.branch_dir(0, 0, "ticket"))
  with open(copied.final_weights, "rb") as handle:
    before = handle.read()
  os.remove(copied.metrics)  # as if the copy had been killed before its last file
  again = RewindSweep(config, KS, log=lambda line: None)
  with _Trainings() as trainings:
    assert again.run() == rows
  assert trainings.trained == []
  with open(copied.final_weights, "rb") as handle:
    assert handle.read() == before
  assert io.read_json(copied.metrics)["experiment_hash"] == again.layouts[KS[1]].experiment_hash


def test_a_k_added_later_is_captured_by_a_new_dense_training(swept, tmp_path):
  """A k whose level 0 is finished in every other directory still needs its θk: the first
  unfinished k trains level 0 again and captures it (the finished k's keep theirs)."""
  config, sweep, rows, _ = swept
  plan = RewindSweep(config, (0, 20), log=lambda line: None).plan(0)
  assert (plan.host, plan.captures, plan.copies) == (20, (), ())
  assert RewindSweep(config, KS, log=lambda line: None).plan(0).host is None


# ---- refused before training ---------------------------------------------------------------

@pytest.mark.parametrize("ks, pruning, message", [
    ((10, 10), {}, "names a k twice"),
    ((-1, 10), {}, r"rewind_iteration must be in \[0, iterations=40\); got -1"),
    ((0, ITERATIONS), {}, r"rewind_iteration must be in \[0, iterations=40\); got 40"),
    ((0, 1.5), {}, "rewind_iteration values must be integers; got 1.5"),
    ((), {}, "needs at least one rewind_iteration"),
    ((0, 10), {"early_bird_threshold": 0.1}, "--early_bird_threshold ends the dense training"),
    ((0, 10), {"ticket_sha256": "abc"}, "--ticket starts level 0"),
    ((0, 10), {"levels": 0}, "needs --levels >= 1"),
])
def test_a_bad_sweep_is_refused_before_anything_is_written(tmp_path, ks, pruning, message):
  with _Trainings() as trainings, pytest.raises(ConfigError, match=message):
    RewindSweep(_config(tmp_path / "runs", **pruning), ks, log=lambda line: None).run()
  assert trainings.trained == [] and not os.path.exists(tmp_path / "runs")


# ---- the report ----------------------------------------------------------------------------

def _pair(k, level, instability, replicate=0):
  return {"replicate": replicate, "level": level, "branch": "ticket", "rewind_iteration": k,
          "start_iteration": k, "weights_remaining": 0.5 ** level, "data_seeds": [1, 2],
          "instability": instability, "train_instability": instability / 2,
          "endpoint_test_error": [0.1, 0.1], "batch_norm": False, "path": [
              {"alpha": a, "test_loss": 1.0, "test_error": 0.1, "train_loss": 1.0,
               "train_error": 0.1} for a in (0.0, 0.5, 1.0)], "settings": {}}


def test_the_report_draws_a_curve_per_k_and_instability_against_k(swept, tmp_path, monkeypatch):
  config, sweep, rows, _ = swept
  drawn = {}
  for name in ("metric_vs_weights", "metric_vs_rewind"):
    real = getattr(plots, name)
    monkeypatch.setattr(plots, name, lambda *args, real=real, name=name, **kwargs: (
        drawn.setdefault(name, []).append((args, kwargs)), real(*args, **kwargs))[1])
  written = report.build([sweep.layout.directory], str(tmp_path / "no_stability"))
  assert os.path.getsize(written["rewind_sweep_accuracy.png"]) > 0
  assert "instability_vs_k.png" not in written
  (series, *_), kwargs = drawn["metric_vs_weights"][-1]
  assert [label for label, _ in series] == [f"k={k}" for k in KS] and kwargs["shared_dense"]
  for (label, curve), k in zip(series, KS):
    assert curve == [r for r in rows[k] if r["branch"] == "ticket"]
  text = open(written["report.md"]).read()
  assert "No stability records at any level" in text
  # `lth stability` records at level 1 for two of the k's (two replicates for one of them).
  measured = {0: [0.30], KS[-1]: [0.02, 0.04]}
  for k, values in measured.items():
    stability_record.write(sweep.experiments[k].layout.stability_file, "h", [
        _pair(k, 1, value, replicate) for replicate, value in enumerate(values)])
  written = report.build([sweep.layout.directory], str(tmp_path / "out"), instability_level=1)
  assert os.path.getsize(written["instability_vs_k.png"]) > 0
  ((series, ylabel, _), _), = drawn["metric_vs_rewind"]
  ((label, points),) = series
  assert label.startswith("level 1 ticket")
  assert points == [(0, 0.30, 0.0), (KS[-1], pytest.approx(0.03), pytest.approx(0.01))]
  with open(written["rewind_sweep.csv"]) as handle:
    table = list(csv.DictReader(handle))
  assert [(int(r["rewind_iteration"]), int(r["level"])) for r in table] == [
      (k, level) for k in KS for level in (0, 1)]
  by_k = {(int(r["rewind_iteration"]), int(r["level"])): r for r in table}
  assert float(by_k[KS[-1], 1]["instability_mean"]) == pytest.approx(0.03)
  assert by_k[KS[1], 1]["instability_mean"] == ""
  text = open(written["report.md"]).read()
  assert "## Rewind sweep" in text and "![instability_vs_k.png]" in text
  # A level without records draws no instability figure.
  written = report.build([sweep.layout.directory], str(tmp_path / "other"), instability_level=0)
  assert "instability_vs_k.png" not in written


def test_a_dense_training_interrupted_past_a_k_to_capture_restarts(tmp_path):
  """A host's level 0 resumes from its checkpoint only if no θk still to capture lies before
  it (a k added to the sweep since): otherwise that θk could not be captured."""
  lines = []
  sweep = RewindSweep(_config(tmp_path), (0, 10), log=lines.append)
  plan = sweep.plan(0)
  assert (plan.host, plan.captures, plan.copies, plan.source) == (0, (10,), (10,), 0)
  checkpoint = BranchFiles(sweep.layouts[0].branch_dir(0, 0, "ticket")).checkpoint
  for at, kept in ((10, True), (20, False)):
    states.write(io, checkpoint, states.TrainingState({}, {}, at, []))
    sweep._restart_if_past(0, plan)  # pylint: disable=protected-access
    assert os.path.exists(checkpoint) == kept
  assert lines[-1].startswith("replicate 0: level 0 of k=0 was interrupted at iteration 20")


def test_each_replicate_plans_its_own_level_0(tmp_path):
  """Per replicate: the first k with an unfinished level 0 trains it and captures every missing
  θk; the other unfinished k's copy it (or copy a finished one when nothing is missing)."""
  sweep = RewindSweep(_config(tmp_path), KS, log=lambda line: None)

  def touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()

  # Replicate 0: k=0 finished; k=10 has its θk (an interrupted run of its own); k=30 nothing.
  touch(BranchFiles(sweep.layouts[0].branch_dir(0, 0, "ticket")).metrics)
  touch(sweep.layouts[0].rewind_file(0))
  touch(sweep.layouts[10].rewind_file(0))
  # Replicate 1: every θk, k=30's level 0 finished.
  touch(BranchFiles(sweep.layouts[30].branch_dir(1, 0, "ticket")).metrics)
  for k in KS:
    touch(sweep.layouts[k].rewind_file(1))
  first, second = sweep.plan(0), sweep.plan(1)
  assert (first.host, first.captures, first.copies, first.source) == (10, (30,), (30,), 10)
  assert (second.host, second.captures, second.copies, second.source) == (None, (), (0, 10), 30)


def test_the_k_s_are_one_graph_whose_levels_wait_only_for_the_copy_of_level_0(tmp_path,
                                                                              monkeypatch):
  """The executor gets every k's tasks at once: a k that copies level 0 waits for the host's
  level 0 and for nothing else of another k, so an executor that runs tasks at the same time
  trains the k's at the same time."""
  from lth_tf.executors import EXECUTORS
  graphs = []
  local = EXECUTORS.get("local")

  def recording(work, graph):
    graphs.append(list(graph))
    local(work, graph)

  monkeypatch.setitem(EXECUTORS._entries, "local", recording)  # pylint: disable=protected-access
  RewindSweep(_config(tmp_path, levels=2), (0, 20), log=lambda line: None).run()
  (graph,) = graphs
  deps = {str(task): {str(dep) for dep in waits} for task, waits in graph}
  assert deps["k=20: replicate 0 level 0"] == {"k=0: replicate 0 level 0"}
  assert deps["k=20: replicate 0 level 1 mask"] == {"k=20: replicate 0 level 0"}
  assert deps["k=20: replicate 0 level 2 mask"] == {"k=20: replicate 0 level 0",
                                                    "k=20: replicate 0 level 1 ticket"}
  assert deps["k=0: replicate 0 level 1 ticket"] == {"k=0: replicate 0 level 0",
                                                     "k=0: replicate 0 level 1 mask"}
  assert len(graph) == 2 * (1 + 2 * 2)
