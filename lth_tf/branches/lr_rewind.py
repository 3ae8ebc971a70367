"""Learning-rate rewinding (Renda, Frankle & Carbin, ICLR 2020): the weights the level was pruned
from, trained, kept under the new mask; only the learning-rate schedule (and the data order) is
rewound to k, so the branch trains as many iterations as weight rewinding, from k."""
from lth_tf.branches.base import LISTED, Branch, BranchContext, BranchPlan, register


def plan(context: BranchContext) -> BranchPlan:
  if context.source_weights is None:
    raise ValueError("learning-rate rewinding needs the trained weights the level was pruned "
                     "from (BranchContext.source_weights)")
  k = context.rewind_iteration
  # Masked when loaded: the source's survivors keep their trained values. The optimizer follows
  # the level's one policy (the state at k, or fresh), as the ticket's does, so that the two
  # differ in their start weights only.
  return BranchPlan(context.mask, context.source_weights, context.optimizer_at(k), k)


register(Branch("lr_rewind", plan, "the trained weights kept under the new mask, the "
                "learning-rate schedule rewound to k", enabled_by={"find": LISTED}, order=5,
                marker="P", linestyle="-", label="lr rewind"))
