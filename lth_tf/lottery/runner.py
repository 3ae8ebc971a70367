"""The level loop of iterative magnitude pruning: train, prune, rewind to θk, repeat; resumable.

Level 0 trains the dense network from θ0 and captures θk (weights and optimizer state at the
rewind iteration k). Level L prunes the previous level's trained ticket (iterative) or the
dense network (one-shot) and trains each enabled branch from its plan, starting at
iteration k. Finished branches are skipped; an interrupted branch resumes from its last
checkpoint and ends exactly where an uninterrupted run would.
"""
import contextlib
import csv
import io as _io
import json
import os
import shutil
import signal
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from lth_tf import data as data_lib
from lth_tf import compute, distribute, io, models, precision, pruning, user_code
from lth_tf.compat import keras, tf
from lth_tf.config import ExperimentConfig, validate
from lth_tf.errors import Interrupted, TrainingDiverged, UserError, WriteError
from lth_tf.lottery.branches import BRANCHES, BranchPlan, LevelContext
from lth_tf.rundir import (SUMMARY_KEYS, BranchFiles, ExperimentLayout, check_data_record,
                           record_data)
from lth_tf.lottery.store import ArtifactStore
from lth_tf.training import Trainer, TrainResult, get_weights, optimizers, set_weights
from lth_tf.training.batched import BatchedTrainer, stack_layers



def enabled_branches(config: ExperimentConfig) -> Tuple[str, ...]:
  names = ["ticket"]
  if config.pruning.reinit:
    names.append("reinit")
  if config.pruning.random_prune:
    names.append("random_prune")
  return tuple(names)


class ReplicateModel:
  """One wrapped model and its trainer, reused by every branch of a replicate."""

  def __init__(self, config: ExperimentConfig, data: data_lib.Splits, seed: int,
               strategy: tf.distribute.Strategy):
    self.config = config
    self.data = data
    self.strategy = strategy
    with strategy.scope(), precision.policy(config.training.mixed_precision):
      keras.utils.set_random_seed(seed)
      self.model = pruning.wrap_model(self.build_plain(seed))
      self.trainer = Trainer(self.model, data, config.training, config.runtime, seed, strategy)
    self.initial_weights = get_weights(self.model)
    self.fresh_optimizer = optimizers.get_state(self.trainer.optimizer)
    self.kinds = pruning.layer_kinds(self.model)
    self.seed = seed
    self._batched: Dict[int, BatchedTrainer] = {}

  def batched_trainer(self, size: int) -> BatchedTrainer:
    """A trainer for `size` branches of this replicate at once (same data order), reused."""
    if size not in self._batched:
      self._batched[size] = BatchedTrainer(self.model, self.data, self.config.training,
                                           self.config.runtime, seeds=[self.seed] * size,
                                           groups=self.config.runtime.variant_groups)
    return self._batched[size]

  def build_plain(self, seed: int) -> keras.Model:
    return models.build(self.config.model, self.data.input_shape, self.data.num_classes, seed)

  def fresh_weights(self, seed: int) -> Dict[str, np.ndarray]:
    """Weights of a newly initialised network (the re-init control)."""
    with self.strategy.scope(), precision.policy(self.config.training.mixed_precision):
      return get_weights(self.build_plain(seed))

  def load_state(self, weights, mask: pruning.Mask, optimizer_state) -> None:
    """Sets weights, the frozen mask, and the optimizer state (slots of pruned weights zeroed)."""
    set_weights(self.model, weights)
    pruning.set_mask(self.model, mask)
    optimizers.set_state(self.trainer.optimizer,
                         self.fresh_optimizer if optimizer_state is None else optimizer_state)
    for _, weight, mask_var in pruning.mask_pairs(self.model):
      for slot in optimizers.slots_of(self.trainer.optimizer, weight):
        slot.assign(slot * mask_var)


