"""The trainings of `lth transfer` as tasks an executor runs (`lth_tf.executors`): every branch
of every replicate, independent of each other (they all start from the adapted ticket, or from
θ0 of the target model). The ticket and the target ticket travel with the tasks (`TransferSpec`);
a task reads no file of the directory.
"""
import dataclasses
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from lth_tf import branches as branches_lib
from lth_tf import pruning
from lth_tf.branches import derive_seed
from lth_tf.config import ExperimentConfig
from lth_tf.lottery.branch_run import BranchRun
from lth_tf.lottery.level import transfer_context
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.errors import TicketError
from lth_tf.lottery.tasks import DirectoryWork, Task
from lth_tf.rundir import BranchFiles, ExperimentLayout


@dataclasses.dataclass(frozen=True)
class TransferSpec:
  """What the tasks of one transfer are run from, besides the data: the target experiment, its
  directory, its branches, the transferred ticket and the target's own (or None)."""
  config: ExperimentConfig
  layout: ExperimentLayout
  branches: Tuple[str, ...]
  ticket: object
  target_ticket: object = None

  def key(self) -> Tuple:
    return ("transfer", self.layout.experiment_hash, self.layout.directory, self.branches,
            repr(self.config))

  def with_config(self, config: ExperimentConfig) -> "TransferSpec":
    return dataclasses.replace(self, config=config)

  def work(self, data, strategy, runner: BranchRun, replicates, keep: int) -> "TransferWork":
    return TransferWork(self, data, strategy, runner, replicates, keep)


def adapt_ticket(ticket, weight_shapes: Mapping[str, Tuple[int, ...]],
                 kinds: Mapping[str, str], num_classes: int,
                 fresh_head: Mapping[str, np.ndarray], seed: int):
  """The ticket's (mask, rewind weights) for a target model; a new head if the classes differ.

  Args:
    ticket: the source ticket.
    weight_shapes: every weight of the target model (`training.get_weights` names) → shape.
    kinds: `pruning.layer_kinds` of the target model (`output` marks the classifier).
    num_classes: the target's class count.
    fresh_head: freshly initialised weights of the target model (only its output layer is used).
    seed: the replicate seed (the head mask's generator is derived from it).

  Returns:
    (mask, weights, head_replaced).

  Raises:
    TicketError: the ticket does not fit the target model even after the head replacement.
  """
  output_layers = {name.split("/")[0] for name, kind in kinds.items() if kind == "output"}
  replaced = int(ticket.num_classes) != int(num_classes)
  weights = dict(ticket.rewind_weights)
  masks = ticket.mask.to_arrays()
  if replaced:
    rng = np.random.default_rng(derive_seed(seed, "transfer_head_mask"))
    for name in weights:
      if name.split("/")[0] in output_layers:
        weights[name] = np.asarray(fresh_head[name])
    for name in list(masks):
      if name.split("/")[0] in output_layers:
        shape = weight_shapes[name]
        size = int(np.prod(shape))
        keep = max(1, int(round(float(ticket.mask[name].mean()) * size)))
        flat = np.zeros(size, bool)
        flat[rng.permutation(size)[:keep]] = True
        masks[name] = flat.reshape(shape)
  if set(weights) != set(weight_shapes):
    raise TicketError(f"the ticket ({ticket.config.model.name}) does not fit the target model: "
                      f"weights {sorted(set(weights) ^ set(weight_shapes))[:3]} differ")
  for name, shape in weight_shapes.items():
    if tuple(np.shape(weights[name])) != tuple(shape):
      raise TicketError(f"the ticket cannot be adapted: weight {name!r} has shape "
                        f"{tuple(np.shape(weights[name]))}, the target model needs {tuple(shape)}")
  return pruning.Mask.from_dict(masks), weights, replaced


def replicate_context(config: ExperimentConfig, ticket, target_ticket, num_classes: int,
            replicate: ReplicateModel, seed: int) -> branches_lib.BranchContext:
  """What a replicate's branches are planned from: the adapted ticket (no optimizer state: the
  target optimizer may differ), θ0 of the target model, the target ticket."""
  shapes = {n: v.shape for n, v in replicate.initial_weights.items()}
  mask, weights, _ = adapt_ticket(ticket, shapes, replicate.kinds, num_classes,
                                  replicate.fresh_weights(derive_seed(seed, "transfer_head")),
                                  seed)
  return transfer_context(config, replicate, seed, mask, weights, target_ticket)


class TransferWork(DirectoryWork):
  """Trains the branches of a transfer (`Task("branch", seed, 0, branch)`)."""

  def __init__(self, spec: TransferSpec, data, strategy, runner: BranchRun,
               replicates: Optional[Dict[int, ReplicateModel]] = None, keep: int = 1):
    super().__init__(spec, data, strategy, runner, replicates, keep)
    self._context: Tuple[Optional[int], Optional[branches_lib.BranchContext]] = (None, None)

  def files(self, task: Task) -> BranchFiles:
    return BranchFiles(self.layout.branch_dir(task.seed, 0, task.branch))

  def graph(self, seeds) -> List[Tuple[Task, tuple]]:
    """Every unfinished branch of `seeds`, replicate by replicate; none waits for another."""
    tasks = [Task("branch", seed, 0, branch) for seed in seeds for branch in self.spec.branches]
    return [(task, ()) for task in tasks if not self.store.exists(self.files(task).metrics)]

  def context(self, seed: int) -> branches_lib.BranchContext:
    """Replicate `seed`'s context, built once for its branches that run here."""
    if self._context[0] != seed:
      self._context = (seed, replicate_context(
          self.config, self.spec.ticket, self.spec.target_ticket, self.data.num_classes,
          self.replicate(seed), seed))
    return self._context[1]

  def run(self, task: Task) -> None:
    self.where = f"during replicate {task.seed}"
    plan = branches_lib.plan_of(task.branch, self.context(task.seed))
    self.runner.run(self.replicate(task.seed), task.seed, 0, task.branch, plan)

  def checkpoint(self, task: Task) -> str:
    return self.files(task).checkpoint
