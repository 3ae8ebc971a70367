"""Ablation (Frankle et al. 2021): keep the lowest-scoring weights instead of the highest, at the
ticket's per-layer counts, from the same θk and optimizer.

The ranking is the pruning strategy's own (`BranchContext.scores`: |w| of the source's trained
weights for `magnitude`, |θk| for `magnitude_init`, the SNIP, GraSP or SynFlow scores at θk)
over the weights the ticket was cut from (`source_mask`): in every layer, where the ticket kept
the n highest-ranked of those weights, this branch keeps the n lowest-ranked (ties broken by
position). Pruned weights of the source never return.
"""
import numpy as np

from lth_tf.branches.base import LISTED, Branch, BranchContext, BranchPlan, register
from lth_tf.errors import UserError


def inverted(mask, source_mask, scores):
  """Per layer, the `mask[l].sum()` lowest `scores[l]` among the weights `source_mask` keeps."""
  arrays = {}
  for name in mask:
    candidates = np.asarray(source_mask[name], bool).reshape(-1)
    ranked = np.where(candidates, np.asarray(scores[name], np.float64).reshape(-1), np.inf)
    order = np.argsort(ranked, kind="stable")[:int(np.sum(mask[name]))]
    keep = np.zeros(candidates.shape, bool)
    keep[order] = True
    arrays[name] = keep.reshape(np.shape(mask[name]))
  return type(mask).from_dict(arrays)


def plan(context: BranchContext) -> BranchPlan:
  if context.scores is None:
    raise UserError("the invert branch needs the pruning strategy's scores; this experiment "
                    "has none (a strategy that ranks weights by a score gives them)")
  source = context.source_mask if context.source_mask is not None else type(
      context.mask).ones_like(context.mask)
  return BranchPlan(inverted(context.mask, source, context.scores()), context.rewind_weights,
                    context.optimizer_at(context.rewind_iteration),
                    context.rewind_iteration)


register(Branch("invert", plan, "the lowest-ranked weights at the ticket's per-layer counts, "
                "from θk", enabled_by={"find": LISTED}, order=14, marker="X", linestyle="-.",
                needs=("scores",)))
