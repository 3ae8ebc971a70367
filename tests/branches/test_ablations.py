"""The ablations of Frankle et al. 2021 as branches: the layerwise shuffle is the random_prune
control (each layer's count kept, the mask moved; the `shuffle` name is retired); `invert` keeps
exactly the lowest-ranked weights at the ticket's per-layer counts; and `lth find` with a
pruning-at-initialisation strategy and both ablations, end to end."""
import json
import os
import sys

import numpy as np
import pytest
from absl import flags as absl_flags

from lth_tf import cli, data, distribute, io, pruning
from lth_tf.branches import BRANCHES, BranchContext
from lth_tf.branches.invert import inverted
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig, TrainingConfig)
from lth_tf.validation import validate
from lth_tf.errors import ConfigError, UserError
from lth_tf.lottery import ExperimentLayout, LotteryExperiment
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.pruning import STRATEGIES, Mask, PruneRequest, remaining_after
from lth_tf.pruning.strategies.base import exponential_schedule
from lth_tf.pruning.strategies.magnitude import magnitude_scores
from lth_tf.rundir import BranchFiles, states
from lth_tf.training import set_weights

RNG = np.random.default_rng(11)
SHAPES = {"fc1/kernel": (40, 30), "fc2/kernel": (30, 20), "output/kernel": (20, 10)}
SOURCE_WEIGHTS = {n: RNG.normal(size=s) for n, s in SHAPES.items()}
# A source mask that already pruned some weights (an iterative level's source).
SOURCE_MASK = Mask.from_dict({n: RNG.random(s) < 0.7 for n, s in SHAPES.items()})
RATES = {"fc1/kernel": 0.6, "fc2/kernel": 0.6, "output/kernel": 0.3}


def _ticket(**scope):
  return STRATEGIES.get("magnitude")(PruneRequest(SOURCE_WEIGHTS, SOURCE_MASK, **scope))


def _context(mask, seed=0, tag=1, scores=None):
  return BranchContext(seed=seed, level=1, tag=tag, mask=mask, rewind_weights=SOURCE_WEIGHTS,
                       rewind_optimizer=None, rewind_iteration=0, initial_weights=SOURCE_WEIGHTS,
                       fresh_weights=lambda seed: SOURCE_WEIGHTS, source_weights=SOURCE_WEIGHTS,
                       source_mask=SOURCE_MASK, scores=scores)


def test_the_layerwise_shuffle_keeps_each_layers_count_and_moves_the_mask():
  ticket = _ticket(layer_rates=RATES)
  plans = {(seed, tag): BRANCHES.get("random_prune").plan(_context(ticket, seed, tag)).mask
           for seed in (0, 1) for tag in (1, 2)}
  for mask in plans.values():
    assert mask.layer_counts() == ticket.layer_counts()
    for name in mask:  # moved within every layer, not only somewhere
      assert not np.array_equal(mask[name], ticket[name])
  assert len(set(plans.values())) == 4  # seeded per replicate and level
  assert BRANCHES.get("random_prune").plan(_context(ticket)).mask == plans[(0, 1)]


def test_the_retired_shuffle_name_is_refused_with_what_to_use():
  with pytest.raises(ConfigError, match="'shuffle' retired on 2026-12-07.*give --random_prune"):
    validate(ExperimentConfig(pruning=PruningConfig(levels=1, branches=("shuffle",))))
  assert "shuffle" not in BRANCHES


@pytest.mark.parametrize("scope", [dict(layer_rates=RATES),
                                   dict(global_layers=tuple(SHAPES), global_rate=0.7)],
                         ids=["layerwise", "global"])
def test_invert_keeps_exactly_the_complement_ranking_at_the_same_density(scope):
  ticket = _ticket(**scope)
  scores = magnitude_scores(PruneRequest(SOURCE_WEIGHTS, SOURCE_MASK))
  plan = BRANCHES.get("invert").plan(_context(ticket, scores=lambda: scores))
  mask = plan.mask
  assert mask.layer_counts() == ticket.layer_counts()
  assert mask.is_subset_of(SOURCE_MASK)  # pruned weights of the source never return
  for name in SHAPES:
    magnitudes = np.abs(SOURCE_WEIGHTS[name])
    candidates = SOURCE_MASK[name]
    count = int(ticket[name].sum())
    # The ticket keeps the `count` largest of the candidates, invert the `count` smallest.
    ranked = np.sort(magnitudes[candidates])
    np.testing.assert_array_equal(np.sort(magnitudes[mask[name]]), ranked[:count])
    np.testing.assert_array_equal(np.sort(magnitudes[ticket[name]]), ranked[len(ranked) - count:])
    if 2 * count <= ranked.size:
      assert not np.any(mask[name] & ticket[name])


