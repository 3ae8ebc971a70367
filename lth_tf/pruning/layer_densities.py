"""Per-layer counts of a random mask from an overall count: in proportion to a per-layer density
rule (Erdős–Rényi-kernel, uniform), layers that cannot hold their share capped and the rest
rescaled, rounded so that the counts add up to the overall count exactly."""
from typing import Dict, Mapping, Tuple

import numpy as np


def erdos_renyi_kernel(shape: Tuple[int, ...]) -> float:
  """The ERK density rule (Evci et al. 2020, RigL): a layer's density ∝ the sum of its kernel's
  dimensions over their product ((h + w + c_in + c_out) / (h w c_in c_out) for a convolution,
  (n_in + n_out) / (n_in n_out) for a dense layer)."""
  return float(np.sum(shape)) / float(np.prod(shape))


def uniform(shape: Tuple[int, ...]) -> float:
  """Every layer at the same density."""
  del shape
  return 1.0


def allocate(total: int, shapes: Mapping[str, Tuple[int, ...]], rule,
             available: Mapping[str, int]) -> Dict[str, int]:
  """Counts per layer, `total` in all: layer l keeps ε·rule(shape_l)·size_l weights, ε the
  scale that meets `total`; a layer whose share exceeds `available[l]` (its size: density > 1,
  or what survives of it) keeps all it has and ε is recomputed for the others, as RigL does.

  The real-valued shares are rounded by largest remainder, so the counts add up to `total`.
  """
  if total > sum(available.values()):
    raise ValueError(f"cannot keep {total} weights of {sum(available.values())}")
  raw = {name: rule(shape) * float(np.prod(shape)) for name, shape in shapes.items()}
  capped: Dict[str, int] = {}
  free = [name for name in shapes]
  while True:
    budget = total - sum(capped.values())
    scale = budget / sum(raw[name] for name in free) if free else 0.0
    over = [name for name in free if scale * raw[name] > available[name]]
    if not over:
      break
    for name in over:
      capped[name] = int(available[name])
      free.remove(name)
  shares = {name: scale * raw[name] for name in free}
  counts = {name: int(np.floor(share)) for name, share in shares.items()}
  left = budget - sum(counts.values())
  order = sorted((name for name in free if counts[name] < available[name]),
                 key=lambda name: -(shares[name] - counts[name]))
  for name in order[:left]:
    counts[name] += 1
  counts.update(capped)
  return {name: counts[name] for name in shapes}
