"""N:M structured sparsity (2:4 by default, the rule of tfmot's `sparsity_m_by_n=(2, 4)`): in
every block of M consecutive weights along a kernel's input axis, at each output channel (and
each kernel position of a convolution), keep the N of largest |w| among the surviving ones; of
equal magnitudes the earlier input position is kept. It scores the trained weights, so with
rewinding it is an IMP ticket; its pattern is fixed, so level 1's mask is final and more levels
are refused before training (`final_after`).

The blocks: a Keras kernel is [..., inputs, outputs] (Dense [in, out], Conv2D [h, w, in, out]).
tfmot reorders a Dense kernel to TFLite's [out, in] and a Conv2D kernel to [out, h, w, in] and
groups the last axis, the inputs, in blocks of M; a block is therefore M consecutive input
channels at one output channel and one kernel position, which is what is kept here (the
input axis is the kernel's second to last; tfmot takes rank-2 and rank-4 kernels only, the same
axis serves Conv1D and Conv3D kernels). tfmot's pair counts zeros, N here counts kept weights:
at 2:4 the two are the same pattern.

The layers: those the pruning policy prunes (layerwise scope: every layer whose kind's rate is
above 0, e.g. `--output_rate=0` keeps the output layer dense; the rate's value is not used, a
chosen layer keeps N/M of its weights; global scope: the `--global_layers` set, e.g.
`pointwise`). Of those, two kinds stay dense, and `lth find` logs which before training:
- depthwise kernels: each channel has its own filter, there is no input axis to block (tfmot's
  registry never prunes DepthwiseConv2D; the kind is for a user layer that declares it);
- kernels whose input dimension is not a multiple of M, e.g. a first convolution on 3 colour
  channels (tfmot pads a partial last block, which no N:M kernel reads).
A model with no layer left to prune is refused before training.
"""
from typing import Dict, Optional, Tuple

import numpy as np

from lth_tf import options
from lth_tf.errors import ConfigError
from lth_tf.pruning.mask import Mask
from lth_tf.pruning.strategies.base import STRATEGIES, PruneRequest, PruningStrategy

INPUT_AXIS = -2  # of a Keras kernel [..., inputs, outputs]


def nm_pattern(text: str) -> Tuple[int, int]:
  """(N, M) of an `N:M` pattern (`--nm`), 1 <= N < M; a one-line `ConfigError`
  otherwise."""
  parts = str(text).split(":")
  try:
    n, m = (int(part) for part in parts) if len(parts) == 2 else (0, 0)
  except ValueError:
    n, m = 0, 0
  if not 1 <= n < m:
    raise ConfigError(f"nm must be N:M with 1 <= N < M (keep N of every M weights), e.g. 2:4; "
                      f"got {text!r}")
  return n, m


NM = options.declare("pruning", options.Option(
    "nm", "2:4", "`N:M` of `--pruning_strategy=nm`: keep N of every M consecutive weights along "
    "each kernel's input axis, at every output channel (2:4, the pattern sparse tensor cores "
    "read; tfmot's `sparsity_m_by_n=(2, 4)` counts the zeros of the same pattern). Needs "
    "1 <= N < M; read by the `nm` strategy only.", nm_pattern, "nm"))


def _pattern(request: PruneRequest) -> Tuple[int, int]:
  return request.options.get("nm") or nm_pattern(NM.default)


def block_mask(weights: np.ndarray, alive: np.ndarray, n: int, m: int) -> np.ndarray:
  """In every block of `m` consecutive entries along the input axis (at each other index),
  keeps the `n` of largest |w| among `alive` (all of them where fewer survive); an earlier
  position wins a tie. The input dimension must be a multiple of `m`."""
  magnitude = np.moveaxis(np.abs(np.asarray(weights, np.float64)), INPUT_AXIS, -1)
  live = np.moveaxis(np.asarray(alive, np.bool_), INPUT_AXIS, -1)
  blocks = np.where(live, magnitude, -np.inf).reshape(-1, m)
  order = np.argsort(-blocks, axis=1, kind="stable")  # largest first, ties by position
  keep = np.zeros(blocks.shape, np.bool_)
  np.put_along_axis(keep, order[:, :n], True, axis=1)
  keep &= live.reshape(-1, m)
  return np.moveaxis(keep.reshape(live.shape), -1, INPUT_AXIS)


def chosen_layers(request: PruneRequest) -> Tuple[str, ...]:
  """The weights the policy prunes: the global set, or every layer with a rate above 0."""
  if request.global_layers is not None:
    return tuple(request.global_layers)
  return tuple(name for name in request.mask if request.layer_rates.get(name, 0.0) > 0.0)


def dense_reason(request: PruneRequest, name: str) -> Optional[str]:
  """Why chosen weight `name` stays dense under N:M, or None when it is pruned."""
  _, m = _pattern(request)
  shape = request.mask[name].shape
  if request.kinds.get(name) == "depthwise":
    return "a depthwise kernel has no input axis to block"
  if len(shape) < 2:
    return f"shape {tuple(shape)} is no kernel [..., inputs, outputs]"
  if shape[INPUT_AXIS] % m:
    return f"its {shape[INPUT_AXIS]} inputs are not a multiple of {m}"
  return None


def nm_prune(request: PruneRequest) -> Mask:
  """The request's mask with every chosen layer that can be pruned N:M (`dense_reason`) cut to
  N of every M along its inputs, by magnitude among the surviving weights."""
  n, m = _pattern(request)
  new: Dict[str, np.ndarray] = dict(request.mask.to_arrays())
  for name in chosen_layers(request):
    if dense_reason(request, name) is None:
      new[name] = block_mask(request.weights[name], request.mask[name], n, m)
  return Mask.from_dict(new)


def nm_check(request: PruneRequest) -> Tuple[str, ...]:
  """Refuses a model of which no chosen layer can be pruned N:M; the lines name the layers it
  leaves dense and why."""
  n, m = _pattern(request)
  chosen = chosen_layers(request)
  reasons = {name: dense_reason(request, name) for name in chosen}
  pattern = f"{n}:{m}"
  if not chosen or all(reasons.values()):
    why = "; ".join(f"{name}: {reason}" for name, reason in reasons.items()) or (
        "the policy prunes no layer (every rate is 0)")
    raise ConfigError(f"--pruning_strategy=nm: no layer of the model can be pruned {pattern} "
                      f"({why})")
  return tuple(f"{pattern} pruning leaves {name} dense: {reason}"
               for name, reason in reasons.items() if reason)


STRATEGIES.add("nm", PruningStrategy(
    prune=nm_prune, final_after=1, options=("nm",), check=nm_check,
    summary="N:M structured (--nm, 2:4 by default): the largest |w| of every M consecutive "
            "input weights, per output channel; one level"))
