"""`lth stability` on an experiment: train two copies of a level's branch, evaluate their path.

For every chosen (replicate, level, branch) the branch's plan (`lth_tf.branches`: mask, start
weights, optimizer state, start iteration) is built from the experiment's files exactly as the
level loop built it, and trained twice by the level loop's own `BranchRun`, once per data
order; the linear path between the two results is then evaluated (`interpolate`).

Seeds, all derived from the replicate seed with `branches.derive_seed` and recorded:
- copy c's data order: `derive_seed(seed, "stability", level, branch, c)`; the weights the
  copies start from are the plan's (the initialisation is not changed);
- the fixed training subset: `derive_seed(seed, "stability", "train_subset")`;
- the training batches BatchNorm statistics are recomputed on:
  `derive_seed(seed, "stability", "normalisation")`.

Resuming: a finished copy (its metrics exist) is not trained again, an interrupted one continues
from its last checkpoint, and a pair whose `path.json` was evaluated with the same settings is
not evaluated again. The experiment directory's lock is held throughout.
"""
import dataclasses
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lth_tf import branches as branches_lib
from lth_tf import data as data_lib
from lth_tf import pruning, rundir
from lth_tf.config import ExperimentConfig
from lth_tf.settings import StabilityConfig
from lth_tf.validation import validate, validate_stability
from lth_tf.errors import ConfigError, CorruptFileError, UserError
from lth_tf.lottery.session import open_session
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.lottery.level import level_context
from lth_tf.lottery.runner import LotteryExperiment
from lth_tf.rundir import BranchFiles, ExperimentLayout, check_data_record, states
from lth_tf.rundir import stability as record
from lth_tf.stability import interpolate, plot

COPIES = 2
Pair = Tuple[int, int, str]  # (replicate seed, level, branch)


def data_seeds(seed: int, level: int, branch: str) -> Tuple[int, ...]:
  """The data-order seeds of the copies of one pair."""
  return tuple(branches_lib.derive_seed(seed, "stability", level, branch, copy)
               for copy in range(COPIES))


def read_config(experiment_dir: str) -> ExperimentConfig:
  """The config an experiment directory recorded (`rundir.read_config`), checked as `lth find`
  checks it, for training its copies."""
  recorded = rundir.read_config(experiment_dir, runs_code=True)
  try:
    return validate(recorded.config)
  except ConfigError as error:
    raise CorruptFileError(f"{rundir.ExperimentLayout.from_directory(experiment_dir).config_file}: not "
                           f"an experiment config ({error})") from None


