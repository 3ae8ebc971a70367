"""Text tables of summary rows: one line per level, one column group per branch, replicates averaged."""
from collections import defaultdict
from typing import Dict, List

import numpy as np

from lth_tf import branches as branches_lib


def aggregate(rows: List[Dict]) -> Dict:
  """{(level, branch): {key: (mean, std, n)}} over replicates."""
  groups = defaultdict(list)
  for row in rows:
    groups[(row["level"], row["branch"])].append(row)
  out = {}
  for key, members in groups.items():
    stats = {}
    for field in ("weights_remaining", "early_stop_iteration", "early_stop_test_accuracy",
                  "final_test_accuracy", "min_validation_loss"):
      values = np.array([m[field] for m in members], np.float64)
      stats[field] = (float(values.mean()), float(values.std()), len(values))
    out[key] = stats
  return out


def level_table(rows: List[Dict]) -> str:
  """A fixed-width table: level, weights remaining, then early-stop iteration and accuracies per branch."""
  if not rows:
    return "(no finished levels)"
  stats = aggregate(rows)
  branches = branches_lib.ordered({k[1] for k in stats})
  levels = sorted({k[0] for k in stats})
  header = f"{'level':>5} {'remaining':>9}"
  for branch in branches:
    header += f" | {branch + ' es-iter':>20} {'es-acc':>14} {'final-acc':>14}"
  lines = [header, "-" * len(header)]
  for level in levels:
    ticket = stats.get((level, "ticket")) or next(v for k, v in stats.items() if k[0] == level)
    line = f"{level:>5} {100 * ticket['weights_remaining'][0]:>8.2f}%"
    for branch in branches:
      s = stats.get((level, branch))
      if s is None:
        line += f" | {'-':>20} {'-':>14} {'-':>14}"
        continue
      line += (f" | {_mean_std(s['early_stop_iteration'], 1, 0):>20}"
               f" {_mean_std(s['early_stop_test_accuracy'], 100, 2):>14}"
               f" {_mean_std(s['final_test_accuracy'], 100, 2):>14}")
    lines.append(line)
  replicates = len({row["replicate"] for row in rows})
  spread = (f"mean ± std over {replicates} replicates" if replicates > 1
            else "one replicate: no error bars")
  lines.append(f"(accuracies in %, early stop = minimum validation loss; {spread})")
  return "\n".join(lines)


def _mean_std(stat, scale: float, digits: int) -> str:
  mean, std, n = stat
  if n > 1:
    return f"{mean * scale:.{digits}f}±{std * scale:.{digits}f}"
  return f"{mean * scale:.{digits}f}"
