"""Control: the ticket's mask with fresh weights from the same initialiser and a fresh optimizer."""
from lth_tf.branches.base import ALWAYS, Branch, BranchContext, BranchPlan, register


def plan(context: BranchContext) -> BranchPlan:
  return BranchPlan(context.mask, context.fresh_weights(context.seed_for("reinit")), None,
                    context.rewind_iteration)


register(Branch("reinit", plan, "the same mask, weights re-initialised",
                enabled_by={"find": "pruning.reinit", "transfer": ALWAYS}, order=2, marker="s",
                linestyle="--"))
