"""Control: the ticket's mask with fresh weights from the same initialiser, from iteration k with
the ticket's optimizer policy (so that ticket and re-init differ in their weights only)."""
from lth_tf.branches.base import ALWAYS, Branch, BranchContext, BranchPlan, register


def plan(context: BranchContext) -> BranchPlan:
  k = context.rewind_iteration
  return BranchPlan(context.mask, context.fresh_weights(context.seed_for("reinit")),
                    context.optimizer_at(k), k)


register(Branch("reinit", plan, "the same mask, weights re-initialised",
                enabled_by={"find": "pruning.reinit", "transfer": ALWAYS}, order=2, marker="s",
                linestyle="--"))