def test_invert_breaks_ties_by_position_and_needs_scores():
  mask = Mask.from_dict({"a": np.array([True, True, False, False])})
  source = Mask.from_dict({"a": np.array([True, True, True, True])})
  kept = inverted(mask, source, {"a": np.array([1.0, 0.0, 0.0, 2.0])})
  np.testing.assert_array_equal(kept["a"], [False, True, True, False])
  ties = np.zeros(100)
  ties[::7] = 1.0
  kept = inverted(Mask.from_dict({"a": np.arange(100) < 20}), Mask.from_dict({"a": np.ones(100, bool)}),
                  {"a": ties})
  np.testing.assert_array_equal(np.flatnonzero(kept["a"]), np.flatnonzero(ties == 0)[:20])
  with pytest.raises(UserError, match="needs the pruning strategy's scores"):
    BRANCHES.get("invert").plan(_context(_ticket(layer_rates=RATES)))


# ---- end to end ------------------------------------------------------------------------------

def _config(root, **pruning):
  return ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=20, eval_every=20, batch_size=50),
      pruning=PruningConfig(**pruning),
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False))


def _lth(*argv):
  """`lth` in this process: its exit code."""
  saved = sys.argv
  absl_flags.FLAGS.unparse_flags()
  sys.argv = ["lth", *argv]
  try:
    cli.main()
  except SystemExit as exited:
    return exited.code
  finally:
    sys.argv = saved
    absl_flags.FLAGS.unparse_flags()
  return 0


@pytest.fixture(scope="module")
def snip_one_shot(tmp_path_factory):
  root = tmp_path_factory.mktemp("snip")
  code = _lth("find", "--dataset=synthetic", "--validation_size=500", "--iterations=20",
              "--eval_every=20", "--batch_size=50", "--levels=2", "--mode=one_shot",
              "--pruning_strategy=snip", "--random_prune", "--branches=invert", "--progress=false",
              f"--root_dir={root}", f"--data_dir={root}")
  assert code == 0
  config = _config(root, levels=2, mode="one_shot", strategy="snip", branches=("invert",),
                   random_prune=True)
  return config, ExperimentLayout.for_config(config)


def _mask(layout, level, branch):
  return Mask.from_dict(io.read_arrays(BranchFiles(layout.branch_dir(0, level, branch)).mask))


def _snip_at(config, weights, mask, rounds):
  """SNIP's mask and scores of `weights` under `mask` on a fresh replicate's model."""
  if not _REPLICATE:
    splits = data.load(config.dataset, config.runtime.data_dir)
    _REPLICATE.append((ReplicateModel(config, splits, 0, distribute.make_strategy(config.runtime)),
                       splits))
  replicate, splits = _REPLICATE[0]
  out = []
  for how in (pruning.next_mask, pruning.scores):
    set_weights(replicate.model, weights)
    pruning.set_mask(replicate.model, mask)
    kwargs = dict(rounds=rounds) if how is pruning.next_mask else {}
    out.append(how(config.pruning, replicate.kinds, weights, mask, seed=0, model=replicate.model,
                   batch=splits.batch, **kwargs))
  return out


_REPLICATE = []


def test_find_with_snip_one_shot_and_the_ablations(snip_one_shot):
  config, layout = snip_one_shot
  rows = json.load(open(layout.summary_file))
  assert [(r["level"], r["branch"]) for r in rows] == [(0, "ticket")] + [
      (level, branch) for level in (1, 2) for branch in ("ticket", "random_prune", "invert")]
  theta_k = states.read(io, layout.rewind_file(0)).weights
  trained = io.read_arrays(BranchFiles(layout.branch_dir(0, 0, "ticket")).final_weights)
  dense = Mask.ones_like({n: theta_k[n] for n in _mask(layout, 1, "ticket")})
  for level in (1, 2):
    ticket = _mask(layout, level, "ticket")
    # One-shot, global over all layers: the density of `level` rounds at 20%.
    assert ticket.num_remaining() == remaining_after(dense.num_weights(), 0.2, level)
    assert len({round(d, 2) for d in ticket.layer_densities().values()}) > 1  # global ranking
    # Scored at θk (θ0 here), not at the trained weights.
    at_init, scores = _snip_at(config, theta_k, dense, level)
    assert ticket == at_init
    assert ticket != _snip_at(config, trained, dense, level)[0]
    shuffle = _mask(layout, level, "random_prune")
    assert shuffle.layer_counts() == ticket.layer_counts() and shuffle != ticket
    invert = _mask(layout, level, "invert")
    assert invert == inverted(ticket, dense, scores)
    start = io.read_arrays(BranchFiles(layout.branch_dir(0, level, "invert")).start_weights)
    name = "fc1/kernel"
    np.testing.assert_array_equal(start[name], theta_k[name] * invert[name])


def test_a_rerun_of_the_finished_experiment_trains_nothing(snip_one_shot):
  config, layout = snip_one_shot
  stamp = os.path.getmtime(layout.summary_file)
  lines = []
  LotteryExperiment(config, log=lines.append).run()
  assert [line for line in lines if not line.startswith("engine: ")] == []
  assert os.path.getmtime(layout.summary_file) >= stamp


