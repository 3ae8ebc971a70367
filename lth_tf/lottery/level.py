"""What a level of an experiment plans its branches from (`branches.BranchContext`), built in one
place for every command that plans a level's branches: `lth find` (the level loop),
`lth stability` (the copies of a finished level) and `lth transfer` (its one level, from the
adapted ticket), so that a branch plans the same way in all of them.

A level L >= 1 prunes its source (the previous level's trained ticket; the dense network in
one-shot mode): the strategy scores the source's trained weights, or θk for a strategy that
prunes at initialisation (`pruning.scored_weights`), and cuts the level's mask from the source's
mask; a level whose ticket mask is saved takes it from there. Level 0 is the dense network (or a
saved ticket): its mask is the one it trained under, with no source and no scores.
"""
from typing import Callable, Optional

from lth_tf import branches as branches_lib
from lth_tf import pruning
from lth_tf.config import ExperimentConfig
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.rundir import BranchFiles, ExperimentLayout, states
from lth_tf.training import set_weights


def transfer_context(config: ExperimentConfig, replicate: ReplicateModel, seed: int,
                     mask: pruning.Mask, weights, target_ticket) -> branches_lib.BranchContext:
  """The context of a transfer replicate: the ticket adapted to the target (`mask`, its start
  `weights`), no optimizer state (the target optimizer may differ), θ0 of the target model, and
  the target's own ticket if one was given."""
  return branches_lib.BranchContext(
      seed=seed, level=0, tag="transfer", mask=mask, rewind_weights=weights,
      rewind_optimizer=None, rewind_iteration=config.pruning.rewind_iteration,
      initial_weights=replicate.initial_weights, fresh_weights=replicate.fresh_weights,
      target_ticket=target_ticket)


def level_source(config: ExperimentConfig, layout: ExperimentLayout, store, seed: int, level: int,
                 dense_mask: pruning.Mask):
  """The trained ticket level `level` (>= 1) of replicate `seed` is pruned from: its final
  weights and the mask it trained under (one-shot: the dense network and `dense_mask`)."""
  one_shot = config.pruning.mode == "one_shot"
  source = BranchFiles(layout.branch_dir(seed, 0 if one_shot else level - 1, "ticket"))
  weights = store.read_arrays(source.final_weights)
  if one_shot:
    return weights, dense_mask
  return weights, pruning.Mask.from_dict(store.read_arrays(source.mask))


def level_context(config: ExperimentConfig, layout: ExperimentLayout, store,
                  replicate: ReplicateModel, batch: Callable, seed: int, level: int,
                  rewind: states.TrainingState, dense_mask: pruning.Mask
                  ) -> branches_lib.BranchContext:
  """The context level `level` of replicate `seed` plans its branches from.

  Args:
    config, layout, store: the experiment, its directory layout, and the store it reads from.
    replicate: the replicate's model (strategies that score with the model use it; it is
      loaded with the scored weights when the mask or the scores are computed).
    batch: seeded training batches for strategies that score with data (`Splits.batch`).
    rewind: the rewind point of the replicate (θk and the optimizer state at k).
    dense_mask: the mask level 0 trained under (all ones, or a saved ticket's).
  """
  rewind_optimizer = None if config.pruning.rewind_optimizer == "fresh" else rewind.optimizer
  common = dict(seed=seed, level=level, tag=level, rewind_weights=rewind.weights,
                rewind_optimizer=rewind_optimizer,
                rewind_iteration=config.pruning.rewind_iteration,
                initial_weights=replicate.initial_weights, fresh_weights=replicate.fresh_weights)
  if level == 0:
    return branches_lib.BranchContext(mask=dense_mask, **common)
  source_weights, source_mask = level_source(config, layout, store, seed, level, dense_mask)
  scored = pruning.scored_weights(config.pruning, source_weights, rewind.weights)

  def load(mask: pruning.Mask) -> None:
    set_weights(replicate.model, scored)  # for strategies that score with the model
    pruning.set_mask(replicate.model, mask)

  saved = BranchFiles(layout.branch_dir(seed, level, "ticket")).mask
  if store.exists(saved):
    mask = pruning.Mask.from_dict(store.read_arrays(saved))
  else:
    load(source_mask)
    one_shot = config.pruning.mode == "one_shot"
    mask = pruning.next_mask(config.pruning, replicate.kinds, scored, source_mask,
                             rounds=level if one_shot else 1, seed=seed, model=replicate.model,
                             batch=batch)
  scores: Optional[Callable] = None
  if pruning.has_scores(config.pruning):

    def scores(among: Optional[pruning.Mask] = None):
      """The strategy's scores of `scored` on `among` (the source mask by default), computed
      when a branch asks, on the model loaded here: branches train on it in between."""
      among = source_mask if among is None else among
      load(among)
      return pruning.scores(config.pruning, replicate.kinds, scored, among, seed=seed,
                            model=replicate.model, batch=batch)

  return branches_lib.BranchContext(
      mask=mask, source_weights=source_weights, source_mask=source_mask, scores=scores,
      score_steps=pruning.score_steps(config.pruning), **common)
