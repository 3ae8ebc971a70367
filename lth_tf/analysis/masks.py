"""Mask comparison: the masks of experiment directories and saved tickets, overlapped pairwise.

Every finished branch of the chosen names (the ticket of each level, and in a transfer experiment
the target's own ticket) is one mask; every pair of masks is compared on the layers both have
with the same shape. A layer only one has, or with another shape (an input layer adapted to other
data, a head replaced for other classes), is skipped for that pair and named with the reason.
"""
import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

from lth_tf import io
from lth_tf.analysis import overlap
from lth_tf.errors import TicketError, UserError
from lth_tf.pruning.mask import Mask
from lth_tf.rundir import FinishedExperiment

DEFAULT_BRANCHES = ("ticket", "target_ticket")


@dataclasses.dataclass(frozen=True)
class LabelledMask:
  """One mask and where it comes from.

  Attributes:
    experiment: the experiment it belongs to (the directory's name, or a ticket's recorded
      experiment hash), which decides how two masks relate.
    replicate, level, branch: its branch in that experiment (a ticket's recorded ones).
    mask: the mask.
    label: how tables and figures name it.
  """
  experiment: str
  replicate: Optional[int]
  level: Optional[int]
  branch: str
  mask: Mask
  label: str


# How two masks relate, by (same replicate, same level, same branch) within one experiment.
RELATIONS = {(True, True, True): "same", (True, True, False): "branches",
             (True, False, True): "levels", (False, True, True): "replicates"}


def relation(a: LabelledMask, b: LabelledMask) -> str:
  """levels, replicates or branches of one experiment; experiments; or other."""
  if a.experiment != b.experiment:
    return "experiments"
  return RELATIONS.get((a.replicate == b.replicate, a.level == b.level, a.branch == b.branch),
                       "other")


def read_mask(path: str) -> Mask:
  """A branch's mask file; a missing, corrupt or non-boolean one is one line naming it."""
  arrays = io.read_arrays(path)
  if not arrays:
    raise TicketError(f"{path}: holds no mask")
  try:
    return Mask.from_dict(arrays)
  except TicketError as error:
    raise TicketError(f"{path}: {error}") from None


def from_experiment(directory: str, levels: Optional[Sequence[int]] = None,
                    branches: Sequence[str] = DEFAULT_BRANCHES) -> List[LabelledMask]:
  """The masks of the finished `branches` of an experiment directory (of `levels`, or all).

  Raises:
    UserError: not an experiment directory, no finished branch yet, none of those asked for, or a
      damaged file (one line naming it).
  """
  experiment = FinishedExperiment(directory)
  name, rows = experiment.name, experiment.rows
  chosen = sorted({(r["replicate"], r["level"], r["branch"]) for r in rows
                   if r["branch"] in branches and (levels is None or r["level"] in levels)},
                  key=lambda slot: (slot[0], slot[1], list(branches).index(slot[2])))
  if not chosen:
    where = f" at levels {', '.join(map(str, levels))}" if levels is not None else ""
    raise UserError(f"{directory} has no finished {' or '.join(branches)} branch{where}: "
                    "no masks to compare")
  return [LabelledMask(name, seed, level, branch,
                       read_mask(experiment.branch_files(seed, level, branch).mask),
                       f"{name} r{seed} L{level} {branch}")
          for seed, level, branch in chosen]


def from_ticket(name_or_path: str) -> LabelledMask:
  """A saved ticket's mask (`lth_tf.tickets`, which loads TensorFlow: only when one is given)."""
  from lth_tf import tickets  # pylint: disable=import-outside-toplevel
  ticket = tickets.read(tickets.resolve(name_or_path), consent=False)  # its mask only
  provenance = ticket.provenance
  return LabelledMask(str(provenance.get("experiment_hash") or name_or_path),
                      provenance.get("replicate"), provenance.get("level"), "ticket", ticket.mask,
                      f"ticket {os.path.basename(os.path.abspath(name_or_path))}")


@dataclasses.dataclass(frozen=True)
class Pair:
  """Two masks compared: per layer, overall (None when no layer matches), and what was skipped."""
  a: int
  b: int
  relation: str
  layers: Dict[str, overlap.Overlap]
  overall: Optional[overlap.Overlap]
  skipped: Dict[str, str]


def _skip_reason(a: Mask, b: Mask, name: str) -> Optional[str]:
  if name not in a:
    return "only in B"
  if name not in b:
    return "only in A"
  if a[name].shape != b[name].shape:
    return f"shape {tuple(a[name].shape)} in A, {tuple(b[name].shape)} in B"
  return None


def compare(masks: Sequence[LabelledMask]) -> List[Pair]:
  """Every pair (i < j) of `masks`, compared on the layers that match by name and shape."""
  # Per (layer, shape): the masks that have it, and |A_i ∩ A_j| of all of them at once.
  groups: Dict[Tuple[str, Tuple[int, ...]], List[int]] = {}
  for index, item in enumerate(masks):
    for name in item.mask:
      groups.setdefault((name, tuple(item.mask[name].shape)), []).append(index)
  counts = {key: (members, overlap.intersections([masks[i].mask[key[0]] for i in members]))
            for key, members in groups.items()}
  pairs = []
  for i, first in enumerate(masks):
    for j in range(i + 1, len(masks)):
      second = masks[j]
      names = list(first.mask) + [n for n in second.mask if n not in first.mask]
      layers, skipped = {}, {}
      for name in names:
        reason = _skip_reason(first.mask, second.mask, name)
        if reason:
          skipped[name] = reason
          continue
        members, matrix = counts[(name, tuple(first.mask[name].shape))]
        p, q = members.index(i), members.index(j)
        layers[name] = overlap.layer(first.mask[name].size, int(matrix[p, p]), int(matrix[q, q]),
                                     int(matrix[p, q]))
      pairs.append(Pair(i, j, relation(first, second), layers,
                        overlap.combined(layers.values()) if layers else None, skipped))
  return pairs