class LotteryExperiment:
  """Runs (or resumes) every replicate, level and branch of one experiment."""

  _writes_summary = True  # False in a worker process of `run` (its parent writes the summary)
  _where = ""  # "during/after <branch>", for the message of an interrupted run

  def __init__(self, config: ExperimentConfig, flags_text: str = "",
               log: Callable[[str], None] = print):
    config = self.config = validate(user_code.pin_sources(config))
    self.layout = ExperimentLayout.for_config(config)
    self.flags_text = flags_text
    self.log = log
    self.strategy = distribute.make_strategy(config.runtime)
    self.writes = distribute.is_chief(self.strategy)
    self.store = ArtifactStore(self.writes)
    self.branches = enabled_branches(config)
    models.check(config.model)
    pruning.STRATEGIES.get(config.pruning.strategy)
    self.ticket = _load_ticket(config)
    self.data = data_lib.load(config.dataset, config.runtime.data_dir)
    self._preflight()

  def _preflight(self) -> None:
    """Everything that can be checked before any file is written or any step is trained."""
    if self.config.training.batch_size > len(self.data.y_train):
      raise UserError(f"batch_size {self.config.training.batch_size} exceeds the "
                      f"{len(self.data.y_train)} training examples")
    if distribute.uses_replica_steps(self.strategy):
      distribute.check_batch_size(self.strategy, self.config.training.batch_size,
                                  self.config.runtime.strategy)
    with self.strategy.scope(), precision.policy(self.config.training.mixed_precision):
      model = pruning.wrap_model(models.build(
          self.config.model, self.data.input_shape, self.data.num_classes, seed=0))
    kinds = pruning.layer_kinds(model)
    pruning.global_layers(self.config.pruning, kinds)
    if self.ticket is not None:
      from lth_tf import tickets  # pylint: disable=import-outside-toplevel
      tickets.apply(self.ticket, model)
    shapes = pruning.prunable_shapes(model)
    for seed in self.config.runtime.seeds:
      for level in range(1, self.config.pruning.levels + 1):
        for branch in self.branches:
          saved = BranchFiles(self.layout.branch_dir(seed, level, branch)).mask
          if os.path.exists(saved):
            _check_readable(saved, os.path.dirname(saved), "branch")
            pruning.Mask.from_dict(io.read_arrays(saved)).check_fits(shapes)
      self._check_resumable(seed)
    _check_writable(self.config.runtime.root_dir)
    check_data_record(self.layout.data_file, self.data, self.layout.directory)

  def _check_resumable(self, seed: int) -> None:
    """What a resume of replicate `seed` reads before it trains again: every finished branch's
    metrics, the rewind point, and the mask and trained weights the next level prunes."""
    one_shot = self.config.pruning.mode == "one_shot"
    for _, level, branch in (slot for slot in self.branch_slots() if slot[0] == seed):
      files = BranchFiles(self.layout.branch_dir(seed, level, branch))
      if os.path.exists(files.metrics):
        _check_readable(files.metrics, files.directory, "branch")
      if level == 0 or branch != "ticket" or os.path.exists(files.mask):
        continue
      source = BranchFiles(self.layout.branch_dir(seed, 0 if one_shot else level - 1, "ticket"))
      if os.path.exists(source.metrics):
        for path in (source.final_weights,) if one_shot else (source.final_weights, source.mask):
          _check_readable(path, source.directory, "branch")
    if os.path.exists(BranchFiles(self.layout.branch_dir(seed, 0, "ticket")).metrics):
      _check_readable(self.layout.rewind_file(seed), self.layout.replicate_dir(seed), "replicate")

  def run(self) -> List[Dict]:
    """Trains what is not finished yet and returns the summary rows."""
    if self.config.runtime.deterministic:
      tf.config.experimental.enable_op_determinism()
    # Only the chief writes, so only the chief locks the directory.
    lock = io.DirectoryLock(self.layout.directory) if self.writes else contextlib.nullcontext()
    with lock:
      if self.writes:
        io.remove_temporary_files(self.layout.directory)
      try:
        return self._run_locked(lock)
      except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM turned into an Interrupted
        if self.writes:  # what the killed workers were writing
          io.remove_temporary_files(self.layout.directory)
        raise Interrupted(getattr(interrupt, "signum", signal.SIGINT), self._where) from None

  def _run_locked(self, lock) -> List[Dict]:
    self._write_config()
    if self.writes:
      record_data(self.layout.data_file, self.data, self.layout.directory)
    seeds = self.config.runtime.seeds
    workers = min(self.config.runtime.replicate_processes, len(seeds))
    if workers > 1:
      from lth_tf.lottery import processes  # pylint: disable=import-outside-toplevel
      self._where = f"during replicates {', '.join(map(str, seeds))} (worker processes)"
      processes.run_replicates(self.config, seeds, workers,
                               lock.fileno() if self.writes else None)
    else:
      for seed in seeds:
        self._run_replicate(seed)
    return self.write_summary()

  def run_replicate(self, seed: int) -> None:
    """Trains (or resumes) one replicate without taking the directory lock or writing the
    summary: the work of a worker process of `run` (`lth_tf.lottery.processes`), whose
    parent holds the lock and writes the summary."""
    if self.config.runtime.deterministic:
      tf.config.experimental.enable_op_determinism()
    self._writes_summary = False
    self._run_replicate(seed)

  # ---- experiment files ---------------------------------------------------------------------

  def _write_config(self) -> None:
    if not self.writes:
      return
    resolved = self.config.to_dict()
    resolved["experiment_hash"] = self.layout.experiment_hash
    if os.path.exists(self.layout.config_file):
      # Fields added since that run take their defaults, exactly as in the hash.
      try:
        previous = io.read_json(self.layout.config_file)
        previous.pop("experiment_hash", None)
        previous = ExperimentConfig.from_dict(previous)
      except (UserError, AttributeError, TypeError, ValueError) as error:
        raise UserError(f"{self.layout.config_file} is not a readable experiment config "
                        f"({error}); delete it and rerun to write it again from these flags "
                        "(the directory is named by their hash)") from None
      for part in ExperimentConfig.SCIENTIFIC_PARTS:
        if getattr(previous, part) != getattr(self.config, part):
          raise UserError(f"{self.layout.config_file} describes a different experiment ({part})")
    io.write_json(self.layout.config_file, resolved)
    if self.flags_text:
      io.write_text(self.layout.flags_file, self.flags_text)

  def branch_slots(self):
    """(seed, level, branch) of every branch the experiment trains, in summary order."""
    for seed in self.config.runtime.seeds:
      for level in range(self.config.pruning.levels + 1):
        for branch in self.branches if level else ("ticket",):
          yield seed, level, branch

  def finished_metrics(self) -> List[Dict]:
    """The metrics of every finished branch, in summary order."""
    out = []
    for seed, level, branch in self.branch_slots():
      files = BranchFiles(self.layout.branch_dir(seed, level, branch))
      if self.store.exists(files.metrics):
        out.append(self.store.read_json(files.metrics))
    return out

  def summary_rows(self) -> List[Dict]:
    return [summary_row(metrics) for metrics in self.finished_metrics()]

  def _branch_finished(self) -> None:
    """Keeps the summary current after each branch, except in a worker process of `run`."""
    if self._writes_summary:
      self.write_summary()

  def write_summary(self) -> List[Dict]:
    metrics = self.finished_metrics()
    rows = [summary_row(m) for m in metrics]
    if self.writes:
      io.write_json(self.layout.summary_file, rows)
      io.write_json(self.layout.compute_file, compute_summary(metrics))
    return rows

  # ---- levels -------------------------------------------------------------------------------

  def _run_replicate(self, seed: int) -> None:
    self._where = f"during replicate {seed}"
    replicate = ReplicateModel(self.config, self.data, seed, self.strategy)
    dense_mask = pruning.Mask.ones_like(pruning.prunable_weights(replicate.model))
    k = self.config.pruning.rewind_iteration
    rewind_file = self.layout.rewind_file(seed)

    def capture_rewind(iteration: int) -> None:
      if iteration == k and not self.store.exists(rewind_file):
        state = {f"w/{n}": v for n, v in get_weights(replicate.model).items()}
        state.update(optimizers.get_state(replicate.trainer.optimizer))
        self.store.write_arrays(rewind_file, state)

    if self.ticket is None:
      first = BranchPlan(dense_mask, replicate.initial_weights, None)
      first_iteration = 0
    else:
      # Level 0 is the saved ticket: its mask and weights, from iteration k, fresh optimizer.
      dense_mask = self.ticket.mask
      first = BranchPlan(self.ticket.mask, self.ticket.rewind_weights, None)
      first_iteration = k
    self._run_branch(replicate, seed, 0, "ticket", first, first_iteration, capture_rewind,
                     boundaries=(k,))
    rewind = self.store.read_arrays(rewind_file)
    rewind_weights = {n[2:]: v for n, v in rewind.items() if n.startswith("w/")}
    rewind_optimizer = {n: v for n, v in rewind.items() if n.startswith("optimizer/")}
    if self.config.pruning.rewind_optimizer == "fresh":
      rewind_optimizer = None

    for level in range(1, self.config.pruning.levels + 1):
      self._where = f"during replicate {seed} level {level}"
      mask = self._level_mask(replicate, seed, level, dense_mask)
      context = LevelContext(level, seed, mask, rewind_weights, rewind_optimizer,
                             replicate.fresh_weights)
      plans = {branch: BRANCHES.get(branch)(context)
               for branch in self._batchable(replicate, seed, level)}
      if plans:
        self._run_branches_batched(replicate, seed, level, plans, k)
      for branch in self.branches:  # finished (batched) branches are skipped
        plan = plans[branch] if branch in plans else BRANCHES.get(branch)(context)
        self._run_branch(replicate, seed, level, branch, plan, k)

  def _batchable(self, replicate: ReplicateModel, seed: int, level: int) -> Tuple[str, ...]:
    """The branches of a level to train together (`--batch_variants`), or () for one by one.

    Branches that are finished or have a checkpoint (an interrupted one-by-one run) are left
    to `_run_branch`; a model whose layers the batched trainer does not support trains one by
    one.
    """
    if not self.config.runtime.batch_variants:
      return ()
    if self.config.runtime.strategy != "default":
      self._tell_unbatched(f"not with --strategy={self.config.runtime.strategy}")
      return ()
    pending = []
    for branch in self.branches:
      files = BranchFiles(self.layout.branch_dir(seed, level, branch))
      if not files.is_finished() and not os.path.exists(files.checkpoint):
        pending.append(branch)
    if len(pending) < 2:
      return ()
    try:
      stack_layers(replicate.model)
    except UserError as error:
      self._tell_unbatched(str(error))
      return ()
    return tuple(pending)

  def _tell_unbatched(self, reason: str) -> None:
    if not getattr(self, "_told_unbatched", False):
      self.log(f"batch_variants: training branches one by one ({reason})")
      self._told_unbatched = True

  def _run_branches_batched(self, replicate: ReplicateModel, seed: int, level: int,
                            plans: Dict[str, BranchPlan], start_iteration: int) -> None:
    """Trains several branches of one level together in one graph; writes each one's files.

    Every branch starts exactly as in `_run_branch` (the same masked weights and optimizer
    state); no checkpoints are written, so an interrupted batched level restarts its branches.
    """
    started = time.time()
    self._where = f"during replicate {seed} level {level} branches {', '.join(plans)} (batched)"
    trainer = replicate.batched_trainer(len(plans))
    for index, (branch, plan) in enumerate(plans.items()):
      files = BranchFiles(self.layout.branch_dir(seed, level, branch))
      replicate.load_state(plan.start_weights, plan.mask, plan.optimizer_state)
      self._write_start(replicate, files, plan.mask)
      trainer.load(index, get_weights(replicate.model), plan.mask,
                   optimizers.get_state(replicate.trainer.optimizer))
    if self.config.runtime.progress:
      print(f"replicate {seed} level {level} {', '.join(plans)} (batched)", flush=True)
    try:
      results = trainer.fit(start_iteration)
    except TrainingDiverged as error:
      raise TrainingDiverged(f"replicate {seed} level {level} {', '.join(plans)} "
                             f"(batched): {error}") from None
    elapsed = (time.time() - started) / len(plans)
    for index, (branch, plan) in enumerate(plans.items()):
      files = BranchFiles(self.layout.branch_dir(seed, level, branch))
      set_weights(replicate.model, trainer.get_weights(index))
      if self.writes:
        self._write_results(replicate, files, results[index], seed, level, branch, plan.mask,
                            elapsed)
      self.log(format_row(self._row(seed, level, branch, plan.mask, results[index])))
    self._where = f"after replicate {seed} level {level} branches {', '.join(plans)} (batched)"
    self._branch_finished()

  def _level_mask(self, replicate: ReplicateModel, seed: int, level: int,
                  dense_mask: pruning.Mask) -> pruning.Mask:
    """The ticket mask of `level`: prune the source level's trained weights."""
    saved = BranchFiles(self.layout.branch_dir(seed, level, "ticket")).mask
    if self.store.exists(saved):
      return pruning.Mask.from_dict(self.store.read_arrays(saved))
    one_shot = self.config.pruning.mode == "one_shot"
    source_level = 0 if one_shot else level - 1
    source = BranchFiles(self.layout.branch_dir(seed, source_level, "ticket"))
    weights = self.store.read_arrays(source.final_weights)
    previous = dense_mask if one_shot else pruning.Mask.from_dict(self.store.read_arrays(source.mask))
    return pruning.next_mask(self.config.pruning, replicate.kinds, weights, previous,
                             rounds=level if one_shot else 1, seed=seed)

  def _run_branch(self, replicate: ReplicateModel, seed: int, level: int, branch: str,
                  plan: BranchPlan, start_iteration: int,
                  on_iteration: Optional[Callable[[int], None]] = None,
                  boundaries=()) -> None:
    files = BranchFiles(self.layout.branch_dir(seed, level, branch))
    if self.store.exists(files.metrics):
      return
    started = time.time()
    self._where = f"during replicate {seed} level {level} branch {branch}"
    replicate.load_state(plan.start_weights, plan.mask, plan.optimizer_state)
    self._write_start(replicate, files, plan.mask)
    curve, start = [], start_iteration
    if os.path.exists(files.checkpoint):
      curve, start = self._restore_checkpoint(replicate, files)
    if on_iteration is not None:
      on_iteration(start)

    def on_boundary(iteration: int, rows) -> None:
      if on_iteration is not None:
        on_iteration(iteration)
      if (self.writes and iteration < self.config.training.iterations
          and iteration % self.config.training.eval_every == 0):
        self._write_checkpoint(replicate, files, iteration, rows)

    label = f"replicate {seed} level {level} {branch}"
    try:
      result = replicate.trainer.fit(start, curve, boundaries, on_boundary, description=label)
    except TrainingDiverged as error:
      if self.writes:
        io.write_json(files.error, {"error": str(error), "replicate": seed, "level": level,
                                    "branch": branch})
      raise TrainingDiverged(f"replicate {seed} level {level} {branch}: {error} "
                             f"(recorded in {files.error})") from None
    elapsed = time.time() - started
    self._write_results(replicate, files, result, seed, level, branch, plan.mask, elapsed)
    self._where = f"after replicate {seed} level {level} branch {branch}"
    self.log(format_row(self._row(seed, level, branch, plan.mask, result)))
    self._branch_finished()

  # ---- branch files -------------------------------------------------------------------------

  def _write_start(self, replicate: ReplicateModel, files: BranchFiles, mask: pruning.Mask) -> None:
    """The mask and start weights of a branch whose start state is loaded; each one that a
    killed run did not write is written again (the same values: the plan is deterministic)."""
    if not self.store.exists(files.mask):
      self.store.write_arrays(files.mask, mask.to_arrays())
    if not self.store.exists(files.start_weights):
      self.store.write_arrays(files.start_weights, get_weights(replicate.model))

  def _write_checkpoint(self, replicate: ReplicateModel, files: BranchFiles, iteration: int,
                        curve) -> None:
    state = {f"w/{n}": v for n, v in get_weights(replicate.model).items()}
    state.update(optimizers.get_state(replicate.trainer.optimizer))
    state["iteration"] = np.array(iteration, np.int64)
    state["curve"] = np.array(json.dumps(curve))
    io.write_arrays(files.checkpoint, state)

  def _restore_checkpoint(self, replicate: ReplicateModel, files: BranchFiles):
    state = io.read_arrays(files.checkpoint)
    set_weights(replicate.model, {n[2:]: v for n, v in state.items() if n.startswith("w/")})
    optimizers.set_state(replicate.trainer.optimizer,
                         {n: v for n, v in state.items() if n.startswith("optimizer/")})
    return json.loads(str(state["curve"])), int(state["iteration"])

  def _row(self, seed, level, branch, mask: pruning.Mask, result: TrainResult) -> Dict:
    return {"replicate": seed, "level": level, "branch": branch,
            "weights_remaining": mask.weights_remaining(),
            "early_stop_iteration": result.early_stop_iteration,
            "early_stop_test_accuracy": result.early_stop_test_accuracy,
            "final_test_accuracy": result.final_test_accuracy,
            "min_validation_loss": result.min_validation_loss}

  def _write_results(self, replicate: ReplicateModel, files: BranchFiles, result: TrainResult,
                     seed: int, level: int, branch: str, mask: pruning.Mask, elapsed: float) -> None:
    """Final weights, curve and metrics (metrics last: they mark the branch finished)."""
    self.store.write_arrays(files.final_weights, get_weights(replicate.model))
    self.store.write_json(files.curve_json, result.curve)
    if self.writes:
      io.write_text(files.curve_csv, _curve_csv(result.curve))
      _write_tensorboard(files.tensorboard, result.curve)
    metrics = self._row(seed, level, branch, mask, result)
    metrics.update(result.metrics())
    metrics.update({
        "weights_remaining_by_layer": mask.layer_densities(),
        "prunable_weights": mask.num_weights(),
        "prunable_weights_remaining": mask.num_remaining(),
        "experiment_hash": self.layout.experiment_hash,
    })
    metrics.update(compute.branch_compute(
        replicate.model, mask, self.config.training.batch_size,
        result.iterations - int(result.curve[0]["iteration"]), elapsed))
    self.store.write_json(files.metrics, metrics)
    if self.writes and os.path.exists(files.checkpoint):
      os.remove(files.checkpoint)


