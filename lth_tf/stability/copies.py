"""The copies `lth stability` trains, as tasks an executor runs (`lth_tf.executors`).

Copy c of a pair (replicate, level, branch) is the branch's plan (`pair_plan`: built from the
experiment's files as the level loop builds it) trained in the data order of
`experiment.data_seeds(...)[c]`. A copy waits for its level: the level's mask and the branch
it copies, where `lth stability` trains the experiment first (`lth stability --flagfile=...`);
the two copies of a pair, and every pair, are independent of each other.

A copy reads the files `reads` lists, through its store: the directory, or in a remote task a
`lottery.store.MemoryStore` loaded with them (`lottery.tasks.run_detached`).
"""
import dataclasses
from typing import Dict, List, Optional, Tuple

from lth_tf import branches as branches_lib
from lth_tf import pruning
from lth_tf.config import ExperimentConfig
from lth_tf.errors import UserError
from lth_tf.lottery.branch_run import BranchRun
from lth_tf.lottery.level import level_context
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.lottery.tasks import DirectoryWork, FindSpec, Task, level_reads
from lth_tf.rundir import BranchFiles, ExperimentLayout, states

COPIES = 2
Pair = Tuple[int, int, str]  # (replicate seed, level, branch)


def data_seeds(seed: int, level: int, branch: str) -> Tuple[int, ...]:
  """The data-order seeds of the copies of one pair."""
  return tuple(branches_lib.derive_seed(seed, "stability", level, branch, copy)
               for copy in range(COPIES))


@dataclasses.dataclass(frozen=True)
class CopyTask:
  """Copy `copy` of the pair (seed, level, branch)."""
  seed: int
  level: int
  branch: str
  copy: int

  @property
  def pair(self) -> Pair:
    return (self.seed, self.level, self.branch)

  def __str__(self) -> str:
    return f"stability: replicate {self.seed} level {self.level} {self.branch} copy {self.copy}"


@dataclasses.dataclass(frozen=True)
class CopySpec:
  """What the copies of one experiment are trained from, besides the data: the experiment's
  `FindSpec` (a worker keeps one set of replicate models for both)."""
  find: FindSpec

  @property
  def config(self) -> ExperimentConfig:
    return self.find.config

  @property
  def layout(self) -> ExperimentLayout:
    return self.find.layout

  def key(self) -> Tuple:
    return self.find.key()

  def with_config(self, config: ExperimentConfig) -> "CopySpec":
    return CopySpec(self.find.with_config(config))

  def work(self, data, strategy, runner: BranchRun, replicates, keep: int) -> "CopyWork":
    return CopyWork(self, data, strategy, runner, replicates, keep)


def pair_plan(config: ExperimentConfig, layout: ExperimentLayout, store,
              replicate: ReplicateModel, batch, pair: Pair,
              rewind: Optional[states.TrainingState] = None) -> branches_lib.BranchPlan:
  """The plan of `pair`'s branch, from its level's context as the level loop builds it
  (`lottery.level`); level 0: the dense network (or a saved ticket's mask) from the rewind
  point, as a level's ticket starts.

  Raises:
    UserError: the plan no longer gives the mask the experiment's branch trained with.
  """
  seed, level, branch = pair
  rewind = rewind or states.read(store, layout.rewind_file(seed))
  dense = pruning.Mask.from_dict(store.read_arrays(
      BranchFiles(layout.branch_dir(seed, 0, "ticket")).mask))
  context = level_context(config, layout, store, replicate, batch, seed, level, rewind, dense)
  plan = branches_lib.plan_of(branch, context)
  trained = BranchFiles(layout.branch_dir(seed, level, branch)).mask
  if store.exists(trained) and pruning.Mask.from_dict(store.read_arrays(trained)) != plan.mask:
    raise UserError(f"replicate {seed} level {level} {branch}: its plan no longer gives the "
                    f"mask it trained with ({trained})")
  return plan


def train(runner: BranchRun, replicate: ReplicateModel, pair: Pair, plan: branches_lib.BranchPlan,
          files: BranchFiles, data_seed: int, log) -> None:
  """Trains one copy of `pair` from `plan` in the data order of `data_seed` into `files`
  (nothing if it is finished; from its checkpoint if it was interrupted)."""
  if runner.store.exists(files.metrics):
    return
  seed, level, branch = pair
  log(f"stability: replicate {seed} level {level} {branch}: "
      f"{files.directory.rstrip('/').rsplit('/', 1)[-1]}, data-order seed {data_seed}")
  replicate.set_data_order(data_seed)
  try:
    runner.run(replicate, seed, level, branch, plan, files=files)
  finally:
    replicate.set_data_order(seed)  # the replicate's own order for its next task


class CopyWork(DirectoryWork):
  """Trains the copies of `spec`'s experiment (`CopyTask`)."""

  def __init__(self, spec: CopySpec, data, strategy, runner: BranchRun,
               replicates: Optional[Dict[int, ReplicateModel]] = None, keep: int = 1,
               log=lambda line: None):
    super().__init__(spec, data, strategy, runner, replicates, keep)
    self.log = log

  def files(self, task: CopyTask) -> BranchFiles:
    return self.layout.stability_pair(*task.pair).copy(task.copy)

  def graph(self, pairs: List[Pair], waits=lambda task: ()) -> List[Tuple[CopyTask, tuple]]:
    """Every unfinished copy of `pairs`, each with what it waits for: `waits(task)`, the tasks
    of the experiment's own graph that it needs (its level's mask and branch)."""
    tasks = [CopyTask(*pair, copy) for pair in pairs for copy in range(COPIES)]
    return [(task, tuple(waits(task))) for task in tasks
            if not self.store.exists(self.files(task).metrics)]

  @staticmethod
  def needs(task: CopyTask) -> List[Task]:
    """The tasks of `lth find` whose files `task` reads."""
    needs = [Task("level0", task.seed)]
    if task.level:
      needs += [Task("mask", task.seed, task.level), Task("branch", task.seed, task.level,
                                                          task.branch)]
    return needs

  def reads(self, task: CopyTask) -> List[str]:
    seed, level, branch = task.pair
    paths = [self.layout.rewind_file(seed),
             BranchFiles(self.layout.branch_dir(seed, 0, "ticket")).mask,
             BranchFiles(self.layout.branch_dir(seed, level, branch)).mask]
    if level:
      paths += level_reads(self.config, self.layout, seed, level)
    return list(dict.fromkeys(paths))

  def plan(self, pair: Pair) -> branches_lib.BranchPlan:
    return pair_plan(self.config, self.layout, self.store, self.replicate(pair[0]),
                     self.data.batch, pair)

  def run(self, task: CopyTask) -> None:
    """Trains copy `task` (nothing if it is finished; from its checkpoint if it was
    interrupted)."""
    files = self.files(task)
    if not self.store.exists(files.metrics):
      train(self.runner, self.replicate(task.seed), task.pair, self.plan(task.pair), files,
            data_seeds(*task.pair)[task.copy], self.log)

  def checkpoint(self, task: CopyTask) -> str:
    return self.files(task).checkpoint
