"""The lottery ticket: the pruned mask with the survivors reset to θk (and the optimizer at k)."""
from lth_tf.branches.base import ALWAYS, Branch, BranchContext, BranchPlan, register


def plan(context: BranchContext) -> BranchPlan:
  k = context.rewind_iteration
  return BranchPlan(context.mask, context.rewind_weights, context.optimizer_at(k), k)


register(Branch("ticket", plan, "the pruned mask, survivors reset to θk",
                enabled_by={"find": ALWAYS, "transfer": ALWAYS}, order=0, marker="o",
                linestyle="-", control=False))
