"""The branch registry: every registered branch checked from its record, and a new branch added as
one record (what a plug-in file does) trained by `lth find --branches` and reported."""
import dataclasses
import types

import numpy as np
import pytest

from lth_tf import branches, io
from lth_tf.branches import BRANCHES, Branch, BranchContext, BranchPlan
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig, TrainingConfig)
from lth_tf.settings import TransferConfig
from lth_tf.validation import validate
from lth_tf.errors import ConfigError
from lth_tf.pruning import Mask
from lth_tf.rundir import BranchFiles

K = 20
TARGET_K = 7


def _context(seed=3, level=2, tag=2):
  rng = np.random.default_rng(0)
  shapes = {"fc1/kernel": (6, 5), "fc1/bias": (5,), "out/kernel": (5, 3), "out/bias": (3,)}
  rewind = {n: rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}
  initial = {n: rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}
  mask = Mask.from_dict({"fc1/kernel": rng.random((6, 5)) < 0.4,
                         "out/kernel": rng.random((5, 3)) < 0.7})

  def fresh(seed):
    generator = np.random.default_rng(seed)
    return {n: generator.normal(size=s).astype(np.float32) for n, s in shapes.items()}

  target = types.SimpleNamespace(
      mask=Mask.from_dict({"fc1/kernel": rng.random((6, 5)) < 0.5,
                           "out/kernel": rng.random((5, 3)) < 0.5}),
      rewind_weights=fresh(99),
      config=types.SimpleNamespace(pruning=types.SimpleNamespace(rewind_iteration=TARGET_K)))
  scores = {name: rng.normal(size=mask[name].shape) for name in mask}
  return BranchContext(seed=seed, level=level, tag=tag, mask=mask, rewind_weights=rewind,
                       rewind_optimizer={"optimizer/0000": np.array(K)}, rewind_iteration=K,
                       initial_weights=initial, fresh_weights=fresh, target_ticket=target,
                       source_weights=fresh(5), source_mask=Mask.ones_like(mask),
                       scores=lambda: scores)


def _same_plan(a: BranchPlan, b: BranchPlan) -> bool:
  return (a.mask == b.mask and a.start_iteration == b.start_iteration
          and all(np.array_equal(a.start_weights[n], b.start_weights[n]) for n in a.start_weights))


@pytest.mark.parametrize("name", BRANCHES.names())
def test_every_branch_plans_a_start_that_fits_the_model_and_is_reproducible(name):
  context = _context()
  plan = BRANCHES.get(name).plan(context)
  assert set(plan.start_weights) == set(context.rewind_weights)
  for weight, array in plan.start_weights.items():
    assert np.shape(array) == np.shape(context.rewind_weights[weight])
  plan.mask.check_fits({n: np.shape(context.rewind_weights[n]) for n in plan.mask})
  assert plan.start_iteration in (0, K, TARGET_K)
  assert plan.optimizer_state is None or plan.optimizer_state is context.rewind_optimizer
  # The same context gives the same plan (a resumed run rewrites the same start), another
  # replicate seed a different one for branches that draw at random.
  assert _same_plan(plan, BRANCHES.get(name).plan(_context()))


@pytest.mark.parametrize("name", [n for n in BRANCHES.names() if BRANCHES.get(n).control])
def test_every_control_differs_from_the_ticket(name):
  context = _context()
  ticket = BRANCHES.get("ticket").plan(context)
  control = BRANCHES.get(name).plan(context)
  assert not _same_plan(ticket, control)


def _random_mask_from_theta_k(name) -> bool:
  """Whether branch `name` plans what random_prune does: θk from k under the level's policy, and
  a mask with the ticket's per-layer counts drawn anew for every seed."""
  contexts = [_context(seed=seed) for seed in (3, 4, 5)]
  plans = [BRANCHES.get(name).plan(context) for context in contexts]
  return (all(plan.start_iteration == K and plan.optimizer_state is context.rewind_optimizer
              and all(np.array_equal(plan.start_weights[n], context.rewind_weights[n])
                      for n in context.rewind_weights)
              and plan.mask.layer_counts() == context.mask.layer_counts()
              and plan.mask != context.mask for plan, context in zip(plans, contexts))
          and len(set(plans[i].mask for i in range(len(plans)))) == len(plans))


