"""The data order: which training examples iteration k takes, a pure function of (seed, k)."""
import numpy as np


def batch_indices(num_examples: int, batch_size: int, seed: int, start: int, stop: int) -> np.ndarray:
  """Example indices of iterations [start, stop), concatenated; the last partial batch is dropped."""
  steps_per_epoch = num_examples // batch_size
  pieces = []
  for epoch in range(start // steps_per_epoch, (stop - 1) // steps_per_epoch + 1):
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    first = max(start, epoch * steps_per_epoch) - epoch * steps_per_epoch
    last = min(stop, (epoch + 1) * steps_per_epoch) - epoch * steps_per_epoch
    pieces.append(order[first * batch_size:last * batch_size])
  return np.concatenate(pieces).astype(np.int32)
