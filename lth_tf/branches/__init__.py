"""The branches: the ticket, its controls and the dense network, one module each (see `base`)."""
from lth_tf.branches.base import (ALWAYS, BRANCHES, KINDS, LISTED, RETIRED, Branch,
                                  BranchContext, BranchPlan, derive_seed, enabled, listable,
                                  ordered, plan_of, register, style, switches, ticket_only,
                                  trained_by)
from lth_tf.registry import import_modules

import_modules(__name__, __path__)

__all__ = ["ALWAYS", "BRANCHES", "KINDS", "LISTED", "RETIRED", "Branch", "BranchContext",
           "BranchPlan",
           "derive_seed", "enabled", "listable", "ordered", "plan_of", "register", "style",
           "switches", "ticket_only", "trained_by"]
