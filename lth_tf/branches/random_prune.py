"""Control: a random mask with the ticket's per-layer counts, from the same θk and optimizer."""
from lth_tf.branches.base import ALWAYS, Branch, BranchContext, BranchPlan, register


def plan(context: BranchContext) -> BranchPlan:
  k = context.rewind_iteration
  return BranchPlan(context.mask.random_like(context.seed_for("random_prune")),
                    context.rewind_weights, context.optimizer_at(k), k)


register(Branch("random_prune", plan, "a random mask of the same per-layer counts, from θk",
                enabled_by={"find": "pruning.random_prune", "transfer": ALWAYS}, order=3,
                marker="^", linestyle=":", label="random"))
