"""The records of `lth stability`: one pair's `path.json`, the roll-up `stability.json`, the table.

A pair record (one replicate, level and branch) is a flat JSON object:

    replicate, level, branch, rewind_iteration, start_iteration, weights_remaining
    data_seeds            the two copies' data-order seeds (`derive_seed`, see `lth_tf.stability.experiment`)
    instability           test error barrier: max test error on the path - mean endpoint error
    train_instability     the same on the fixed training subset
    endpoint_test_error   the two copies' own final test errors (their metrics.json)
    batch_norm            whether the network has BatchNorm (the normalisation rule applies)
    path                  one row per α: alpha, test_loss, test_error, train_loss, train_error
    settings              how the path was evaluated (points, normalisation and its batches,
                          training subset size and seed): a record is reused only by a run
                          with the same settings

`stability.json` is `{"experiment_hash", "summary", "pairs"}`: the pair records in (replicate,
level, branch) order, and one summary row per (level, branch, rewind_iteration) with the mean
and standard deviation of the instabilities over replicates (`summary`); `by_pair` indexes the
records the same way. Neither record needs TensorFlow to read.
"""
from typing import Dict, Iterable, List, Tuple

import numpy as np

from lth_tf import branches as branches_lib
from lth_tf import io
from lth_tf.errors import CorruptFileError

PAIR_KEYS = ("replicate", "level", "branch", "rewind_iteration", "start_iteration",
             "weights_remaining", "data_seeds", "instability", "train_instability",
             "endpoint_test_error", "batch_norm", "path", "settings")
ROW_KEYS = ("alpha", "test_loss", "test_error", "train_loss", "train_error")


def read_pair(path: str) -> Dict:
  """A pair record; `CorruptFileError` (one line) if it is not one."""
  record = io.read_json(path)
  if not isinstance(record, dict) or any(key not in record for key in PAIR_KEYS) or not all(
      isinstance(row, dict) and all(key in row for key in ROW_KEYS) for row in record["path"]):
    raise CorruptFileError(f"{path}: not a stability pair record; delete it and rerun to "
                           "evaluate the path again (the trained copies are kept)")
  return record


def write_pair(path: str, record: Dict) -> None:
  io.write_json(path, {key: record[key] for key in PAIR_KEYS})


def write(path: str, experiment_hash: str, pairs: Iterable[Dict]) -> None:
  pairs = list(pairs)
  io.write_json(path, {"experiment_hash": experiment_hash, "summary": summary(pairs),
                       "pairs": pairs})


def summary(pairs: Iterable[Dict]) -> List[Dict]:
  """One row per (level, branch, rewind_iteration): its replicates, weights remaining, and the
  mean and standard deviation over replicates of both instabilities."""
  rows = []
  for (level, branch, k), group in sorted(by_pair(pairs).items()):
    row = {"level": level, "branch": branch, "rewind_iteration": k,
           "replicates": [p["replicate"] for p in group],
           "weights_remaining": group[0]["weights_remaining"]}
    for key in ("instability", "train_instability"):
      values = np.asarray([p[key] for p in group], np.float64)
      row[f"{key}_mean"], row[f"{key}_std"] = float(values.mean()), float(values.std())
    rows.append(row)
  return rows


def read(path: str) -> List[Dict]:
  """The pair records of a `stability.json`."""
  record = io.read_json(path)
  if not isinstance(record, dict) or not isinstance(record.get("pairs"), list):
    raise CorruptFileError(f"{path}: not a stability record (an object with pairs)")
  return record["pairs"]


def by_pair(pairs: Iterable[Dict]) -> Dict[Tuple[int, str, int], List[Dict]]:
  """The records per (level, branch, rewind_iteration), each list in replicate order."""
  out: Dict[Tuple[int, str, int], List[Dict]] = {}
  for pair in sorted(pairs, key=lambda p: p["replicate"]):
    out.setdefault((pair["level"], pair["branch"], pair["rewind_iteration"]), []).append(pair)
  return out


def _endpoint_error(pair: Dict) -> float:
  return (pair["path"][0]["test_error"] + pair["path"][-1]["test_error"]) / 2.0


def table(pairs: Iterable[Dict]) -> str:
  """One line per (level, branch, k): weights remaining, instability on the test set and on the
  training subset and the mean test error of the path's endpoints (mean ± std over replicates,
  in percentage points; with BatchNorm the endpoints have recomputed statistics)."""
  grouped = by_pair(pairs)
  lines = [f"{'level':>5} {'branch':<14} {'k':>6} {'weights':>8} {'n':>2} "
           f"{'instability (test)':>19} {'(train)':>15} {'endpoint test error':>20}"]
  keys = sorted(grouped, key=lambda key: (key[2], key[0], branches_lib.ordered(
      [p for p in {k[1] for k in grouped}]).index(key[1])))
  for level, branch, k in keys:
    group = grouped[level, branch, k]

    def stat(values):
      values = 100.0 * np.asarray(values, np.float64)
      return f"{values.mean():6.2f} ± {values.std():5.2f}"

    lines.append(
        f"{level:>5} {branch:<14} {k:>6} {100 * group[0]['weights_remaining']:7.2f}% "
        f"{len(group):>2} {stat([p['instability'] for p in group]):>19} "
        f"{stat([p['train_instability'] for p in group]):>15} "
        f"{stat([_endpoint_error(p) for p in group]):>20}")
  return "\n".join(lines)
