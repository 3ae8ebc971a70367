"""Control: a random mask with the ticket's per-layer counts, from the same θk and optimizer.

This is also the "random shuffling" ablation of Frankle et al. 2021 (the ticket's mask permuted
within each layer: its per-layer densities, nothing else) and open_lth's layerwise random
pruning: a uniformly random permutation of a layer's mask is a uniformly random mask of its
count. (A `shuffle` branch trained it a second time under that name until 2026-12-07.)"""
from lth_tf.branches.base import ALWAYS, Branch, BranchContext, BranchPlan, register


def plan(context: BranchContext) -> BranchPlan:
  k = context.rewind_iteration
  return BranchPlan(context.mask.random_like(context.seed_for("random_prune")),
                    context.rewind_weights, context.optimizer_at(k), k)


register(Branch("random_prune", plan, "a random mask of the same per-layer counts, from θk",
                enabled_by={"find": "pruning.random_prune", "transfer": ALWAYS}, order=3,
                marker="^", linestyle=":", label="random"))