def test_no_two_controls_are_one_control():
  """Two names for one control confuse tables and figures: the layerwise shuffle of Frankle et
  al. 2021 is random_prune (a shuffle of a layer's mask is a uniformly random mask of its
  count), and no other branch trains it again."""
  assert [name for name in BRANCHES.names() if BRANCHES.get(name).control
          and _random_mask_from_theta_k(name)] == ["random_prune"]


@pytest.mark.parametrize("name", BRANCHES.names())
def test_every_record_is_complete(name):
  record = BRANCHES.get(name)
  assert record.name == name and record.summary
  assert set(record.enabled_by) <= set(branches.KINDS) and record.enabled_by
  for kind, how in record.enabled_by.items():
    settings = ExperimentConfig() if kind == "find" else TransferConfig()
    if how not in (branches.ALWAYS, branches.LISTED):
      assert isinstance(record.is_enabled(kind, settings), bool)  # the setting exists
  import matplotlib.markers  # pylint: disable=import-outside-toplevel
  assert record.marker in matplotlib.markers.MarkerStyle.markers
  orders = [BRANCHES.get(n).order for n in BRANCHES.names()]
  assert len(set(orders)) == len(orders)
  assert branches.ordered(BRANCHES.names())[0] == "ticket"


def test_random_draws_are_seeded_per_replicate_and_level():
  plans = {(seed, tag): BRANCHES.get("random_prune").plan(_context(seed=seed, tag=tag)).mask
           for seed in (0, 1) for tag in (1, 2)}
  assert len({plan for plan in plans.values()}) == 4
  first = _context()
  mask = BRANCHES.get("random_prune").plan(first).mask
  assert mask.layer_counts() == first.mask.layer_counts()


def test_what_each_experiment_trains():
  find = ExperimentConfig()
  assert branches.enabled("find", find) == ("ticket",)
  both = find.replace(pruning=PruningConfig(reinit=True, random_prune=True))
  assert branches.enabled("find", both) == ("ticket", "reinit", "random_prune")
  assert branches.enabled("find", branches.ticket_only(both)) == ("ticket",)
  assert branches.enabled("transfer", TransferConfig()) == (
      "ticket", "dense", "reinit", "random_prune")
  assert branches.enabled("transfer", TransferConfig(target_ticket="t"))[-1] == "target_ticket"
  with pytest.raises(ConfigError, match="branches: 'reinit' is not a branch --branches can add"):
    validate(find.replace(pruning=PruningConfig(branches=("reinit",))))
  with pytest.raises(ConfigError, match="'nope'"):
    validate(find.replace(pruning=PruningConfig(branches=("nope",))))


def _theta0_plan(context: BranchContext) -> BranchPlan:
  """The original LTH's reset: the ticket's mask with θ0, from iteration 0, fresh optimizer."""
  return BranchPlan(context.mask, context.initial_weights, None, 0)


def _kept_plan(context: BranchContext) -> BranchPlan:
  """Learning-rate rewinding's shape: the source level's trained weights, masked, from k (with
  the level's optimizer policy, as every branch)."""
  k = context.rewind_iteration
  return BranchPlan(context.mask, context.source_weights, context.optimizer_at(k), k)


@pytest.fixture
def theta0_branch(monkeypatch):
  """Two branches added the way a plug-in module adds one: one registered record each."""
  for name, plan, order in (("theta0", _theta0_plan, 9), ("kept", _kept_plan, 10)):
    record = Branch(name, plan, "a plug-in branch", enabled_by={"find": branches.LISTED},
                    order=order, marker="v", linestyle="-.")
    monkeypatch.setitem(BRANCHES._entries, name, record)  # pylint: disable=protected-access


