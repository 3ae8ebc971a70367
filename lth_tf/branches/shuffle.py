"""Ablation (Frankle et al. 2021): the ticket's mask permuted at random within each layer (each
layer keeps its count), from the same θk and optimizer: what the per-layer densities alone give."""
import numpy as np

from lth_tf.branches.base import LISTED, Branch, BranchContext, BranchPlan, register


def shuffled(mask, seed: int):
  """`mask` with every layer's entries permuted by one seeded generator, layer by layer."""
  rng = np.random.default_rng(seed)
  arrays = {}
  for name in mask:
    array = np.asarray(mask[name])
    arrays[name] = rng.permutation(array.reshape(-1)).reshape(array.shape)
  return type(mask).from_dict(arrays)


def plan(context: BranchContext) -> BranchPlan:
  return BranchPlan(shuffled(context.mask, context.seed_for("shuffle")), context.rewind_weights,
                    context.optimizer_at(context.rewind_iteration),
                    context.rewind_iteration)


register(Branch("shuffle", plan, "the ticket's mask shuffled within each layer, from θk",
                enabled_by={"find": LISTED}, order=13, marker="*", linestyle=":"))