def summary_row(metrics: Dict) -> Dict:
  """A summary row from a branch's metrics, with its deterministic compute (iterations, FLOPs);
  None for runs that predate compute accounting. Wall time stays in metrics and compute.json."""
  row = {key: metrics[key] for key in SUMMARY_KEYS}
  row.update({key: metrics.get(key) for key in compute.SUMMARY_COMPUTE_KEYS})
  return row


def compute_summary(metrics: List[Dict]) -> Dict:
  """Compute totals of an experiment from its branches' metrics: all branches, and per branch."""
  branches = sorted({m["branch"] for m in metrics})
  return {"total": compute.total(metrics),
          "by_branch": {b: compute.total(m for m in metrics if m["branch"] == b) for b in branches},
          "rule": compute.__doc__.split("\n\n")[1]}


def format_row(row: Dict) -> str:
  return (f"replicate {row['replicate']} level {row['level']:>2} {row['branch']:<12} "
          f"weights remaining {100 * row['weights_remaining']:6.2f}%  "
          f"early stop it {row['early_stop_iteration']:>6}  "
          f"test acc {100 * row['early_stop_test_accuracy']:.2f}% (early stop) "
          f"{100 * row['final_test_accuracy']:.2f}% (final)")


def _curve_csv(curve) -> str:
  buffer = _io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=list(curve[0]))
  writer.writeheader()
  writer.writerows(curve)
  return buffer.getvalue()