class StabilityExperiment:
  """The stability measurements of one experiment directory.

  Use `from_directory` (a finished experiment) or `for_config` (an experiment that is trained
  or resumed first). Every request is checked in the constructor, before anything is trained
  or written.
  """

  def __init__(self, config: ExperimentConfig, layout: ExperimentLayout,
               settings: StabilityConfig, strategy=None,
               lottery: Optional[LotteryExperiment] = None,
               log: Callable[[str], None] = print):
    self.config = config
    self.layout = layout
    self.settings = validate_stability(settings)
    self.log = log
    self.lottery = lottery
    interpolate.NORMALISATION.get(settings.normalisation)
    self.pairs = self._requested_pairs()
    self.data = data_lib.load(config.dataset, config.runtime.data_dir)
    session = open_session(config, layout, self.data, log, lambda: None, strategy=strategy,
                           resolve_engine=False)
    self.strategy, self.directory, self.trainer = session.strategy, session.directory, session.trainer
    if lottery is None:
      self._check_finished()
      check_data_record(layout.data_file, self.data, layout.directory, flag="data_dir")

  @classmethod
  def from_directory(cls, experiment_dir: str, settings: StabilityConfig,
                     data_dir: Optional[str] = None,
                     log: Callable[[str], None] = print) -> "StabilityExperiment":
    """On the finished experiment in `experiment_dir` (its data read from `data_dir`, by
    default the one it recorded)."""
    directory = os.path.abspath(experiment_dir)
    config = read_config(directory)
    runtime = {"root_dir": os.path.dirname(directory)}
    if data_dir is not None:
      runtime["data_dir"] = data_dir
    config = config.replace(runtime=dataclasses.replace(config.runtime, **runtime))
    layout = ExperimentLayout.from_directory(directory)
    return cls(config, layout, settings, log=log)  # the session builds its strategy

  @classmethod
  def for_config(cls, config: ExperimentConfig, settings: StabilityConfig,
                 flags_text: str = "", log: Callable[[str], None] = print
                 ) -> "StabilityExperiment":
    """On the experiment `config` describes, trained (or resumed) first by `lth find`'s loop."""
    lottery = LotteryExperiment(config, flags_text=flags_text, log=log)
    return cls(lottery.config, lottery.layout, settings, lottery.strategy, lottery, log)

  # ---- checks before anything is written ----------------------------------------------------

  def _requested_pairs(self) -> List[Pair]:
    """The (replicate, level, branch) pairs asked for, in order; level 0 has the ticket only."""
    config, settings = self.config, self.settings
    levels = settings.levels or tuple(range(config.pruning.levels + 1))
    seeds = settings.replicates or config.runtime.seeds
    for seed in seeds:
      if seed not in config.runtime.seeds:
        raise UserError(f"replicate {seed} is not one of the experiment's "
                        f"({', '.join(map(str, config.runtime.seeds))})")
    for level in levels:
      if level > config.pruning.levels:
        raise UserError(f"the experiment has no level {level} (levels 0 to "
                        f"{config.pruning.levels})")
    trained = branches_lib.enabled("find", config)
    for branch in settings.branches:
      branches_lib.BRANCHES.get(branch)  # an unknown name lists the registered ones
      if branch not in trained:
        raise UserError(f"the experiment trains no {branch} branch (it trains "
                        f"{', '.join(trained)})")
    if all(level == 0 for level in levels) and "ticket" not in settings.branches:
      raise UserError("level 0 has the ticket (the dense network) only; add it to "
                      "--stability_branches or choose a level >= 1")
    return [(seed, level, branch) for seed in seeds for level in sorted(set(levels))
            for branch in branches_lib.ordered(set(settings.branches))
            if level > 0 or branch == "ticket"]

  def _check_finished(self) -> None:
    for seed, level, branch in self.pairs:
      for where in ((seed, level, branch), (seed, level, "ticket")):
        if not os.path.exists(BranchFiles(self.layout.branch_dir(*where)).metrics):
          raise UserError(f"replicate {where[0]} level {where[1]} branch {where[2]} of "
                          f"{self.layout.directory} is not finished; run lth find on it first")
      if not os.path.exists(self.layout.rewind_file(seed)):
        raise UserError(f"{self.layout.rewind_file(seed)} is missing: replicate {seed} has no "
                        "rewind point")

  # ---- running --------------------------------------------------------------------------------

  def run(self) -> List[Dict]:
    """Trains and evaluates what is not done yet; writes `stability.json` and its figure;
    returns the records of the pairs asked for."""
    if self.lottery is not None:
      self.lottery.run()
    return self.directory.locked(self._run_locked, self.config.runtime.deterministic)

  def _run_locked(self) -> List[Dict]:
    for seed in dict.fromkeys(seed for seed, _, _ in self.pairs):
      pending = [pair for pair in self.pairs if pair[0] == seed and not self._is_current(pair)]
      if not pending:
        continue
      replicate = ReplicateModel(self.config, self.data, seed, self.strategy)
      rewind = states.read(self.directory.store, self.layout.rewind_file(seed))
      for pair in pending:
        self._run_pair(replicate, rewind, pair)
    if not self.directory.writes:  # the chief writes and reports the records
      return []
    every = [record.read_pair(files.path) for files in self._all_pair_files()
             if os.path.exists(files.path)]
    record.write(self.layout.stability_file, self.layout.experiment_hash, every)
    plot.error_vs_alpha(every, self.layout.stability_plot)
    return [record.read_pair(self.layout.stability_pair(*pair).path) for pair in self.pairs]

  def _all_pair_files(self):
    for seed in self.config.runtime.seeds:
      for level in range(self.config.pruning.levels + 1):
        for branch in branches_lib.enabled("find", self.config) if level else ("ticket",):
          yield self.layout.stability_pair(seed, level, branch)

  def settings_for(self, seed: int) -> Dict:
    """How the paths of replicate `seed` are evaluated (recorded in each pair)."""
    return {"points": self.settings.points, "alphas": "linspace(0, 1, points + 2)",
            "normalisation": self.settings.normalisation,
            "normalisation_batches": self.settings.normalisation_batches,
            "normalisation_batch_size": self.config.training.batch_size,
            "normalisation_seed": branches_lib.derive_seed(seed, "stability", "normalisation"),
            "train_examples": min(self.settings.train_examples, len(self.data.y_train)),
            "train_subset_seed": branches_lib.derive_seed(seed, "stability", "train_subset")}

  def _is_current(self, pair: Pair) -> bool:
    path = self.layout.stability_pair(*pair).path
    if not os.path.exists(path):
      return False
    previous = record.read_pair(path)
    return (previous["settings"] == self.settings_for(pair[0])
            and previous["data_seeds"] == list(data_seeds(*pair)))

  def _run_pair(self, replicate: ReplicateModel, rewind: states.TrainingState,
                pair: Pair) -> None:
    seed, level, branch = pair
    plan = self.plan(replicate, rewind, seed, level, branch)
    files = self.layout.stability_pair(seed, level, branch)
    for copy, data_seed in enumerate(data_seeds(*pair)):
      self.train_copy(replicate, pair, plan, files.copy(copy), data_seed)
    if self.directory.writes:
      record.write_pair(files.path, self.evaluate_pair(replicate, pair, plan,
                                                       [files.copy(c) for c in range(COPIES)]))

  def plan(self, replicate: ReplicateModel, rewind: states.TrainingState, seed: int,
           level: int, branch: str) -> branches_lib.BranchPlan:
    """The branch's plan, from the level's context as the level loop builds it (`level`):
    level 0: the dense network (or a saved ticket's mask) from the rewind point, as a level's
    ticket starts.

    Raises:
      UserError: the plan no longer gives the mask the experiment's branch trained with.
    """
    store = self.directory.store
    dense = pruning.Mask.from_dict(store.read_arrays(
        BranchFiles(self.layout.branch_dir(seed, 0, "ticket")).mask))
    context = level_context(self.config, self.layout, store, replicate, self.data.batch, seed,
                            level, rewind, dense)
    plan = branches_lib.plan_of(branch, context)
    trained = BranchFiles(self.layout.branch_dir(seed, level, branch)).mask
    if store.exists(trained) and pruning.Mask.from_dict(store.read_arrays(trained)) != plan.mask:
      raise UserError(f"replicate {seed} level {level} {branch}: its plan no longer gives the "
                      f"mask it trained with ({trained})")
    return plan

  def train_copy(self, replicate: ReplicateModel, pair: Pair, plan: branches_lib.BranchPlan,
                 files: BranchFiles, data_seed: int) -> None:
    """Trains one copy of `pair` from `plan` in the data order of `data_seed` into `files`
    (nothing if it is finished; from its checkpoint if it was interrupted)."""
    seed, level, branch = pair
    if files.is_finished():
      return
    self.log(f"stability: replicate {seed} level {level} {branch}: "
             f"{os.path.basename(files.directory)}, data-order seed {data_seed}")
    replicate.set_data_order(data_seed)
    self.trainer.run(replicate, seed, level, branch, plan, files=files)

  def evaluate_pair(self, replicate: ReplicateModel, pair: Pair, plan: branches_lib.BranchPlan,
                    copies: Sequence[BranchFiles]) -> Dict:
    """The pair's record (`record`): the path between its two trained copies, evaluated."""
    seed, level, branch = pair
    settings = self.settings_for(seed)
    evaluator = interpolate.PathEvaluator(
        replicate.model, replicate.trainer.evaluate_on,
        {"test": (self.data.x_test, self.data.y_test),
         "train": self.data.batch(settings["train_subset_seed"], settings["train_examples"])},
        plan.mask, self.settings.normalisation, self.normalisation_batches(replicate, seed))
    a, b = (self.directory.store.read_arrays(files.final_weights) for files in copies)
    path = evaluator.path(a, b, interpolate.alphas(self.settings.points))
    metrics = [self.directory.store.read_json(files.metrics) for files in copies]
    return {
        "replicate": seed, "level": level, "branch": branch,
        "rewind_iteration": self.config.pruning.rewind_iteration,
        "start_iteration": plan.start_iteration,
        "weights_remaining": plan.mask.weights_remaining(),
        "data_seeds": list(data_seeds(*pair)),
        "instability": interpolate.instability([row["test_error"] for row in path]),
        "train_instability": interpolate.instability([row["train_error"] for row in path]),
        "endpoint_test_error": [1.0 - m["final_test_accuracy"] for m in metrics],
        "batch_norm": bool(interpolate.batch_norm_layers(replicate.model)),
        "path": path, "settings": settings}

  def normalisation_batches(self, replicate: ReplicateModel, seed: int) -> List[np.ndarray]:
    """The training batches BatchNorm statistics are recomputed on (none without BatchNorm)."""
    if not interpolate.batch_norm_layers(replicate.model):
      return []
    size = self.config.training.batch_size
    count = min(self.settings.normalisation_batches, len(self.data.y_train) // size)
    order = np.random.default_rng(branches_lib.derive_seed(seed, "stability", "normalisation")
                                  ).permutation(len(self.data.y_train))
    return [self.data.x_train[np.sort(order[i * size:(i + 1) * size])] for i in range(count)]