def test_a_new_branch_is_trained_by_find_and_reported(tmp_path, theta0_branch):
  from lth_tf.lottery import LotteryExperiment  # pylint: disable=import-outside-toplevel
  from lth_tf.report import report  # pylint: disable=import-outside-toplevel
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=40, eval_every=20, batch_size=50),
      pruning=PruningConfig(levels=2, fc_rate=0.5, rewind_iteration=20,
                            branches=("theta0", "kept")),
      runtime=RuntimeConfig(root_dir=str(tmp_path), data_dir=str(tmp_path), progress=False))
  assert branches.enabled("find", config) == ("ticket", "theta0", "kept")
  plain = dataclasses.replace(config.pruning, branches=())
  assert config.experiment_hash() != config.replace(pruning=plain).experiment_hash()
  experiment = LotteryExperiment(config, log=lambda line: None)
  rows = experiment.run()
  assert [(r["level"], r["branch"]) for r in rows] == [
      (0, "ticket")] + [(level, b) for level in (1, 2) for b in ("ticket", "theta0", "kept")]
  level0 = BranchFiles(experiment.layout.branch_dir(0, 0, "ticket"))
  ticket = BranchFiles(experiment.layout.branch_dir(0, 1, "ticket"))
  theta0 = BranchFiles(experiment.layout.branch_dir(0, 1, "theta0"))
  # θ0 ⊙ m: level 0's start weights, masked by the ticket's mask; the ticket starts from θk.
  mask = io.read_arrays(ticket.mask)
  start, dense_start = io.read_arrays(theta0.start_weights), io.read_arrays(level0.start_weights)
  np.testing.assert_array_equal(start["fc1/kernel"], dense_start["fc1/kernel"] * mask["fc1/kernel"])
  assert not np.array_equal(io.read_arrays(ticket.start_weights)["fc1/kernel"],
                            start["fc1/kernel"])
  assert io.read_json(theta0.curve_json)[0]["iteration"] == 0
  assert io.read_json(ticket.curve_json)[0]["iteration"] == 20
  # The source of level 2 is level 1's trained ticket: its final weights under level 2's mask.
  kept = BranchFiles(experiment.layout.branch_dir(0, 2, "kept"))
  level2_mask = io.read_arrays(BranchFiles(experiment.layout.branch_dir(0, 2, "ticket")).mask)
  np.testing.assert_array_equal(
      io.read_arrays(kept.start_weights)["fc1/kernel"],
      io.read_arrays(ticket.final_weights)["fc1/kernel"] * level2_mask["fc1/kernel"])
  assert io.read_json(kept.curve_json)[0]["iteration"] == 20
  out = report.build([experiment.layout.directory], str(tmp_path / "report"))
  assert "theta0 es-iter" in open(out["report.md"]).read()


def test_a_strategy_gets_the_model_and_seeded_batches(tmp_path, monkeypatch):
  """What a gradient-scored strategy (one file in lth_tf/pruning/strategies/) is given: the model
  holding the weights it prunes, and reproducible batches of training data."""
  from lth_tf import pruning  # pylint: disable=import-outside-toplevel
  from lth_tf.lottery import LotteryExperiment  # pylint: disable=import-outside-toplevel
  from lth_tf.training import get_weights  # pylint: disable=import-outside-toplevel
  seen = []

  def by_magnitude_with_a_look(request):
    model_weights = get_weights(request.model)
    assert all(np.array_equal(model_weights[n], request.weights[n]) for n in request.weights)
    x, y = request.batch(request.seed, 16)
    again = request.batch(request.seed, 16)
    seen.append((x.shape, np.array_equal(x, again[0]) and np.array_equal(y, again[1])))
    return pruning.STRATEGIES.get("magnitude")(request)

  monkeypatch.setitem(pruning.STRATEGIES._entries, "looking",  # pylint: disable=protected-access
                      by_magnitude_with_a_look)
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=20, eval_every=20, batch_size=50),
      pruning=PruningConfig(levels=2, fc_rate=0.5, strategy="looking"),
      runtime=RuntimeConfig(root_dir=str(tmp_path), data_dir=str(tmp_path), progress=False))
  LotteryExperiment(config, log=lambda line: None).run()
  # Levels 1 and 2 (the dense training scores nothing without an early-bird threshold).
  assert len(seen) == 2 and all(same for _, same in seen)
  assert seen[0][0][0] == 16
