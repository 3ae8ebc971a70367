"""Level 0 watched for an early-bird ticket (You et al., ICLR 2020).

With `--early_bird_threshold` (and levels to follow), the watch computes at every evaluation of
the dense training the mask the next prune would produce (level 1's mask, by the configured
policy and strategy, on the weights the model holds there) and its normalised Hamming distance
to the previous evaluation's mask, and writes the distance into that evaluation's curve row
(`rundir.MASK_DISTANCE`; the row is checkpointed and written with the curve, so a resumed run
keeps the distances). It ends the dense training at the first evaluation at or after the rewind
iteration k (θk must exist) where the early-bird rule draws the ticket; level 1 then prunes the
weights there with the same call, which gives exactly the drawn mask.

Only a strategy whose level-1 mask follows the dense training's weights has a ticket to draw
(`PruningStrategy.watches_training`: magnitude, N:M); the configuration refuses a threshold
under the others (`pruning.check_config`). Scoring does not change the model it scores
(`pruning.saliency`). Without a threshold there is no watch: the dense training computes no
mask and records no distance.
"""
from typing import Dict, List, Optional

from lth_tf import pruning
from lth_tf.config import ExperimentConfig
from lth_tf.pruning.early_bird import EarlyBirdRule
from lth_tf.rundir import MASK_DISTANCE
from lth_tf.training import get_weights


class MaskWatch:
  """`on_iteration` of level 0 (`BranchRun.run`): returns True to end the training there.

  Args:
    config: the experiment (pruning policy, strategy, early-bird rule, rewind iteration).
    replicate: the replicate whose model trains (a `ReplicateModel`).
    batch: seeded training batches for strategies that score with data (`Splits.batch`).
    seed: the replicate seed (the strategy's seed, as level 1 uses it).
    mask: the mask level 0 trains under (all ones, or a saved ticket's).
  """

  def __init__(self, config: ExperimentConfig, replicate, batch, seed: int, mask: pruning.Mask):
    self.config = config
    self.replicate = replicate
    self.batch = batch
    self.seed = seed
    self.mask = mask
    self.rule = EarlyBirdRule(config.pruning.early_bird_threshold,
                              config.pruning.early_bird_window)
    self.previous = None

  def next_mask(self) -> pruning.Mask:
    """The mask level 1 would have if level 0 ended now."""
    model = self.replicate.model
    return pruning.next_mask(self.config.pruning, self.replicate.kinds, get_weights(model),
                             self.mask, rounds=1, seed=self.seed, model=model, batch=self.batch)

  def __call__(self, iteration: int, rows: List[Dict]) -> bool:
    """The first call (the start, fresh or resumed) takes the mask there; every later call at
    an evaluation row records the distance in it and says whether the ticket is drawn."""
    if self.previous is not None and (not rows or rows[-1]["iteration"] != iteration):
      return False  # an extra boundary (k), not an evaluation
    mask = self.next_mask()
    if self.previous is None:
      self.previous = mask
      return False
    rows[-1][MASK_DISTANCE] = mask.hamming_distance(self.previous)
    self.previous = mask
    return (iteration >= self.config.pruning.rewind_iteration
            and self.rule.draws([row.get(MASK_DISTANCE) for row in rows]))


def watch_for(config: ExperimentConfig, replicate, batch, seed: int,
              mask: pruning.Mask) -> Optional[MaskWatch]:
  """Level 0's watch (arguments as `MaskWatch`), or None: no threshold, or no level follows."""
  if not config.pruning.levels or not EarlyBirdRule(config.pruning.early_bird_threshold).on:
    return None
  return MaskWatch(config, replicate, batch, seed, mask)
