"""Trains one branch of a replicate from its plan, resumably, and writes the branch's files.

Used by the level loop (`lth find`, `lth train`) and by `lth transfer`. A finished branch (its
metrics exist) is skipped; an interrupted one resumes from its last checkpoint and ends exactly
where an uninterrupted run would. Training a branch ends in a `BranchOutput`, which `commit`
writes: at once where the branch trained in the directory's own process, or, for a branch that
trained as a remote task (`lth_tf.executors`), by the directory's one writer when the task
returns it.
"""
import dataclasses
import os
import time
from typing import Callable, Dict, List, Optional

import numpy as np

from lth_tf import io, pruning
from lth_tf.config import ExperimentConfig
from lth_tf.errors import TrainingDiverged
from lth_tf.branches import BranchPlan
from lth_tf.lottery import results
from lth_tf.lottery.directory import RunDirectory
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.rundir import BranchFiles, states
from lth_tf.training import get_weights, optimizers, set_weights


@dataclasses.dataclass
class BranchOutput:
  """What a trained branch leaves: the files `commit` writes (final weights, curve, metrics) and
  the one line logged for it."""
  files: BranchFiles
  where: str  # "replicate 0 level 1 branch reinit"
  final_weights: Dict[str, np.ndarray]
  curve: List[Dict]
  metrics: Dict
  line: str


class FileCheckpoints:
  """A branch's checkpoint as a file in its directory, written by the chief only (`writes`)."""

  def __init__(self, writes: bool):
    self.writes = writes

  def read(self, files: BranchFiles) -> Optional[states.TrainingState]:
    return states.read(io, files.checkpoint) if os.path.exists(files.checkpoint) else None

  def write(self, files: BranchFiles, state: states.TrainingState) -> None:
    if self.writes:
      states.write(io, files.checkpoint, state)

  def clear(self, files: BranchFiles) -> None:
    if self.writes and os.path.exists(files.checkpoint):
      os.remove(files.checkpoint)


class BranchRun:
  """Trains branches into `directory`, then calls `on_finished()` (the summary) after each.

  Args:
    config: the experiment's config (training length, evaluation and checkpoint period).
    directory: the experiment directory.
    log: where the one line per finished branch goes.
    on_finished: called after every finished branch.
    checkpoints: where a training's checkpoints go and an interrupted one's is read
      (`FileCheckpoints` by default).
    finish: what is done with a trained branch's `BranchOutput` (`commit` by default; a remote
      task returns it to the directory's writer instead).
  """

  def __init__(self, config: ExperimentConfig, directory: RunDirectory,
               log: Callable[[str], None], on_finished: Callable[[], None],
               checkpoints=None, finish: Optional[Callable[[BranchOutput], None]] = None):
    self.config = config
    self.directory = directory
    self.store = directory.store
    self.writes = directory.writes
    self.log = log
    self.on_finished = on_finished
    self.checkpoints = checkpoints or FileCheckpoints(self.writes)
    self.finish = finish or self.commit

  def files(self, seed: int, level: int, branch: str) -> BranchFiles:
    return BranchFiles(self.directory.layout.branch_dir(seed, level, branch))

  # ---- one branch ---------------------------------------------------------------------------

  def run(self, replicate: ReplicateModel, seed: int, level: int, branch: str, plan: BranchPlan,
          on_iteration: Optional[Callable[[int, List[Dict]], bool]] = None,
          boundaries=(), files: Optional[BranchFiles] = None) -> None:
    """Trains `branch` from `plan` unless it is finished.

    `on_iteration(i, rows)` is called at the start iteration (with the rows of a resumed
    checkpoint, or none) and at every evaluation point and extra boundary (with the curve so
    far, whose last row it may annotate); True at an evaluation point ends the training there
    (an early-bird draw). No checkpoint is written there, so a run killed before the branch's
    files are written trains to that point again and ends alike. `files` are where the
    branch's files go (default: its directory in the level, `files(seed, level, branch)`).
    """
    files = files or self.files(seed, level, branch)
    if self.store.exists(files.metrics):
      return
    started = time.time()
    self.directory.where = f"during replicate {seed} level {level} branch {branch}"
    replicate.load_state(plan.start_weights, plan.mask, plan.optimizer_state)
    self._write_start(replicate, files, plan.mask)
    curve, start = [], plan.start_iteration
    checkpoint = self.checkpoints.read(files)
    if checkpoint is not None:
      set_weights(replicate.model, checkpoint.weights)
      optimizers.set_state(replicate.trainer.optimizer, checkpoint.optimizer)
      curve, start = checkpoint.curve, checkpoint.iteration
    if on_iteration is not None:
      on_iteration(start, curve)

    def on_boundary(iteration: int, rows) -> bool:
      if on_iteration is not None and on_iteration(iteration, rows):
        return True
      if (iteration < self.config.training.iterations
          and iteration % self.config.training.eval_every == 0):
        self.checkpoints.write(files, states.TrainingState(
            get_weights(replicate.model), optimizers.get_state(replicate.trainer.optimizer),
            iteration, rows))
      return False

    label = f"replicate {seed} level {level} {branch}"
    try:
      result = replicate.trainer.fit(start, curve, boundaries, on_boundary, description=label)
    except TrainingDiverged as error:
      record = {"error": str(error), "replicate": seed, "level": level, "branch": branch}
      if self.writes:
        io.write_json(files.error, record)
      diverged = TrainingDiverged(f"replicate {seed} level {level} {branch}: {error} "
                                  f"(recorded in {files.error})")
      diverged.record = (files.error, record)  # for the writer of a remote task's directory
      raise diverged from None
    row = results.row(seed, level, branch, plan.mask, result)
    self.finish(BranchOutput(
        files, f"replicate {seed} level {level} branch {branch}", get_weights(replicate.model), result.curve, results.metrics(
            replicate.model, seed, level, branch, plan.mask, result,
            self.directory.layout.experiment_hash, self.config.training.batch_size,
            time.time() - started), results.format_row(row)))

  def commit(self, output: BranchOutput) -> None:
    """Writes a trained branch's files (metrics last: they mark it finished), removes its
    checkpoint, logs its line and calls `on_finished`."""
    files = output.files
    self.store.write_arrays(files.final_weights, output.final_weights)
    self.store.write_json(files.curve_json, output.curve)
    if self.writes:
      io.write_text(files.curve_csv, results.curve_csv(output.curve))
      results.write_tensorboard(files.tensorboard, output.curve)
    self.store.write_json(files.metrics, output.metrics)
    self.checkpoints.clear(files)
    self.directory.where = f"after {output.where}"
    self.log(output.line)
    self.on_finished()

  # ---- branch files -------------------------------------------------------------------------

  def _write_start(self, replicate: ReplicateModel, files: BranchFiles, mask: pruning.Mask) -> None:
    """The mask and start weights of a branch whose start state is loaded; each one that a
    killed run did not write is written again (the same values: the plan is deterministic)."""
    if not self.store.exists(files.mask):
      self.store.write_arrays(files.mask, mask.to_arrays())
    if not self.store.exists(files.start_weights):
      self.store.write_arrays(files.start_weights, get_weights(replicate.model))
