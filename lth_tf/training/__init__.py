"""Training: one fit driver over the step engines, optimizers, learning-rate schedules, and
model/optimizer state."""
from lth_tf.training.loop import Trainer, TrainResult, batch_indices
from lth_tf.training.state import get_weights, set_weights

__all__ = ["Trainer", "TrainResult", "batch_indices", "get_weights", "set_weights"]
