"""Every branch of a level starts from the same optimizer policy: `restore` (the default), the
state captured at k for every branch; `fresh` (open_lth), a fresh optimizer for every branch.
Checked on the plans of every registered branch and through the level loop, and what a
directory trained under the earlier rule (re-init fresh, the ticket restored) does on resume."""
import dataclasses
import os
import shutil

import numpy as np
import pytest

from lth_tf import branches, io
from lth_tf.branches import BRANCHES, BranchContext, BranchPlan
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig,
                           TrainingConfig)
from lth_tf.errors import UserError
from lth_tf.lottery import LotteryExperiment
from lth_tf.lottery.branch_run import BranchRun
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.pruning import Mask, mask_pairs
from lth_tf.rundir import BranchFiles, ExperimentLayout, check_optimizer_record, optimizer_record
from lth_tf.training import optimizers

K = 20
LEVELS = 2
BRANCHES_TRAINED = ("ticket", "reinit", "random_prune")


# ---- the plans of every registered branch --------------------------------------------------

def _context(policy: str, k: int = K) -> BranchContext:
  rng = np.random.default_rng(0)
  shapes = {"fc1/kernel": (6, 5), "fc1/bias": (5,), "out/kernel": (5, 3), "out/bias": (3,)}
  weights = {n: rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}
  mask = Mask.from_dict({"fc1/kernel": rng.random((6, 5)) < 0.4,
                         "out/kernel": rng.random((5, 3)) < 0.7})
  fresh = lambda seed: {n: np.random.default_rng(seed).normal(size=s).astype(np.float32)
                        for n, s in shapes.items()}
  state = {"optimizer/0000": np.array(k)} if policy == "restore" else None
  return BranchContext(seed=0, level=1, tag=1, mask=mask, rewind_weights=weights,
                       rewind_optimizer=state, rewind_iteration=k, initial_weights=weights,
                       fresh_weights=fresh, source_weights=weights, source_mask=mask,
                       scores=lambda: {n: np.abs(w) for n, w in weights.items() if n in mask})


@pytest.mark.parametrize("policy", ["restore", "fresh"])
@pytest.mark.parametrize("name", branches.trained_by("find"))
def test_every_branch_of_find_starts_from_the_levels_policy(name, policy):
  context = _context(policy)
  plan = branches.plan_of(name, context)
  if policy == "fresh" or plan.start_iteration == 0:
    assert plan.optimizer_state is None
  else:
    assert plan.optimizer_state is context.rewind_optimizer


def test_a_branch_choosing_its_own_optimizer_state_is_refused(monkeypatch):
  """The old re-init plan (a fresh optimizer at k while the ticket restores) is refused."""
  def old_reinit(context):
    return BranchPlan(context.mask, context.fresh_weights(1), None, context.rewind_iteration)

  monkeypatch.setitem(BRANCHES._entries, "old_reinit",  # pylint: disable=protected-access
                      dataclasses.replace(BRANCHES.get("reinit"), name="old_reinit",
                                          plan=old_reinit))
  with pytest.raises(UserError, match="'old_reinit' plans its own optimizer state"):
    branches.plan_of("old_reinit", _context("restore"))
  assert branches.plan_of("old_reinit", _context("fresh")).optimizer_state is None
  with pytest.raises(ValueError, match="no optimizer state is captured at iteration 7"):
    _context("restore").optimizer_at(7)


# ---- through the level loop ----------------------------------------------------------------

def _config(root, **pruning):
  values = dict(levels=LEVELS, fc_rate=0.5, output_rate=0.2, reinit=True, random_prune=True,
                rewind_iteration=K)
  values.update(pruning)
  return ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=40, eval_every=20, batch_size=50),
      pruning=PruningConfig(**values),
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False))


class _Starts:
  """Records the optimizer state each (level, branch) held right after its start was loaded,
  and the start's plan: what its first step really starts from."""

  def __init__(self):
    self.states, self.plans, self._current = {}, {}, None

  def __enter__(self):
    run, load_state = BranchRun.run, ReplicateModel.load_state
    recorder = self

    def recording_run(runner, replicate, seed, level, branch, plan, *args, **kwargs):
      recorder._current = (level, branch)
      recorder.plans[(level, branch)] = plan
      return run(runner, replicate, seed, level, branch, plan, *args, **kwargs)

    def recording_load_state(replicate, *args, **kwargs):
      load_state(replicate, *args, **kwargs)
      recorder.states[recorder._current] = optimizers.get_state(replicate.trainer.optimizer)

    self._saved = run, load_state
    BranchRun.run, ReplicateModel.load_state = recording_run, recording_load_state
    return self

  def __exit__(self, *exc):
    BranchRun.run, ReplicateModel.load_state = self._saved


