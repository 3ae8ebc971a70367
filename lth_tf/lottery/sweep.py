"""A rewind sweep: one experiment per rewind iteration k, sharing one dense training (level 0).

Frankle et al. (ICML 2020) choose the rewind point k by stability, which takes the level
structure at several k. `lth find --rewind_iteration=0,100,500,2000` runs every k as an
ordinary experiment directory whose config, hash and files are those of a run with that k
alone, and trains level 0 once per replicate: the dense training does not depend on k (its
initialisation and data order are functions of the seed; k only ends a graph chunk where θk is
captured, which leaves every weight bit-identical), and `validation.validate_sweep` refuses what
would make it depend on k (an early-bird threshold, a saved ticket).

Per replicate, the first k whose level 0 is unfinished trains it, capturing θj of every k of
the sweep that lacks its rewind point into that experiment's directory
(`LotteryExperiment.share_level_0`); every other k whose level 0 is unfinished then gets a copy
of its level-0 files (metrics last, naming their own experiment), so that each directory is
complete and resumable on its own. The k's run as one graph of tasks (`SweepWork`), at the same
time under an executor that runs tasks at the same time (`--executor=ray`). The sweep's record (`rundir.sweep`) lists the k's and their
experiment hashes. A rerun of the sweep resumes: finished work is skipped, and every file is
written atomically, so a killed sweep leaves no half-written file.
"""
import dataclasses
import os
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from lth_tf import io
from lth_tf.config import ExperimentConfig
from lth_tf.config_codec import sweep_hash, with_rewind_iteration
from lth_tf.validation import validate_sweep
from lth_tf.errors import UserError
from lth_tf.executors import EXECUTORS
from lth_tf.lottery.runner import LotteryExperiment
from lth_tf.lottery.tasks import Keyed, Remote, Task, Work, Works, keyed
from lth_tf.rundir import BranchFiles, ExperimentLayout, SweepLayout, engine_record, states
from lth_tf.rundir import sweep as sweep_record

# The files of a finished level 0 copied to the other k's, metrics (which mark it finished)
# written last; the TensorBoard folder is copied whole.
LEVEL_0_FILES = ("mask", "start_weights", "final_weights", "curve_json", "curve_csv")


@dataclasses.dataclass(frozen=True)
class Level0Plan:
  """What one replicate's level 0 needs: `host`, the k that trains it (None: every rewind
  point exists and some k's level 0 is finished), `captures`, the other k's whose θk it
  captures, and `copies`, the k's that get a copy of it from `source` afterwards."""
  host: Optional[int]
  captures: Tuple[int, ...]
  copies: Tuple[int, ...]
  source: Optional[int]


