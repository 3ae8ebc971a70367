"""Figures from summary rows: test accuracy at early stop against weights remaining, per branch."""
import os
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from lth_tf import io  # noqa: E402
from lth_tf.report.tables import aggregate  # noqa: E402

BRANCH_STYLE = {"ticket": ("tab:blue", "o"), "reinit": ("tab:orange", "s"),
                "random_prune": ("tab:green", "^")}


def accuracy_vs_weights(rows: List[Dict], path: str) -> str:
  """Writes the plot (log x-axis, dense on the left) atomically as PNG and returns its path."""
  stats = aggregate(rows)
  figure, axis = plt.subplots(figsize=(7, 4.5))
  dense = stats.get((0, "ticket"))
  if dense:
    axis.axhline(100 * dense["early_stop_test_accuracy"][0], color="gray", linestyle="--",
                 linewidth=1, label="dense")
  for branch, (color, marker) in BRANCH_STYLE.items():
    points = sorted(((s["weights_remaining"][0], s["early_stop_test_accuracy"])
                     for (level, b), s in stats.items() if b == branch or (level == 0 and dense)),
                    key=lambda p: -p[0])
    if not any(b == branch for (_, b) in stats):
      continue
    x = [100 * p[0] for p in points]
    y = [100 * p[1][0] for p in points]
    err = [100 * p[1][1] for p in points]
    axis.errorbar(x, y, yerr=err, color=color, marker=marker, capsize=3, label=branch)
  axis.set_xscale("log")
  ticks = sorted({round(100 * s["weights_remaining"][0], 1) for s in stats.values()})
  axis.set_xticks(ticks)
  axis.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
  axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  axis.invert_xaxis()
  axis.set_xlabel("weights remaining (%)")
  axis.set_ylabel("test accuracy at early stop (%)")
  axis.grid(True, which="both", alpha=0.3)
  axis.legend()
  figure.tight_layout()
  with io.atomic_path(path) as tmp:
    figure.savefig(tmp, format="png", dpi=120)
  plt.close(figure)
  return os.path.abspath(path)