def _write_tensorboard(directory: str, curve) -> None:
  """Writes the curve as TensorBoard scalars into a temporary folder, then renames it into place."""
  staging = os.path.join(os.path.dirname(directory), io.TEMP_PREFIX + os.path.basename(directory))
  shutil.rmtree(staging, ignore_errors=True)
  try:
    writer = tf.summary.create_file_writer(staging)
    with writer.as_default():
      for row in curve:
        for key, value in row.items():
          if key != "iteration" and value is not None:
            tf.summary.scalar(key, value, step=int(row["iteration"]))
    writer.close()
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(staging, directory)
  except OSError as error:
    raise WriteError(io.write_failure(directory, error)) from None
  finally:
    shutil.rmtree(staging, ignore_errors=True)  # a failed or interrupted write


def _load_ticket(config: ExperimentConfig):
  """The saved ticket level 0 starts from, verified against the config's checksum; or None."""
  if not config.runtime.ticket:
    if config.pruning.ticket_sha256:
      raise UserError("ticket_sha256 is set but no --ticket is given")
    return None
  from lth_tf import tickets  # pylint: disable=import-outside-toplevel
  ticket = tickets.read(tickets.resolve(config.runtime.ticket))
  if config.pruning.ticket_sha256 and config.pruning.ticket_sha256 != ticket.sha256:
    raise UserError(f"ticket {config.runtime.ticket} does not have checksum "
                    f"{config.pruning.ticket_sha256}")
  return ticket


