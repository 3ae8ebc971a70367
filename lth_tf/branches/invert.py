"""Ablation (Frankle et al. 2021): keep the lowest-scoring weights instead of the highest, at the
ticket's per-layer counts, from the same θk and optimizer.

The ranking is the pruning strategy's own (`BranchContext.scores`: |w| of the source's trained
weights for `magnitude`, |θk| for `magnitude_init`, the SNIP, GraSP or SynFlow scores at θk)
over the weights the ticket was cut from (`source_mask`): in every layer, where the ticket kept
the n highest-ranked of those weights, this branch keeps the n lowest-ranked (ties broken by
position). Pruned weights of the source never return.

A strategy that scores in steps (SynFlow's 100, or `--score_iterations`) is inverted inside
every step, as Synaptic-Flow's `invert` does: each step re-scores the network under the
inverted mask so far and keeps the lowest-ranked weights, along the strategy's exponential
schedule (`BranchContext.score_steps`). Deviation from Synaptic-Flow, which ranks the
inverted scores globally: every step here keeps each layer's share of the ticket's schedule,
so that the inverted mask has the ticket's per-layer counts and differs from it only in which
weights of a layer survive (as the other ablations keep the counts).
"""
from typing import Dict, Mapping

import numpy as np

from lth_tf.branches.base import LISTED, Branch, BranchContext, BranchPlan, register
from lth_tf.errors import UserError
from lth_tf.pruning.strategies.base import exponential_schedule


def lowest(candidates, scores, counts: Mapping[str, int]):
  """Per layer, the `counts[l]` lowest `scores[l]` among the weights `candidates` keeps."""
  arrays = {}
  for name in candidates:
    keep_of = np.asarray(candidates[name], bool).reshape(-1)
    ranked = np.where(keep_of, np.asarray(scores[name], np.float64).reshape(-1), np.inf)
    order = np.argsort(ranked, kind="stable")[:int(counts[name])]
    keep = np.zeros(keep_of.shape, bool)
    keep[order] = True
    arrays[name] = keep.reshape(np.shape(candidates[name]))
  return type(candidates).from_dict(arrays)


def inverted(mask, source_mask, scores):
  """Per layer, the `mask[l].sum()` lowest `scores[l]` among the weights `source_mask` keeps."""
  return lowest(source_mask, scores, {name: int(np.sum(mask[name])) for name in mask})


def step_counts(source_mask, mask, steps: int) -> Dict[str, list]:
  """Per layer, the counts kept after each of `steps` steps from `source_mask`'s to `mask`'s, on
  the exponential schedule the strategies step along."""
  return {name: exponential_schedule(int(np.sum(source_mask[name])), int(np.sum(mask[name])),
                                     steps) for name in mask}


def inverted_in_steps(context: BranchContext, source_mask):
  """Synaptic-Flow's `invert` of an iterative strategy, at the ticket's per-layer counts."""
  schedule = step_counts(source_mask, context.mask, context.score_steps)
  current = source_mask
  for step in range(context.score_steps):
    current = lowest(current, context.scores(current),
                     {name: counts[step] for name, counts in schedule.items()})
  return current


def plan(context: BranchContext) -> BranchPlan:
  if context.scores is None:
    raise UserError("the invert branch needs the pruning strategy's scores; this experiment "
                    "has none (a strategy that ranks weights by a score gives them)")
  source = context.source_mask if context.source_mask is not None else type(
      context.mask).ones_like(context.mask)
  if context.score_steps > 1:
    mask = inverted_in_steps(context, source)
  else:
    mask = inverted(context.mask, source, context.scores())
  return BranchPlan(mask, context.rewind_weights, context.optimizer_at(context.rewind_iteration),
                    context.rewind_iteration)


register(Branch("invert", plan, "the lowest-ranked weights at the ticket's per-layer counts, "
                "from θk (re-scored and inverted at every step of an iterative strategy)",
                enabled_by={"find": LISTED}, order=14, marker="X", linestyle="-.",
                needs=("scores",)))