def _run(config):
  experiment = LotteryExperiment(config, log=lambda line: None)
  with _Starts() as starts:
    rows = experiment.run()
  return experiment, rows, starts


@pytest.fixture(scope="module")
def restored(tmp_path_factory):
  return _run(_config(tmp_path_factory.mktemp("restore")))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
  return _run(_config(tmp_path_factory.mktemp("fresh"), rewind_optimizer="fresh", levels=1))


def _slot_masks(experiment, mask, replicate):
  """Per optimizer variable index, the mask its values are multiplied by at a start (1: none)."""
  by_slot = {}
  for name, weight, _ in mask_pairs(replicate.model):
    for slot in optimizers.slots_of(replicate.trainer.optimizer, weight):
      by_slot[slot.ref()] = mask[name]
  return [by_slot.get(v.ref(), 1) for v in replicate.trainer.optimizer.variables]


def _mask(experiment, level, branch):
  return Mask.from_dict(io.read_arrays(
      BranchFiles(experiment.layout.branch_dir(0, level, branch)).mask))


def test_restore_starts_every_branch_from_the_state_at_k(restored):
  experiment, rows, starts = restored
  assert [(r["level"], r["branch"]) for r in rows][1:] == [
      (level, b) for level in range(1, LEVELS + 1) for b in BRANCHES_TRAINED]
  captured = {n: v for n, v in io.read_arrays(experiment.layout.rewind_file(0)).items()
              if n.startswith("optimizer/")}
  assert int(captured["optimizer/0000"]) == K and any(
      np.any(v) for n, v in captured.items() if n != "optimizer/0000")
  replicate = ReplicateModel(experiment.config, experiment.data, 0, experiment.strategy)
  for level in range(1, LEVELS + 1):
    for branch in BRANCHES_TRAINED:
      state = starts.states[(level, branch)]
      masks = _slot_masks(experiment, _mask(experiment, level, branch), replicate)
      assert sorted(state) == sorted(captured)
      for index, slot_mask in enumerate(masks):
        key = f"optimizer/{index:04d}"
        np.testing.assert_array_equal(state[key], captured[key] * slot_mask)
      assert starts.plans[(level, branch)].start_iteration == K
    # Ticket and re-init share the mask: their optimizer starts are the same arrays exactly.
    for key, value in starts.states[(level, "ticket")].items():
      np.testing.assert_array_equal(starts.states[(level, "reinit")][key], value)
  assert io.read_json(experiment.layout.optimizer_file) == {"rewind_optimizer": "restore",
                                                            "applies_to": "every branch"}


def test_fresh_starts_every_branch_from_a_fresh_optimizer_at_k(fresh, restored):
  experiment, rows, starts = fresh
  assert experiment.layout.experiment_hash != restored[0].layout.experiment_hash
  rewind = io.read_arrays(experiment.layout.rewind_file(0))
  for level in range(1, experiment.config.pruning.levels + 1):
    for branch in BRANCHES_TRAINED:
      state = starts.states[(level, branch)]
      assert int(state["optimizer/0000"]) == 0
      assert all(not np.any(v) for v in state.values())
      files = BranchFiles(experiment.layout.branch_dir(0, level, branch))
      assert io.read_json(files.curve_json)[0]["iteration"] == K  # the schedule from k
    # The ticket still starts from θk ⊙ m: only the optimizer is fresh.
    ticket = BranchFiles(experiment.layout.branch_dir(0, level, "ticket"))
    mask = _mask(experiment, level, "ticket")
    np.testing.assert_array_equal(io.read_arrays(ticket.start_weights)["fc1/kernel"],
                                  rewind["w/fc1/kernel"] * mask["fc1/kernel"])
  assert io.read_json(experiment.layout.optimizer_file)["rewind_optimizer"] == "fresh"
  # The policy changes what the ticket learns (the restored optimizer carries momentum).
  level1 = lambda e: io.read_arrays(BranchFiles(e.layout.branch_dir(0, 1, "ticket"))
                                    .final_weights)["fc1/kernel"]
  assert not np.array_equal(level1(experiment), level1(restored[0]))


