"""The branches trained at each level: the ticket and its controls, as plans (mask, start state).

A branch is a function from the level's context to a `BranchPlan`. Adding a control is one
function and one registration.
"""
import dataclasses
import hashlib
from typing import Callable, Dict, Optional

import numpy as np

from lth_tf.pruning import Mask, random_mask_like
from lth_tf.registry import Registry


def derive_seed(seed: int, *tags) -> int:
  """A seed for one purpose (e.g. the re-init of level 3), stable across runs and machines."""
  text = ":".join(str(part) for part in (seed,) + tags)
  return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


@dataclasses.dataclass(frozen=True)
class LevelContext:
  """What a level knows when it plans its branches.

  Attributes:
    level: the level (>= 1; level 0 is the dense network).
    seed: the replicate seed.
    mask: the ticket's mask at this level (from magnitude pruning).
    rewind_weights: all weights at the rewind iteration k.
    rewind_optimizer: optimizer state at k, or None when levels start with a fresh optimizer.
    fresh_weights: builds newly initialised weights from a seed (same initialiser as θ0).
  """
  level: int
  seed: int
  mask: Mask
  rewind_weights: Dict[str, np.ndarray]
  rewind_optimizer: Optional[Dict[str, np.ndarray]]
  fresh_weights: Callable[[int], Dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class BranchPlan:
  """How one branch starts: its mask, its weights (masked later) and optimizer state (None: fresh)."""
  mask: Mask
  start_weights: Dict[str, np.ndarray]
  optimizer_state: Optional[Dict[str, np.ndarray]]


BRANCHES: Registry[Callable[[LevelContext], BranchPlan]] = Registry("branch")


@BRANCHES.register("ticket")
def ticket(context: LevelContext) -> BranchPlan:
  """The lottery ticket: the pruned mask with the survivors reset to θk."""
  return BranchPlan(context.mask, context.rewind_weights, context.rewind_optimizer)


@BRANCHES.register("reinit")
def reinit(context: LevelContext) -> BranchPlan:
  """Control: the same mask with fresh weights from the same initialiser, a fresh optimizer."""
  weights = context.fresh_weights(derive_seed(context.seed, "reinit", context.level))
  return BranchPlan(context.mask, weights, None)


@BRANCHES.register("random_prune")
def random_prune(context: LevelContext) -> BranchPlan:
  """Control: a random mask with the ticket's per-layer densities, from the same θk."""
  mask = random_mask_like(context.mask, derive_seed(context.seed, "random_prune", context.level))
  return BranchPlan(mask, context.rewind_weights, context.rewind_optimizer)
