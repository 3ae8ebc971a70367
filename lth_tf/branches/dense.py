"""The dense network from θ0 (`lth transfer`'s reference: what the target gets without a ticket)."""
from lth_tf.branches.base import ALWAYS, Branch, BranchContext, BranchPlan, register


def plan(context: BranchContext) -> BranchPlan:
  return BranchPlan(type(context.mask).ones_like(context.mask), context.initial_weights,
                    context.optimizer_at(0), 0)


register(Branch("dense", plan, "the unpruned network from a fresh θ0, from iteration 0",
                enabled_by={"transfer": ALWAYS}, order=1, marker="D", linestyle="-."))