# ---- directories trained under the earlier rule ----------------------------------------------

def _snapshot(directory):
  return {os.path.join(parent, name): os.stat(os.path.join(parent, name)).st_mtime_ns
          for parent, _, names in os.walk(directory) for name in names}


def _old_copy(restored, tmp_path, unfinished=()):
  """A copy of the restore experiment as a directory from before the record, with the branch
  directories `unfinished` (under replicate_0) still to train."""
  experiment = restored[0]
  directory = tmp_path / experiment.layout.experiment_hash
  shutil.copytree(experiment.layout.directory, directory)
  os.remove(directory / "optimizer_policy.json")
  for name in unfinished:
    shutil.rmtree(directory / "replicate_0" / name)
  config = experiment.config
  return config.replace(runtime=dataclasses.replace(config.runtime, root_dir=str(tmp_path))), \
      directory


def test_a_finished_directory_of_the_earlier_rule_reruns_as_it_is(restored, tmp_path):
  config, directory = _old_copy(restored, tmp_path)
  before = _snapshot(directory / "replicate_0")
  rows = LotteryExperiment(config, log=lambda line: None).run()
  assert rows == restored[1]
  assert _snapshot(directory / "replicate_0") == before  # nothing retrained
  assert not os.path.exists(directory / "optimizer_policy.json")  # it stays an old directory


def test_resuming_into_a_mix_of_rules_is_refused_and_the_advice_works(restored, tmp_path):
  config, directory = _old_copy(restored, tmp_path, unfinished=("level_2/reinit",))
  before = _snapshot(directory)
  with pytest.raises(UserError) as refused:
    LotteryExperiment(config, log=lambda line: None)
  message = str(refused.value)
  assert "\n" not in message and "1 finished branch(es)" in message
  assert str(directory / "replicate_0" / "level_1" / "reinit") in message
  assert _snapshot(directory) == before  # refused before anything is written
  shutil.rmtree(directory / "replicate_0" / "level_1" / "reinit")
  with _Starts() as starts:
    rows = LotteryExperiment(config, log=lambda line: None).run()
  assert sorted(starts.states) == [(1, "reinit"), (2, "reinit")]
  for level in (1, 2):  # now restored like the ticket
    assert int(starts.states[(level, "reinit")]["optimizer/0000"]) == K
  assert len(rows) == len(restored[1])
  assert io.read_json(directory / "optimizer_policy.json")["applies_to"] == "every branch"


def _fake_directory(root, pruning, finished):
  """A directory whose finished branches are `finished` ((level, branch) pairs)."""
  layout = ExperimentLayout(str(root), "old")
  for level, branch in finished:
    io.write_json(BranchFiles(layout.branch_dir(0, level, branch)).metrics, {})
  slots = [(0, 0, "ticket")] + [(0, level, b) for level in (1, 2)
                                for b in ("ticket", "reinit", "random_prune")]
  return layout, slots


@pytest.mark.parametrize("pruning,refused", [
    (PruningConfig(rewind_iteration=0, reinit=True), False),            # k = 0: one rule
    (PruningConfig(rewind_iteration=K, rewind_optimizer="fresh"), False),  # fresh: one rule
    (PruningConfig(rewind_iteration=K), True),                           # restore, k > 0
])
def test_which_old_directories_are_refused(tmp_path, pruning, refused):
  layout, slots = _fake_directory(tmp_path, pruning, [(0, "ticket"), (1, "ticket"),
                                                      (1, "reinit"), (1, "random_prune")])
  path = layout.optimizer_file
  if refused:
    with pytest.raises(UserError, match="level_1/reinit"):
      check_optimizer_record(path, pruning, layout, slots)
  else:
    check_optimizer_record(path, pruning, layout, slots)
  # Only the ticket and random pruning finished: nothing started under the earlier rule.
  layout, slots = _fake_directory(tmp_path / "b", pruning, [(1, "ticket"), (1, "random_prune")])
  check_optimizer_record(layout.optimizer_file, pruning, layout, slots)
  # A record of another policy is refused.
  io.write_json(path, dict(optimizer_record(pruning), applies_to="the ticket"))
  with pytest.raises(UserError, match="another optimizer policy"):
    check_optimizer_record(path, pruning, layout, slots)
