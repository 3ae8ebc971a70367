"""The level loop of iterative magnitude pruning: train, prune, rewind to θk, repeat; resumable.

Level 0 trains the dense network from θ0 and captures θk (weights and optimizer state at the
rewind iteration k; in a rewind sweep, θk of every k that shares it, `share_level_0`); with an
early-bird threshold, it records at every evaluation how far the mask the next prune would
produce moved, and ends where it settled (`early_bird`). Level L prunes
the previous level's trained ticket (iterative) or the dense network (one-shot) and trains each
enabled branch (`lth_tf.branches`) from its plan, planned from the level's context (`level`).
Training a branch and writing its files is `branch_run`; the directory's lock, config and
summary are `directory`; the checks before anything is written are `preflight`.
"""
import dataclasses
import os
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from lth_tf import branches as branches_lib
from lth_tf import data as data_lib
from lth_tf import distribute, mechanism, models, precision, pruning, tickets, user_code
from lth_tf.config import ExperimentConfig
from lth_tf.validation import validate
from lth_tf.errors import UserError
from lth_tf import executors
from lth_tf.executors import EXECUTORS
from lth_tf.lottery import preflight
from lth_tf.lottery.session import open_session
from lth_tf.lottery.tasks import FindSpec, FindWork
from lth_tf.rundir import (ExperimentLayout, finished, check_data_record, check_engine_record,
                           check_model_record, check_optimizer_record, record_data,
                           record_engine, record_model, record_optimizer)


