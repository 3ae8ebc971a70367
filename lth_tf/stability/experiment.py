"""`lth stability` on an experiment: train two copies of a level's branch, evaluate their path.

For every chosen (replicate, level, branch) the branch's plan (`lth_tf.branches`: mask, start
weights, optimizer state, start iteration) is built from the experiment's files exactly as the
level loop built it, and trained twice by the level loop's own `BranchRun`, once per data
order (`copies`: tasks the experiment's executor runs, with the experiment's own where it is
trained first); the linear path between the two results is then evaluated (`interpolate`).

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
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from lth_tf import branches as branches_lib
from lth_tf import data as data_lib
from lth_tf import executors, rundir
from lth_tf.config import ExperimentConfig
from lth_tf.settings import StabilityConfig
from lth_tf.validation import validate, validate_stability
from lth_tf.errors import ConfigError, CorruptFileError, UserError
from lth_tf.executors import EXECUTORS
from lth_tf.lottery.session import open_session
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.lottery.runner import LotteryExperiment
from lth_tf.lottery.tasks import FindSpec, Keyed, Works, keyed
from lth_tf.rundir import BranchFiles, ExperimentLayout, check_data_record, states
from lth_tf.rundir import stability as record
from lth_tf.stability import copies, interpolate, plot
from lth_tf.stability.copies import COPIES, Pair, data_seeds


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
    executors.check(config.runtime)
    self.log = log
    self.lottery = lottery
    interpolate.NORMALISATION.get(settings.normalisation)
    self.pairs = self._requested_pairs()
    self.data = data_lib.load(config.dataset, config.runtime.data_dir)
    session = open_session(config, layout, self.data, log, lambda: None, strategy=strategy,
                           resolve_engine=False)
    self.strategy, self.directory, self.trainer = session.strategy, session.directory, session.trainer
    self.copies = copies.CopyWork(
        copies.CopySpec(FindSpec(config, layout, tuple(branches_lib.enabled("find", config)),
                                 None if lottery is None else lottery.ticket)),
        self.data, self.strategy, self.trainer, log=log)
    if lottery is None:
      self._check_finished()
      check_data_record(layout.data_file, self.data, layout.directory, flag="data_dir")

  @classmethod
  def from_directory(cls, experiment_dir: str, settings: StabilityConfig,
                     data_dir: Optional[str] = None,
                     log: Callable[[str], None] = print,
                     executor: Optional[Dict] = None) -> "StabilityExperiment":
    """On the finished experiment in `experiment_dir` (its data read from `data_dir`, by
    default the one it recorded), its copies trained by `executor` (runtime fields: `executor`,
    `cpus_per_task`, `gpus_per_task`; by default the local executor, whatever the experiment
    was trained with)."""
    directory = os.path.abspath(experiment_dir)
    config = read_config(directory)
    runtime = dict({"executor": "local"}, **(executor or {}), root_dir=os.path.dirname(directory))
    if data_dir is not None:
      runtime["data_dir"] = data_dir
    config = validate(config.replace(runtime=dataclasses.replace(config.runtime, **runtime)))
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
    if self.lottery is not None:  # the experiment's tasks and the copies, as one graph
      self.lottery.run(extend=self._with_copies)
    return self.directory.locked(self._run_locked, self.config.runtime.deterministic)

  def _pending(self) -> List[Pair]:
    return [pair for pair in self.pairs if not self._is_current(pair)]

  def _with_copies(self, work, graph):
    """The experiment's work and graph (`LotteryExperiment.run`) with the copies added, each
    waiting for the tasks of its level and branch that are in the graph."""
    tasks = {task for task, _ in graph}
    waits = lambda copy: [Keyed("find", task) for task in copies.CopyWork.needs(copy)
                          if task in tasks]
    return (Works({"find": work, "copies": self.copies}),
            keyed("find", graph) + [(Keyed("copies", task), deps) for task, deps in
                                    self.copies.graph(self._pending(), waits)])

  def _run_locked(self) -> List[Dict]:
    pending = self._pending()
    graph = self.copies.graph(pending)
    if graph:
      EXECUTORS.get(self.config.runtime.executor)(self.copies, graph)
    if not self.directory.writes:  # the chief writes and reports the records
      return []
    for seed in dict.fromkeys(seed for seed, _, _ in pending):
      replicate = self.copies.replicate(seed)
      rewind = states.read(self.directory.store, self.layout.rewind_file(seed))
      for pair in pending:
        if pair[0] == seed:
          files = self.layout.stability_pair(*pair)
          record.write_pair(files.path, self.evaluate_pair(
              replicate, pair, self.plan(replicate, rewind, *pair),
              [files.copy(c) for c in range(COPIES)]))
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

  def plan(self, replicate: ReplicateModel, rewind: states.TrainingState, seed: int,
           level: int, branch: str) -> branches_lib.BranchPlan:
    """The branch's plan (`copies.pair_plan`)."""
    return copies.pair_plan(self.config, self.layout, self.directory.store, replicate,
                            self.data.batch, (seed, level, branch), rewind)

  def train_copy(self, replicate: ReplicateModel, pair: Pair, plan: branches_lib.BranchPlan,
                 files: BranchFiles, data_seed: int) -> None:
    """Trains one copy of `pair` from `plan` in the data order of `data_seed` into `files`
    (`copies.train`)."""
    copies.train(self.trainer, replicate, pair, plan, files, data_seed, self.log)

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
