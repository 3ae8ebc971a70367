"""Compute accounting: iterations, wall time and training FLOPs that count only unpruned weights.

The rule (an estimate for an ideal sparse implementation):
- A layer's forward multiply-accumulates (MACs) per example are the non-zero (unmasked) weights
  of its kernel × the spatial positions of its output: 1 for a Dense layer on a flat input,
  H_out × W_out for a 2-D convolution (each kept kernel weight is used once per output position).
- Biases, batch norm, activations, pooling and the loss are not counted (they are a small
  fraction for the networks here and do not depend on the mask).
- Forward FLOPs = 2 × MACs (a multiply and an add). One training iteration costs 3 × the forward
  FLOPs (the backward pass, gradients of activations and of weights, is about twice the
  forward) × the batch size. Evaluation passes are not counted as training FLOPs.
The training loop itself runs dense kernels with masks, so wall time does not fall with density;
the FLOPs say what a sparse kernel could save.

The cost of finding a ticket is the training of its ticket branch at every level up to its own
(level 0 dense, then each pruned level); controls are not needed to find it. When a ticket does
not record that cost, it is estimated from its config: level l trains `iterations` (level 0) or
`iterations - rewind_iteration` iterations with every layer at density d_L^(l / L), where d_L is
the layer's density in the ticket (exact for iterative layerwise pruning at a fixed rate).
"""
from typing import Dict, Mapping, Optional

import numpy as np

from lth_tf import mechanism
from lth_tf.pruning import structure

FORWARD_FLOPS_PER_MAC = 2
TRAIN_FORWARD_MULTIPLIER = 3

COMPUTE_KEYS = ("iterations_trained", "wall_time_s", "train_flops")
# Wall time varies from run to run, so summary rows (which must be reproducible) leave it out.
SUMMARY_COMPUTE_KEYS = ("iterations_trained", "train_flops")


def output_positions(model) -> Dict[str, int]:
  """How many times per example each top-level layer that holds a pruned weight applies it, keyed
  by the layer's name: its spatial or time positions (a Dense layer on vectors: 1); a recurrent
  layer applies its kernels once per input step; an embedding table is looked up, not multiplied
  (0). A layer whose shapes are unknown (inside a subclassed model) counts 1."""
  positions = {}
  families = {}
  for entry in structure.masked(model):
    families.setdefault(entry.name.split("/")[0], set()).add(entry.family)
  for layer in model.layers:
    inner = structure.unwrap(layer)
    if inner.name not in families:
      continue
    if families[inner.name] == {"embedding"}:
      positions[inner.name] = 0
      continue
    implementation = mechanism.of(inner)
    try:
      shape = (implementation.input_shape(inner) if "recurrent" in families[inner.name]
               else implementation.output_shape(layer))
    except (AttributeError, RuntimeError, ValueError):
      positions[inner.name] = 1
      continue
    if isinstance(shape, list):
      shape = shape[0]
    if "recurrent" in families[inner.name]:
      middle = [int(shape[1])] if len(shape) > 2 and shape[1] else []
    else:
      middle = [int(d) for d in shape[1:-1] if d] if len(shape) > 2 else []
    positions[inner.name] = int(np.prod(middle)) if middle else 1
  return positions


def forward_macs(positions: Mapping[str, int], kept: Mapping[str, float]) -> float:
  """Forward MACs per example: Σ kept weights of each prunable weight × its layer's positions.

  Args:
    positions: from `output_positions`.
    kept: number of kept (non-zero) weights per prunable weight name (`layer/kernel`); may be
      fractional for estimates.
  """
  return float(sum(count * positions[name.split("/")[0]] for name, count in kept.items()))


def train_flops(macs: float, batch_size: int, iterations: int) -> float:
  """Training FLOPs of `iterations` iterations at `macs` forward MACs per example."""
  return float(TRAIN_FORWARD_MULTIPLIER * FORWARD_FLOPS_PER_MAC * macs * batch_size * iterations)


def branch_compute(model, mask, batch_size: int, iterations_trained: int,
                   wall_time_s: float) -> Dict[str, float]:
  """The compute record of one trained branch (stored in its metrics.json)."""
  macs = forward_macs(output_positions(model), mask.layer_counts())
  dense_macs = forward_macs(output_positions(model), {n: mask[n].size for n in mask})
  return {
      "iterations_trained": int(iterations_trained),
      "wall_time_s": float(wall_time_s),
      "forward_macs_per_example": macs,
      "dense_forward_macs_per_example": dense_macs,
      "train_flops": train_flops(macs, batch_size, iterations_trained),
  }


def total(records) -> Dict[str, float]:
  """Sums the compute keys over records (rows or metrics); missing values count as 0."""
  records = list(records)
  out = {key: 0.0 for key in COMPUTE_KEYS}
  for record in records:
    for key in COMPUTE_KEYS:
      out[key] += float(record.get(key) or 0.0)
  out["iterations_trained"] = int(out["iterations_trained"])
  out["runs"] = len(records)
  return out


def estimated_search(model, mask, level: int, iterations: int, rewind_iteration: int,
                     batch_size: int, wall_time_per_level: Optional[float]) -> Dict[str, float]:
  """Estimates the cost of finding a ticket at `level` (see the module docstring)."""
  positions = output_positions(model)
  flops, its = 0.0, 0
  for current in range(level + 1):
    fraction = current / level if level else 0.0
    kept = {n: mask[n].size * float(mask[n].mean()) ** fraction for n in mask}
    steps = iterations if current == 0 else iterations - rewind_iteration
    flops += train_flops(forward_macs(positions, kept), batch_size, steps)
    its += steps
  return {"iterations_trained": its, "train_flops": flops, "levels_trained": level + 1,
          "wall_time_s": None if wall_time_per_level is None else wall_time_per_level * (level + 1),
          "estimated": True}
