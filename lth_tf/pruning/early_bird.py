"""The early-bird rule (You et al., ICLR 2020): draw the ticket once the masks that pruning would
produce at consecutive evaluations of the dense training have stopped changing, i.e. the last
`window` normalised Hamming distances between consecutive masks (`Mask.hamming_distance`) are
all below `threshold`."""
import dataclasses
from typing import Optional, Sequence


@dataclasses.dataclass(frozen=True)
class EarlyBirdRule:
  """When to draw an early-bird ticket.

  Attributes:
    threshold: the distances must all be strictly below it; 0 switches the rule off.
    window: how many of the most recent distances must be.
  """
  threshold: float
  window: int = 5

  @property
  def on(self) -> bool:
    return self.threshold > 0

  def draws(self, distances: Sequence[Optional[float]]) -> bool:
    """Whether the ticket is drawn after `distances` (one per evaluation, in order; None where
    there was no previous mask, which is skipped)."""
    if not self.on:
      return False
    known = [d for d in distances if d is not None]
    recent = known[-self.window:]
    return len(recent) == self.window and all(d < self.threshold for d in recent)
