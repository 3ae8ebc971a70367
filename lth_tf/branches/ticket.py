"""The lottery ticket: the pruned mask with the survivors reset to θk (and the optimizer at k)."""
from lth_tf.branches.base import ALWAYS, Branch, BranchContext, BranchPlan, register


def plan(context: BranchContext) -> BranchPlan:
  return BranchPlan(context.mask, context.rewind_weights, context.rewind_optimizer,
                    context.rewind_iteration)


register(Branch("ticket", plan, "the pruned mask, survivors reset to θk",
                enabled_by={"find": ALWAYS, "transfer": ALWAYS}, order=0, marker="o",
                linestyle="-", control=False))