class LotteryExperiment:
  """Runs (or resumes) every replicate, level and branch of one experiment."""

  def __init__(self, config: ExperimentConfig, flags_text: str = "",
               log: Callable[[str], None] = print):
    config = validate(user_code.pin_sources(config))
    self.layout, recorded_levels = finished.layout_for(config)
    # The levels the directory's summary holds: more levels extend a directory, fewer read a
    # prefix of it (`rundir.finished.layout_for`).
    self.summary_levels = max(config.pruning.levels, recorded_levels)
    self.summary_rows: List[Dict] = []  # after `run`: every level the directory holds
    self.flags_text = flags_text
    self.log = log
    if recorded_levels != config.pruning.levels and recorded_levels:
      log(f"experiment {self.layout.experiment_hash} records {recorded_levels} levels: "
          + (f"extending it to {config.pruning.levels}" if config.pruning.levels > recorded_levels
             else f"reading levels 0 to {config.pruning.levels} of it"))
    models.check(config.model)
    pruning.STRATEGIES.get(config.pruning.strategy)
    distribute.STRATEGIES.get(config.runtime.strategy)
    executors.check(config.runtime)  # before the strategy is built
    self.data = data_lib.load(config.dataset, config.runtime.data_dir)
    session = open_session(config, self.layout, self.data, log, self._branch_finished)
    config = self.config = session.config
    self.strategy, self.writes = session.strategy, session.writes
    self.directory, self.store, self.trainer = session.directory, session.store, session.trainer
    self.branches = branches_lib.enabled("find", config)
    self.ticket = preflight.load_ticket(config)
    self._shared: Dict[int, Dict[int, ExperimentLayout]] = {}  # `share_level_0`
    self._preflight()

  def _preflight(self) -> None:
    """Everything that can be checked before any file is written or any step is trained."""
    preflight.check_budget(self.config, self.data, self.strategy)
    with self.strategy.scope(), precision.policy(self.config.training.mixed_precision):
      model = pruning.wrap_model(models.build(
          self.config.model, self.data.input_shape, self.data.num_classes, seed=0))
    preflight.check_modality(self.config, model, self.data)
    self.framework = mechanism.of(model).name  # the Keras the model is built in
    self.backend = mechanism.of(model).backend  # and the backend it trains on
    if not pruning.mask_pairs(model):
      _, dense = pruning.structure.classify(model)
      why = "; ".join(f"{d.name}: {d.why}" for d in dense[:3]) or "it has no weights"
      raise UserError(f"model {self.config.model.name} has no weight lth_tf can prune ({why})")
    kinds = pruning.layer_kinds(model)
    ranked = pruning.global_layers(self.config.pruning, kinds)
    if self.writes and not os.path.exists(self.layout.config_file):  # a new experiment
      self.log("what is pruned (layer kinds and their rates: lth_tf.pruning.kinds):\n"
               + pruning.pruning_table(model, kinds, global_layers=ranked))
    preflight.check_strategy(self.config, self.branches)
    shapes = pruning.prunable_shapes(model)
    preflight.check_levels(self.config, kinds, shapes)
    preflight.check_model_fits_strategy(self.config, model, kinds, self.log)
    preflight.check_engine(self.config, model, self.strategy)
    if self.ticket is not None:
      tickets.apply(self.ticket, model)
    slots = list(self.branch_slots())
    preflight.check_saved_masks(self.layout, [s for s in slots if s[1] > 0],
                                shapes)
    preflight.check_finished_metrics(self.layout, slots)
    preflight.check_level_sources(self.config, self.layout, slots)
    preflight.check_writable(self.config.runtime.root_dir)
    check_data_record(self.layout.data_file, self.data, self.layout.directory)
    check_engine_record(self.layout.engine_file, self.config.runtime, self.layout.directory)
    check_model_record(self.layout.model_file, self.framework, self.layout.directory,
                       self.backend)
    check_optimizer_record(self.layout.optimizer_file, self.config.pruning, self.layout, slots)

  def share_level_0(self, seed: int, layouts: Mapping[int, ExperimentLayout]) -> None:
    """Makes replicate `seed`'s level 0 also capture θj, for every j of `layouts`, into that
    experiment's rewind point: the experiments of a rewind sweep (`lottery.sweep`) that copy
    this level 0. Only for a level 0 that does not depend on k (`validation.validate_sweep`)."""
    self._shared[seed] = dict(layouts)

  def run(self, extend: Optional[Callable] = None) -> List[Dict]:
    """Trains what is not finished yet and returns the summary rows. `extend(work, graph)`
    returns the work and graph the executor runs instead of the experiment's own (its tasks
    and more that wait for them: `lth stability`'s copies)."""
    def body() -> List[Dict]:
      work, graph = self.start()
      if extend is not None:
        work, graph = extend(work, graph)
      EXECUTORS.get(self.config.runtime.executor)(work, graph)
      return self.end()
    return self.directory.locked(body, self.config.runtime.deterministic)

  def start(self) -> Tuple[FindWork, list]:
    """Records the experiment in its directory (its lock held) and returns its work and the
    graph of its unfinished tasks (`lottery.tasks`)."""
    recorded = self.config.replace(pruning=dataclasses.replace(self.config.pruning,
                                                               levels=self.summary_levels))
    self.directory.write_config(recorded.to_dict(), self.flags_text, self._check_previous)
    if self.writes:
      record_data(self.layout.data_file, self.data, self.layout.directory)
      record_engine(self.layout.engine_file, self.config.runtime, self.layout.directory)
      record_model(self.layout.model_file, self.framework, self.layout.directory,
                   self.backend)
      record_optimizer(self.layout.optimizer_file, self.config.pruning, self.layout,
                       self.branch_slots())
    work = self.work()
    return work, work.graph(self.config.runtime.seeds)

  def end(self) -> List[Dict]:
    """After the graph has run: writes the summary and returns this run's levels of it."""
    self.summary_rows = self.write_summary()  # every level the directory holds
    levels = self.config.pruning.levels
    return [row for row in self.summary_rows if row["level"] <= levels]

  # ---- experiment files ---------------------------------------------------------------------

  def _check_previous(self, path: str, previous: ExperimentConfig) -> None:
    """Refuses a directory whose recorded config (at `path`) is another experiment."""
    if not finished.extends(previous, self.config):
      part = next(part for part in ExperimentConfig.SCIENTIFIC_PARTS
                  if getattr(previous, part) != getattr(self.config, part))
      raise UserError(f"{path} describes a different experiment ({part})")

  def branch_slots(self, seeds=None, levels=None):
    """(seed, level, branch) of every branch the experiment trains for `seeds` (this run's by
    default) and levels 0 to `levels` (this run's by default), in summary order."""
    for seed in self.config.runtime.seeds if seeds is None else seeds:
      for level in range((self.config.pruning.levels if levels is None else levels) + 1):
        for branch in self.branches if level else ("ticket",):
          yield seed, level, branch

  def finished_metrics(self) -> List[Dict]:
    """The metrics of every finished branch, in summary order."""
    return self.directory.finished_metrics(self.branch_slots())

  def _branch_finished(self) -> None:
    """Keeps the summary current after each branch."""
    self.write_summary()

  def write_summary(self) -> List[Dict]:
    """The summary of every replicate the directory holds (`RunDirectory.seeds`)."""
    return self.directory.write_summary(self.branch_slots(self.directory.seeds or None,
                                                          self.summary_levels))

  # ---- levels ----------------------------------------------------------------------------

  def work(self) -> FindWork:
    """The experiment's tasks, run through this process's directory (`lottery.tasks`)."""
    spec = FindSpec(self.config, self.layout, tuple(self.branches), self.ticket,
                    tuple((seed, tuple(sorted((j, layout.rewind_file(seed))
                                              for j, layout in layouts.items())))
                          for seed, layouts in sorted(self._shared.items())))
    return FindWork(spec, self.data, self.strategy, self.trainer)