class RewindSweep:
  """Runs (or resumes) one experiment per rewind iteration of `rewind_iterations`.

  Args:
    config: the experiment (its own `rewind_iteration` is replaced by each k).
    rewind_iterations: the k's; checked by `validation.validate_sweep` and sorted.
    flags_texts: per k, the flagfile text recorded in that experiment's `flags.txt`.
    log: where one line per finished branch goes.

  Raises:
    UserError: bad k's, settings that make level 0 depend on k, or anything an experiment's
      own checks refuse, before anything is written or trained.
  """

  def __init__(self, config: ExperimentConfig, rewind_iterations: Sequence[int],
               flags_texts: Optional[Mapping[int, str]] = None,
               log: Callable[[str], None] = print):
    self.ks = validate_sweep(config, rewind_iterations)
    self.log = log
    flags_texts = flags_texts or {}
    self.experiments: Dict[int, LotteryExperiment] = {
        k: LotteryExperiment(with_rewind_iteration(config, k), flags_texts.get(k, ""), log)
        for k in self.ks}
    self.seeds = config.runtime.seeds
    self.layout = SweepLayout(config.runtime.root_dir, sweep_hash(
        [self.experiments[k].layout.experiment_hash for k in self.ks]))
    self._check_one_engine()

  def _check_one_engine(self) -> None:
    """Level 0 is trained with one engine: every k's directory must keep the same one."""
    engines = {k: engine_record(e.config.runtime) for k, e in self.experiments.items()}
    if len({repr(sorted(record.items())) for record in engines.values()}) > 1:
      raise UserError("the experiments of a rewind sweep share level 0, so they keep one "
                      "engine, but their directories record different ones (" + "; ".join(
                          f"k={k}: {record}" for k, record in engines.items()) +
                      "); run the k's one at a time, or use another --root_dir")

  @property
  def layouts(self) -> Dict[int, ExperimentLayout]:
    return {k: e.layout for k, e in self.experiments.items()}

  def plan(self, seed: int) -> Level0Plan:
    """What replicate `seed`'s level 0 needs now (see `Level0Plan`)."""
    unfinished = [k for k in self.ks if not self._level_0(k, seed).is_finished()]
    if not unfinished:
      return Level0Plan(None, (), (), None)
    missing = [k for k in self.ks
               if not os.path.exists(self.layouts[k].rewind_file(seed))]
    finished = [k for k in self.ks if k not in unfinished]
    host = unfinished[0] if missing or not finished else None
    source = host if host is not None else finished[0]
    return Level0Plan(host, tuple(k for k in missing if k != host),
                      tuple(k for k in unfinished if k != host), source)

  def run(self) -> Dict[int, List[Dict]]:
    """Trains what is not finished yet; returns each k's summary rows."""
    with io.DirectoryLock(self.layout.directory):
      io.remove_temporary_files(self.layout.directory)
      sweep_record.write(self.layout, [(k, self.layouts[k].experiment_hash) for k in self.ks])
      plans = {seed: self.plan(seed) for seed in self.seeds}
      for seed, plan in plans.items():
        if plan.host is not None:
          self._restart_if_past(seed, plan)
          self.experiments[plan.host].share_level_0(
              seed, {k: self.layouts[k] for k in plan.captures})
      return self._locked(list(self.ks), plans, {})

  def _locked(self, ks: List[int], plans: Dict[int, Level0Plan], started: Dict) -> Dict:
    """Takes the lock of every k's directory in turn and records each experiment in it; then
    runs their tasks as one graph (`SweepWork`), the k's at the same time where the executor
    runs tasks at the same time."""
    if ks:
      experiment = self.experiments[ks[0]]
      return experiment.directory.locked(
          lambda: self._locked(ks[1:], plans, dict(started, **{str(ks[0]): experiment.start()})),
          experiment.config.runtime.deterministic)
    work = SweepWork(self, {k: started[str(k)][0] for k in self.ks}, plans)
    tasks = {task for k in self.ks for task, _ in keyed(k, started[str(k)][1])}
    graph = []
    # In increasing k: a replicate's host is its first k with an unfinished level 0, so its
    # level 0 comes before any k that copies from it.
    for k in self.ks:
      for task, deps in keyed(k, started[str(k)][1], f"k={k}"):
        if work.copies(task):
          source = plans[task.task.seed].source
          source = Keyed(source, Task("level0", task.task.seed), f"k={source}")
          deps = tuple(dep for dep in (source,) if dep in tasks)
        graph.append((task, deps))
    EXECUTORS.get(self.experiments[self.ks[0]].config.runtime.executor)(work, graph)
    return {k: self.experiments[k].end() for k in self.ks}

  # ---- level 0 -------------------------------------------------------------------------------

  def _level_0(self, k: int, seed: int) -> BranchFiles:
    return BranchFiles(self.layouts[k].branch_dir(seed, 0, "ticket"))

  def _restart_if_past(self, seed: int, plan: Level0Plan) -> None:
    """A host's interrupted level 0 resumes from its checkpoint, which may be past a k whose
    θk is still to capture (a k added to the sweep since); it then restarts from θ0."""
    checkpoint = self._level_0(plan.host, seed).checkpoint
    if not plan.captures or not os.path.exists(checkpoint):
      return
    at = states.read(io, checkpoint).iteration
    late = [k for k in plan.captures if k < at]
    if late:
      self.log(f"replicate {seed}: level 0 of k={plan.host} was interrupted at iteration {at}, "
               f"past k={', '.join(map(str, late))}, whose θk is still to capture: it restarts "
               "from iteration 0")
      os.remove(checkpoint)

  def copy_level_0(self, seed: int, source: int, target: int) -> None:
    """Copies replicate `seed`'s finished level 0 (and nothing else) from experiment `source`
    to experiment `target` (whose directory's lock `run` holds)."""
    origin, files = self._level_0(source, seed), self._level_0(target, seed)
    if not origin.is_finished():
      raise UserError(f"replicate {seed}: level 0 of k={source} ({origin.directory}) is not "
                      f"finished; it cannot be copied to k={target}")
    if files.is_finished():
      return
    for name in LEVEL_0_FILES:
      io.copy_file(getattr(origin, name), getattr(files, name))
    if os.path.isdir(origin.tensorboard):
      io.copy_tree(origin.tensorboard, files.tensorboard)
    metrics = dict(io.read_json(origin.metrics), experiment_hash=self.layouts[target].experiment_hash)
    io.write_json(files.metrics, metrics)
    if os.path.exists(files.checkpoint):
      os.remove(files.checkpoint)
    self.log(f"replicate {seed} level  0 ticket: copied from k={source} to k={target}")


class SweepWork(Works):
  """The tasks of every k of a sweep as one graph (keyed by k): a k whose level 0 is a copy
  (`Level0Plan.copies`) copies it here, after its source's level 0, instead of training it."""

  def __init__(self, sweep: RewindSweep, works: Dict[int, Work], plans: Dict[int, Level0Plan]):
    super().__init__(works)
    self.sweep = sweep
    self.plans = plans

  def copies(self, task: Keyed) -> bool:
    return task.task.kind == "level0" and task.key in self.plans[task.task.seed].copies

  def run(self, task: Keyed) -> None:
    if self.copies(task):
      self.sweep.copy_level_0(task.task.seed, self.plans[task.task.seed].source, task.key)
    else:
      super().run(task)

  def remote(self, task: Keyed) -> Optional[Remote]:
    return None if self.copies(task) else super().remote(task)

  def checkpoint(self, task: Keyed) -> Optional[str]:
    return None if self.copies(task) else super().checkpoint(task)
