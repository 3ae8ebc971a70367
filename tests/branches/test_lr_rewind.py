"""Learning-rate rewinding through `lth find --branches=lr_rewind`: each level's branch starts from
the previous level's trained ticket times the new mask, at iteration k, and its first step uses
the schedule's rate at k; it trains as many iterations as weight rewinding; it is reported."""
import numpy as np
import pytest

from lth_tf import branches, io
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig,
                           TrainingConfig)
from lth_tf.lottery import LotteryExperiment
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.pruning import Mask, mask_pairs
from lth_tf.rundir import BranchFiles
from lth_tf.training.loop import batch_indices
from lth_tf.training.schedules import from_config as schedule_from_config

K = 20
LEVELS = 2


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
  # Warm-up makes the rate a function of the iteration; plain SGD makes each level's one step
  # from k the update -rate * gradient, so the rate it used can be read off its weights.
  root = tmp_path_factory.mktemp("lr_rewind")
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=K + 1, eval_every=K, batch_size=50, optimizer="sgd",
                              momentum=0.0, learning_rate=0.5, warmup_iterations=100),
      pruning=PruningConfig(levels=LEVELS, fc_rate=0.5, output_rate=0.2, rewind_iteration=K,
                            branches=("lr_rewind",)),
      # The plain engine: the test reads the rate off one step with the model's own gradients.
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False,
                            engine="manual"))
  experiment = LotteryExperiment(config, log=lambda line: None)
  rows = experiment.run()
  return experiment, rows


def _files(experiment, level, branch):
  return BranchFiles(experiment.layout.branch_dir(0, level, branch))


def test_it_starts_from_the_previous_levels_trained_weights_times_the_new_mask(experiment):
  experiment, rows = experiment
  assert [(r["level"], r["branch"]) for r in rows] == [(0, "ticket")] + [
      (level, b) for level in range(1, LEVELS + 1) for b in ("ticket", "lr_rewind")]
  rewind = io.read_arrays(experiment.layout.rewind_file(0))
  for level in range(1, LEVELS + 1):
    files = _files(experiment, level, "lr_rewind")
    mask = Mask.from_dict(io.read_arrays(files.mask))
    assert mask == Mask.from_dict(io.read_arrays(_files(experiment, level, "ticket").mask))
    source = io.read_arrays(_files(experiment, level - 1, "ticket").final_weights)
    start = io.read_arrays(files.start_weights)
    assert set(start) == set(source)
    for name, value in start.items():
      expected = source[name] * mask[name] if name in mask else source[name]
      np.testing.assert_array_equal(value, expected)
    # Not θk: the weights are the trained ones, and pruning removed some of them.
    assert not np.array_equal(start["fc1/kernel"], rewind["w/fc1/kernel"] * mask["fc1/kernel"])
    assert np.any(source["fc1/kernel"][~mask["fc1/kernel"]] != 0)


def test_it_starts_at_k_with_the_learning_rate_at_k(experiment):
  experiment, rows = experiment
  config = experiment.config
  schedule = schedule_from_config(config.training)
  rate_at_k = float(schedule(K))
  assert rate_at_k > 10 * float(schedule(0))  # the rate at 0 would be told apart
  replicate = ReplicateModel(config, experiment.data, 0, experiment.strategy)
  idx = batch_indices(len(experiment.data.y_train), config.training.batch_size, 0, K, K + 1)
  kernels = {name: weight for name, weight, _ in mask_pairs(replicate.model)}
  (index,) = [i for i, v in enumerate(replicate.model.trainable_variables)
              if v is kernels["fc1/kernel"]]
  for level in range(1, LEVELS + 1):
    files = _files(experiment, level, "lr_rewind")
    curve = io.read_json(files.curve_json)
    assert curve[0]["iteration"] == K
    assert curve[0]["learning_rate"] == pytest.approx(rate_at_k)
    # The one step from k, on the batch of iteration k: the rate it really used.
    start = io.read_arrays(files.start_weights)
    replicate.load_state(start, Mask.from_dict(io.read_arrays(files.mask)), None)
    _, grads = replicate.trainer.gradients(experiment.data.x_train[idx],
                                           experiment.data.y_train[idx])
    gradient = grads[index].numpy()
    step = io.read_arrays(files.final_weights)["fc1/kernel"] - start["fc1/kernel"]
    used = -np.sum(step * gradient) / np.sum(gradient * gradient)
    assert used == pytest.approx(rate_at_k, rel=1e-3)
    # As many iterations as weight rewinding: from k to the end.
    metrics = io.read_json(files.metrics)
    ticket = io.read_json(_files(experiment, level, "ticket").metrics)
    assert metrics["iterations_trained"] == ticket["iterations_trained"] == 1


def test_it_is_reported_beside_the_ticket(experiment, tmp_path):
  from lth_tf.report import report  # pylint: disable=import-outside-toplevel
  experiment, _ = experiment
  record = branches.BRANCHES.get("lr_rewind")
  assert "lr_rewind" in branches.listable("find") and record.control
  assert branches.ordered(["lr_rewind", "reinit", "ticket"]) == ("ticket", "reinit", "lr_rewind")
  out = report.build([experiment.layout.directory], str(tmp_path / "report"))
  text = open(out["report.md"]).read()
  assert "lr_rewind es-iter" in text.split("ticket es-iter")[1]  # a column group after the ticket
