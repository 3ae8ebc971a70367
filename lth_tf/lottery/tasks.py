"""The trainings of an experiment as tasks, and what each one needs: the work an executor
(`lth_tf.executors`) runs, here or on other machines.

Per replicate (seed), `lth find` is:
- `level0`: the dense training from θ0 (or a saved ticket), capturing θk, the rewind point (and
  θj of the rewind sweep's other experiments that share it);
- `mask` of level L >= 1: the level's ticket mask, pruned from its source (the level-(L-1)
  ticket; the dense network in one-shot mode) and written as the ticket's `mask.npz`;
- `branch` of level L: one branch (ticket, reinit, random_prune, ...) trained from the plan the
  level's context gives it (`lottery.level`).

Level L's mask waits for its source and level 0; a level's branches wait for its mask. Nothing
else orders them: the replicates, and the branches of a level, are independent. Run one after
another in `graph` order, the tasks train exactly what the level loop always trained.

A task reads the files `reads` lists, through its store, and writes through it: the experiment
directory where it runs in the directory's own process, a `lottery.store.MemoryStore` loaded
with those files where it runs as a remote task. `FindSpec` is everything else a remote task
needs, and travels with it (it holds no TensorFlow object).

What an executor (`lth_tf.executors`) runs is a `Work`: `FindWork` here, the copies of
`lth stability` (`stability.copies`), and several of them run as one graph (`Works`: the
experiments of a rewind sweep, an experiment and its stability copies).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, NamedTuple, Optional, Tuple

from lth_tf import branches as branches_lib
from lth_tf import distribute, pruning
from lth_tf.config import ExperimentConfig
from lth_tf.lottery import early_bird
from lth_tf.lottery.branch_run import BranchRun
from lth_tf.lottery.directory import RunDirectory
from lth_tf.lottery.store import MemoryStore, apply
from lth_tf.lottery.level import level_context
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.rundir import BranchFiles, ExperimentLayout, states
from lth_tf.training import get_weights, optimizers


@dataclasses.dataclass(frozen=True)
class Task:
  """One training (or a level's mask) of replicate `seed`."""
  kind: str  # "level0", "mask" or "branch"
  seed: int
  level: int = 0
  branch: str = "ticket"

  def __str__(self) -> str:
    if self.kind == "level0":
      return f"replicate {self.seed} level 0"
    if self.kind == "mask":
      return f"replicate {self.seed} level {self.level} mask"
    return f"replicate {self.seed} level {self.level} {self.branch}"


class Remote(NamedTuple):
  """What a remote worker runs a task from: `run_detached(spec, data, task, inputs, ...)`."""
  spec: object  # has `key()`, `with_config(config)`, and `work(...)`, which builds its Work
  data: object
  task: object
  inputs: Dict[str, Dict]


class Work:
  """The trainings of one command, as an executor runs them (`lth_tf.executors`).

  In the process that runs the command, whose store is the experiment directory:
  - `run(task)` runs a task here;
  - `remote(task)` is what a remote worker runs it from (`Remote`), or None for a task that
    runs where the directory is (a copy of files);
  - `checkpoint(task)` is the checkpoint file of the training it runs (None: none);
  - `write(task, written, outputs)` writes what a remote run of it returned, as it would have
    written here; `apply(written)` writes files only (what a task wrote before a checkpoint);
  - `writes` (this process writes the directory: the chief) and `where` (what runs now, for
    the message of an interrupted run).
  """
  config: ExperimentConfig
  detached = None  # how a remote worker runs a task: `run_detached`

  def run(self, task) -> None:
    raise NotImplementedError

  def remote(self, task) -> Optional[Remote]:
    raise NotImplementedError

  def checkpoint(self, task) -> Optional[str]:
    raise NotImplementedError

  def write(self, task, written, outputs) -> None:
    raise NotImplementedError

  def apply(self, written) -> None:
    raise NotImplementedError

  @property
  def writes(self) -> bool:
    raise NotImplementedError

  @property
  def where(self) -> str:
    raise NotImplementedError

  @where.setter
  def where(self, text: str) -> None:
    raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Keyed:
  """A task of one part of `Works`."""
  key: object
  task: object
  # How the part is named in messages ("k=20"; "" for none); not part of the task's identity.
  label: str = dataclasses.field(default="", compare=False)

  def __str__(self) -> str:
    return f"{self.label}: {self.task}" if self.label else str(self.task)


class Works(Work):
  """Several works run as one graph, whose tasks are `Keyed` by the part they belong to; a
  task of one part may wait for a task of another."""

  def __init__(self, parts: Dict[object, Work]):
    self.parts = dict(parts)
    first = next(iter(self.parts.values()))
    self.config = first.config
    self.detached = first.detached

  def run(self, task: Keyed) -> None:
    self.parts[task.key].run(task.task)

  def remote(self, task: Keyed) -> Optional[Remote]:
    return self.parts[task.key].remote(task.task)

  def checkpoint(self, task: Keyed) -> Optional[str]:
    return self.parts[task.key].checkpoint(task.task)

  def write(self, task: Keyed, written, outputs) -> None:
    self.parts[task.key].write(task.task, written, outputs)

  def apply(self, written) -> None:
    next(iter(self.parts.values())).apply(written)  # each part's store is the directory's

  @property
  def writes(self) -> bool:
    return all(part.writes for part in self.parts.values())

  @property
  def where(self) -> str:
    return next(iter(self.parts.values())).where

  @where.setter
  def where(self, text: str) -> None:
    for part in self.parts.values():
      part.where = text


def keyed(key, graph, label: str = ""):
  """`graph` (task, deps) with every task and dependency `Keyed` by `key`."""
  return [(Keyed(key, task, label), tuple(Keyed(key, dep, label) for dep in deps))
          for task, deps in graph]


@dataclasses.dataclass(frozen=True)
class FindSpec:
  """What the tasks of one `lth find` experiment are run from, besides the data.

  Attributes:
    config: the experiment, its engine resolved.
    layout: its directory layout.
    branches: the branches every level >= 1 trains, in order.
    ticket: the saved ticket level 0 starts from, or None.
    captures: per seed, the extra rewind points its level 0 captures: iteration j -> the
      rewind file of the rewind sweep's experiment with k = j (`share_level_0`).
  """
  config: ExperimentConfig
  layout: ExperimentLayout
  branches: Tuple[str, ...]
  ticket: object = None
  captures: Tuple[Tuple[int, Tuple[Tuple[int, str], ...]], ...] = ()

  def key(self) -> Tuple:
    """Names the experiment (a remote worker keeps one replicate model per key)."""
    return (self.layout.experiment_hash, self.layout.directory, self.branches,
            self.captures, repr(self.config))

  def captures_of(self, seed: int) -> Dict[int, str]:
    return dict(dict(self.captures).get(seed, ()))

  def with_config(self, config: ExperimentConfig) -> "FindSpec":
    return dataclasses.replace(self, config=config)

  def work(self, data, strategy, runner: BranchRun, replicates, keep: int) -> "FindWork":
    return FindWork(self, data, strategy, runner, replicates, keep)


class DirectoryWork(Work):
  """The tasks of one experiment directory, run through `runner`'s store on replicate models
  kept between tasks; a command's work (`FindWork`, `stability.copies.CopyWork`,
  `transfer.tasks.TransferWork`) says what its tasks are, read and run.

  Args:
    spec: the experiment (`FindSpec`, or another spec with `config` and `layout`).
    data: its loaded splits.
    strategy: the `tf.distribute` strategy the models are built under.
    runner: trains the branches and writes (or returns) their files.
    replicates: where the replicate models last built are kept (seed -> model, oldest first);
      a remote worker passes the one it keeps between tasks.
    keep: how many replicate models are kept: one where the tasks come replicate by replicate
      (the local executor), more on a remote worker, which gets the tasks of several
      replicates in turn (each model is built and its steps traced once, not once per task).
  """

  def __init__(self, spec, data, strategy, runner: BranchRun,
               replicates: Optional[Dict[int, ReplicateModel]] = None, keep: int = 1):
    self.spec = spec
    self.config = spec.config
    self.layout = spec.layout
    self.data = data
    self.strategy = strategy
    self.runner = runner
    self.store = runner.store
    self._replicates = {} if replicates is None else replicates
    self._keep = keep
    self.detached = run_detached  # how a remote worker runs one of these tasks

  def replicate(self, seed: int) -> ReplicateModel:
    """Replicate `seed`'s model, kept for the next tasks of the replicate (every task loads its
    own start state into it, so a kept model trains exactly as a new one)."""
    if seed not in self._replicates:
      while len(self._replicates) >= self._keep:  # released before the next one is built
        del self._replicates[next(iter(self._replicates))]
      self._replicates[seed] = ReplicateModel(self.config, self.data, seed, self.strategy)
    return self._replicates[seed]

  def reads(self, task) -> List[str]:
    """The files `task` reads through its store (those that exist when it starts)."""
    del task
    return []

  def remote(self, task) -> Remote:
    return Remote(self.spec, self.data, task, read_inputs(self.store, self.reads(task)))

  def write(self, task, written, outputs) -> None:
    """Writes what a remote run of `task` returned (`run_detached`), as it would have here."""
    self.apply(written)
    for output in outputs:
      self.runner.commit(output)

  def apply(self, written) -> None:
    apply(self.store, written)

  @property
  def writes(self) -> bool:
    return self.runner.writes

  @property
  def where(self) -> str:
    return self.runner.directory.where

  @where.setter
  def where(self, text: str) -> None:
    self.runner.directory.where = text


def level_reads(config: ExperimentConfig, layout: ExperimentLayout, seed: int,
                level: int) -> List[str]:
  """The files level `level` (>= 1) of replicate `seed` plans its branches from
  (`lottery.level`): the rewind point, the source's trained weights and mask, the level's
  ticket mask."""
  one_shot = config.pruning.mode == "one_shot"
  source = BranchFiles(layout.branch_dir(seed, 0 if one_shot else level - 1, "ticket"))
  paths = [layout.rewind_file(seed), source.final_weights]
  if not one_shot:
    paths.append(source.mask)
  paths.append(BranchFiles(layout.branch_dir(seed, level, "ticket")).mask)
  return paths


class FindWork(DirectoryWork):
  """The tasks of `lth find` (`Task`): level 0, each level's mask and its branches."""

  def __init__(self, spec: FindSpec, data, strategy, runner: BranchRun,
               replicates: Optional[Dict[int, ReplicateModel]] = None, keep: int = 1):
    super().__init__(spec, data, strategy, runner, replicates, keep)
    self._level: Tuple[Optional[Tuple[int, int]], Optional[branches_lib.BranchContext]] = (
        None, None)  # the last level's context: its mask and branches share one

  # ---- the graph ----------------------------------------------------------------------------

  def _files(self, seed: int, level: int, branch: str) -> BranchFiles:
    return BranchFiles(self.layout.branch_dir(seed, level, branch))

  def _done(self, task: Task) -> bool:
    if task.kind == "level0":
      return (self.store.exists(self._files(task.seed, 0, "ticket").metrics)
              and self.store.exists(self.layout.rewind_file(task.seed)))
    if task.kind == "mask":
      return self.store.exists(self._files(task.seed, task.level, "ticket").mask)
    return self.store.exists(self._files(task.seed, task.level, task.branch).metrics)

  def graph(self, seeds) -> List[Tuple[Task, Tuple[Task, ...]]]:
    """Every unfinished task of `seeds` with the unfinished tasks it waits for, in the order
    the level loop trains them (replicate by replicate, level by level)."""
    levels = self.config.pruning.levels
    one_shot = self.config.pruning.mode == "one_shot"
    out = []
    for seed in seeds:
      level0 = Task("level0", seed)
      level_tasks = [[level0]]
      for level in range(1, levels + 1):
        branch_tasks = [Task("branch", seed, level, b) for b in self.spec.branches]
        level_tasks.append([Task("mask", seed, level)] + branch_tasks)
      for level, tasks in enumerate(level_tasks):
        if all(self._done(t) for t in tasks if t.kind != "mask"):
          continue  # a finished level: nothing of it runs
        for task in tasks:
          if self._done(task):
            continue
          if task.kind == "level0":
            deps = ()
          elif task.kind == "mask":
            source = level0 if one_shot or level == 1 else Task("branch", seed, level - 1, "ticket")
            deps = (level0, source)
          else:
            deps = (level0, Task("mask", seed, level))
          out.append((task, tuple(d for d in dict.fromkeys(deps) if not self._done(d))))
    return out

  def checkpoint(self, task: Task) -> Optional[str]:
    """The checkpoint file of the branch `task` trains (None for a mask)."""
    if task.kind == "mask":
      return None
    return self._files(task.seed, task.level, task.branch).checkpoint

  def reads(self, task: Task) -> List[str]:
    """The files `task` reads through its store (those that exist when it starts)."""
    if task.kind == "level0":
      return []
    return level_reads(self.config, self.layout, task.seed, task.level)

  # ---- running a task -----------------------------------------------------------------------

  def _dense_mask(self, replicate: ReplicateModel) -> pruning.Mask:
    """The mask level 0 trains under: all ones, or the saved ticket's."""
    if self.spec.ticket is not None:
      return self.spec.ticket.mask
    return pruning.Mask.ones_like(pruning.prunable_weights(replicate.model))

  def run(self, task: Task) -> None:
    {"level0": self._level0, "mask": self._mask, "branch": self._branch}[task.kind](task)

  def _level0(self, task: Task) -> None:
    seed = task.seed
    replicate = self.replicate(seed)
    dense_mask = self._dense_mask(replicate)
    k = self.config.pruning.rewind_iteration
    # θk of this experiment, and of the rewind sweep's experiments this level 0 is shared with.
    captures = self.spec.captures_of(seed)
    captures[k] = self.layout.rewind_file(seed)

    def capture_rewind(iteration: int) -> None:
      path = captures.get(iteration)
      if path is not None and not self.store.exists(path):
        states.write(self.store, path, states.TrainingState(
            get_weights(replicate.model), optimizers.get_state(replicate.trainer.optimizer)))

    if self.spec.ticket is None:
      first = branches_lib.BranchPlan(dense_mask, replicate.initial_weights, None, 0)
    else:
      # Level 0 is the saved ticket: its mask and weights, from iteration k, fresh optimizer.
      first = branches_lib.BranchPlan(dense_mask, self.spec.ticket.rewind_weights, None, k)
    # With an early-bird threshold: the mask distances of the dense training, and its stop.
    watch = early_bird.watch_for(self.config, replicate, self.data.batch, seed, dense_mask)

    def on_iteration(iteration: int, rows) -> bool:
      capture_rewind(iteration)  # first: a stop at or after k finds θk captured
      return watch is not None and watch(iteration, rows)

    self.runner.run(replicate, seed, 0, "ticket", first, on_iteration,
                    boundaries=tuple(sorted(captures)))

  def _context(self, task: Task) -> branches_lib.BranchContext:
    """Level `task.level`'s context, built once for the tasks of the level that run here."""
    replicate = self.replicate(task.seed)
    self.runner.directory.where = f"during {task}"
    key = (task.seed, task.level)
    if self._level[0] != key:
      rewind = states.read(self.store, self.layout.rewind_file(task.seed))
      self._level = (key, level_context(self.config, self.layout, self.store, replicate,
                                          self.data.batch, task.seed, task.level, rewind,
                                          self._dense_mask(replicate)))
    return self._level[1]

  def _mask(self, task: Task) -> None:
    mask = self._context(task).mask
    path = self._files(task.seed, task.level, "ticket").mask
    if not self.store.exists(path):
      self.store.write_arrays(path, mask.to_arrays())

  def _branch(self, task: Task) -> None:
    context = self._context(task)
    self.runner.run(self.replicate(task.seed), task.seed, task.level, task.branch,
                    branches_lib.plan_of(task.branch, context))


def read_inputs(store, paths) -> Dict[str, Dict]:
  """The files of `paths` that exist, as a remote task gets them."""
  return {path: store.read_arrays(path) for path in paths if store.exists(path)}


# A worker process's last experiment: its spec's key, strategy and replicate models.
_DETACHED: Dict[str, object] = {}
# How many replicate models a worker process keeps (`FindWork`'s `keep`).
DETACHED_REPLICATES = 4


def run_detached(spec, data, task, inputs: Dict[str, Dict], checkpoints):
  """Runs `task` away from the experiment directory (a remote worker), in the work `spec`
  builds (`FindSpec.work`): through a `MemoryStore` holding `inputs` (`Work.remote`), with
  `checkpoints(store)` (the `BranchRun` checkpoint interface, given the task's store) for its
  training's checkpoints. Returns what it wrote and its trained branches, for the directory's
  writer (`Work.write`). A process keeps the replicate models of the last tasks it ran, for
  the next tasks of the same experiment and replicates."""
  key = spec.key()
  if _DETACHED.get("key") != key:
    if spec.config.runtime.deterministic:
      distribute.enable_determinism()
    _DETACHED.clear()
    _DETACHED.update(key=key, strategy=distribute.make_strategy(spec.config.runtime),
                     replicates={})
  store = MemoryStore(inputs)
  outputs: List = []
  runner = BranchRun(spec.config, RunDirectory(spec.layout, False, store), lambda line: None,
                     lambda: None, checkpoints=checkpoints(store), finish=outputs.append)
  spec.work(data, _DETACHED["strategy"], runner, _DETACHED["replicates"],
            DETACHED_REPLICATES).run(task)
  return store.written, outputs
