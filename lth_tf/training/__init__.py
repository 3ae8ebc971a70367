"""Training: one fit driver over the step engines, optimizers, learning-rate schedules, and
model/optimizer state.

`Trainer` (the TensorFlow training loop) is imported on first use: the JAX trainer
(`lth_tf.training.jax_trainer`) and the state functions import no TensorFlow.
"""
from lth_tf.training.driver import TrainResult
from lth_tf.training.order import batch_indices
from lth_tf.training.state import get_weights, set_weights


def __getattr__(name):
  if name == "Trainer":
    from lth_tf.training.loop import Trainer  # pylint: disable=import-outside-toplevel
    return Trainer
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Trainer", "TrainResult", "batch_indices", "get_weights", "set_weights"]
