"""Learning-rate schedules as pure functions of the iteration, usable in and out of graphs, in
TensorFlow (`__call__`) and in any array library with `minimum` and `where` (`rate`: JAX)."""
from __future__ import annotations

from lth_tf.config import TrainingConfig


class LotterySchedule:
  """Linear warm-up, then a constant rate or step decays; a function of the iteration only.

  The same object gives the rate at iteration k when a rewound level resumes at k.
  """

  def __init__(self, base_rate: float, warmup_iterations: int = 0, decay_steps=(),
               decay_factor: float = 0.1):
    self.base_rate = float(base_rate)
    self.warmup_iterations = int(warmup_iterations)
    self.decay_steps = tuple(int(s) for s in decay_steps)
    self.decay_factor = float(decay_factor)

  @property
  def is_constant(self) -> bool:
    """True when the rate never changes (the optimizer's own rate can then stay as set)."""
    return self.warmup_iterations == 0 and not self.decay_steps

  def __call__(self, step):
    """The rate at `step` as a float32 TensorFlow scalar."""
    from lth_tf.compat import tf  # pylint: disable=import-outside-toplevel
    return self.rate(tf.cast(step, tf.float32), tf.constant(self.base_rate, tf.float32), tf)

  def rate(self, step, base_rate, ops):
    """The rate at `step`, a float32 scalar of the array library `ops` (its `minimum` and
    `where`), starting from `base_rate` (`self.base_rate` as such a scalar)."""
    rate = base_rate
    if self.warmup_iterations > 0:
      rate *= ops.minimum(1.0, (step + 1.0) / float(self.warmup_iterations))
    for boundary in self.decay_steps:
      rate *= ops.where(step >= float(boundary), self.decay_factor, 1.0)
    return rate

  def get_config(self):
    return {"base_rate": self.base_rate, "warmup_iterations": self.warmup_iterations,
            "decay_steps": self.decay_steps, "decay_factor": self.decay_factor}


def from_config(config: TrainingConfig) -> LotterySchedule:
  decay_steps = config.lr_decay_steps if config.lr_schedule == "step" else ()
  return LotterySchedule(config.learning_rate, config.warmup_iterations, decay_steps,
                         config.lr_decay_factor)