@pytest.mark.parametrize("pruning,message", [
    (dict(strategy="random", branches=("invert",)), "branch 'invert' needs the pruning strategy's "
                                                   "scores, which --pruning_strategy=random"),
    (dict(strategy="erk", init_scope="layerwise"), "needs global scope"),
    (dict(strategy="snip", scope="global"), "give --init_scope=scope"),
    (dict(strategy="snipe"), "unknown pruning strategy 'snipe'"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, pruning, message):
  config = _config(tmp_path / "runs", levels=1, **pruning)
  with pytest.raises(UserError, match=message):
    LotteryExperiment(config, log=lambda line: None)
  assert not os.path.exists(ExperimentLayout.for_config(config).directory)


def test_iterative_pruning_at_init_prunes_theta_k_under_each_levels_mask(tmp_path):
  config = _config(tmp_path, levels=2, strategy="magnitude_init", rewind_iteration=10)
  config = config.replace(training=TrainingConfig(iterations=20, eval_every=10, batch_size=50))
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  layout = experiment.layout
  theta_k = states.read(io, layout.rewind_file(0)).weights
  previous = Mask.ones_like({n: theta_k[n] for n in _mask(layout, 1, "ticket")})
  total = previous.num_weights()
  for level in (1, 2):
    ticket = _mask(layout, level, "ticket")
    assert ticket.is_subset_of(previous)
    assert ticket.num_remaining() == remaining_after(total, 0.2, level)
    # The largest |θk| among the previous level's survivors, ranked across all layers.
    kept = np.concatenate([np.abs(theta_k[n][ticket[n]]) for n in ticket])
    dropped = np.concatenate([np.abs(theta_k[n][previous[n] & ~ticket[n]]) for n in ticket])
    assert kept.min() >= dropped.max()
    previous = ticket


# ---- an iterative strategy's invert, planned by lth find and by lth stability ------------------

STEPS = 4


@pytest.fixture(scope="module")
def synflow_invert(tmp_path_factory):
  """SynFlow in 4 steps, one level, the invert branch (the flags, the config, the layout)."""
  root = tmp_path_factory.mktemp("synflow_invert")
  common = ["--dataset=synthetic", "--validation_size=500", "--iterations=20", "--eval_every=20",
            "--batch_size=50", "--levels=1", "--pruning_strategy=synflow",
            f"--score_iterations={STEPS}", "--branches=invert", "--progress=false",
            f"--root_dir={root}", f"--data_dir={root}"]
  assert _lth("find", *common) == 0
  config = _config(root, levels=1, strategy="synflow", score_iterations=STEPS,
                   branches=("invert",))
  return common, config, ExperimentLayout.for_config(config)


def _synflow_inverted_by_hand(config, theta_k, source, ticket):
  """Synaptic-Flow's invert written out: at every step, SynFlow's scores of θk under the mask so
  far, and in every layer the lowest-scoring survivors at that step's count of the ticket's
  exponential schedule."""
  splits = data.load(config.dataset, config.runtime.data_dir)
  replicate = ReplicateModel(config, splits, 0, distribute.make_strategy(config.runtime))
  set_weights(replicate.model, theta_k)
  current = source
  for step in range(STEPS):
    scores = pruning.scores(config.pruning, replicate.kinds, theta_k, current, seed=0,
                            model=replicate.model, batch=splits.batch)
    arrays = {}
    for name in current:
      start, end = int(source[name].sum()), int(ticket[name].sum())
      count = exponential_schedule(start, end, STEPS)[step]
      values = np.where(current[name], scores[name], np.inf).reshape(-1)
      keep = np.zeros(values.size, bool)
      keep[np.argsort(values, kind="stable")[:count]] = True
      arrays[name] = keep.reshape(current[name].shape)
    current = Mask.from_dict(arrays)
  one_pass = inverted(ticket, source, pruning.scores(config.pruning, replicate.kinds, theta_k,
                                                     source, seed=0, model=replicate.model))
  return current, one_pass


def test_an_iterative_strategy_is_inverted_inside_every_step(synflow_invert):
  _, config, layout = synflow_invert
  theta_k = states.read(io, layout.rewind_file(0)).weights
  ticket = _mask(layout, 1, "ticket")
  dense = Mask.ones_like({n: theta_k[n] for n in ticket})
  expected, one_pass = _synflow_inverted_by_hand(config, theta_k, dense, ticket)
  invert = _mask(layout, 1, "invert")
  assert invert == expected
  assert invert != one_pass  # the steps matter: one inverted pass is another mask
  assert invert.layer_counts() == ticket.layer_counts()


def test_stability_plans_the_invert_branch_as_find_did(synflow_invert):
  flags, _, layout = synflow_invert
  assert _lth("stability", *flags, "--stability_levels=1", "--stability_branches=invert",
              "--stability_points=2", "--stability_train_examples=200") == 0
  pair = layout.stability_pair(0, 1, "invert")
  for copy in (0, 1):
    assert Mask.from_dict(io.read_arrays(pair.copy(copy).mask)) == _mask(layout, 1, "invert")
  assert io.read_json(pair.path)["branch"] == "invert"
