"""`lth transfer`: a ticket found on the target itself (`--target_ticket`), from its own k."""
from lth_tf.branches.base import Branch, BranchContext, BranchPlan, register


def plan(context: BranchContext) -> BranchPlan:
  # A saved ticket holds no optimizer state: `lth transfer` starts every branch fresh.
  ticket = context.target_ticket
  return BranchPlan(ticket.mask, ticket.rewind_weights, None,
                    ticket.config.pruning.rewind_iteration)


register(Branch("target_ticket", plan, "a ticket found on the target, from its own rewind point",
                enabled_by={"transfer": "target_ticket"}, order=4, marker="*", linestyle="-.", label="target ticket"))