def _check_readable(path: str, directory: str, kind: str) -> None:
  """A finished branch's file a resume reads (metrics with the summary keys, or arrays) must
  be sound; otherwise one line saying which `kind` of directory to delete to retrain it."""
  try:
    if path.endswith(".json"):
      metrics = io.read_json(path)
      if not isinstance(metrics, dict) or any(key not in metrics for key in SUMMARY_KEYS):
        raise UserError(f"{path}: not a finished branch's metrics")
    else:
      io.read_arrays(path)
  except UserError as error:
    raise UserError(f"{error}; delete {directory} and rerun to retrain that {kind}") from None


def _check_writable(root: str) -> None:
  if os.path.exists(root) and not os.path.isdir(root):
    raise UserError(f"root_dir {root} exists and is not a directory")
  parent = root if os.path.isdir(root) else os.path.dirname(os.path.abspath(root))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise UserError(f"root_dir {root} cannot be created: {parent} is not a directory")
  if not os.access(parent, os.W_OK):
    raise UserError(f"root_dir {root} is not writable")
  try:  # root may pass os.access where nothing can be created (/proc, a read-only mount)
    os.rmdir(tempfile.mkdtemp(prefix=io.TEMP_PREFIX, dir=parent))
  except OSError as error:
    raise UserError(f"root_dir {root} cannot be created in {parent}: "
                    f"{os.strerror(error.errno).lower() if error.errno else error}") from None
