"""Figures from summary rows and learning curves, as the lottery-ticket papers draw them."""
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib.ticker

from lth_tf import branches as branches_lib
from lth_tf import figures
from lth_tf.figures import save
from lth_tf.report.tables import aggregate

Series = Tuple[str, List[Dict]]  # (experiment label, summary rows)


def metric_vs_weights(series: Sequence[Series], metric: str, ylabel: str, path: str,
                      scale: float = 100.0, shared_dense: bool = False) -> str:
  """One line per experiment and branch: mean ± std over replicates against weights remaining
  (log axis, dense on the left); each experiment's dense level is a dashed reference line (one
  line for all with `shared_dense`: a rewind sweep's experiments share their dense level)."""
  figure, axis = figures.new(figsize=(7.5, 4.8))
  ticks = set()
  colors = figures.colors()
  for index, (label, rows) in enumerate(series):
    stats = aggregate(rows)
    dense = stats.get((0, "ticket"))
    if dense and not (shared_dense and index):  # a shared dense level: drawn once, in gray
      one = len(series) == 1 or shared_dense
      axis.axhline(scale * dense[metric][0],
                   color="gray" if shared_dense else colors[index % len(colors)], linestyle="--",
                   linewidth=0.8, alpha=0.6,
                   label="dense (level 0)" if one else f"{label} dense (level 0)")
    for branch in branches_lib.ordered({b for _, b in stats}):
      marker, style = branches_lib.style(branch)
      points = sorted(((s["weights_remaining"][0], s[metric]) for (level, b), s in stats.items()
                       if b == branch or (level == 0 and branch != "ticket" and dense)),
                      key=lambda p: -p[0])
      if not any(b == branch for (_, b) in stats):
        continue
      ticks.update(round(100 * p[0], 1) for p in points)
      name = branch if len(series) == 1 else f"{label} {branch}"
      axis.errorbar([100 * p[0] for p in points], [scale * p[1][0] for p in points],
                    yerr=[scale * p[1][1] for p in points], marker=marker, linestyle=style,
                    color=colors[index % len(colors)] if len(series) > 1 else None,
                    capsize=3, label=name)
  axis.set_xscale("log")
  axis.set_xticks(sorted(ticks))
  axis.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
  axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  axis.tick_params(axis="x", labelrotation=45)
  axis.invert_xaxis()
  axis.set_xlabel("weights remaining (%)")
  axis.set_ylabel(ylabel)
  axis.grid(True, which="both", alpha=0.3)
  axis.legend(fontsize=8)
  return save(figure, path)


def metric_vs_rewind(series: Sequence[Tuple[str, List[Tuple[int, float, float]]]],
                     ylabel: str, path: str, scale: float = 100.0) -> str:
  """One line per label: (k, mean, std) points against the rewind iteration k, error bars over
  replicates (symmetric-log axis, so that k = 0 is drawn): the papers' stability figure."""
  figure, axis = figures.new(figsize=(7.5, 4.8))
  ks = sorted({point[0] for _, points in series for point in points})
  for label, points in series:
    points = sorted(points)
    axis.errorbar([p[0] for p in points], [scale * p[1] for p in points],
                  yerr=[scale * p[2] for p in points], marker="o", capsize=3, label=label)
  axis.set_xscale("symlog", linthresh=max(1, min([k for k in ks if k > 0], default=1)))
  axis.set_xticks(ks)
  axis.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
  axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  axis.set_xlabel("rewind iteration k")
  axis.set_ylabel(ylabel)
  axis.grid(True, which="both", alpha=0.3)
  axis.legend(fontsize=8)
  return save(figure, path)


def accuracy_vs_weights(rows: List[Dict], path: str) -> str:
  """Test accuracy at early stop against weights remaining, for one experiment."""
  return metric_vs_weights([("", rows)], "early_stop_test_accuracy",
                           "test accuracy at early stop (%)", path)


def learning_curves(curves: Dict[str, List[Dict]], path: str) -> str:
  """Test accuracy against iteration, one line per labelled curve (the paper's Figure 3)."""
  figure, axis = figures.new(figsize=(7.5, 4.8))
  for label, curve in curves.items():
    axis.plot([row["iteration"] for row in curve], [100 * row["test_accuracy"] for row in curve],
              label=label)
  axis.set_xlabel("training iteration")
  axis.set_ylabel("test accuracy (%)")
  axis.grid(True, alpha=0.3)
  axis.legend(fontsize=8)
  return save(figure, path)


def mask_distances(series: Sequence[Tuple[str, List[Tuple[int, float]], float, Optional[int]]],
                   path: str) -> str:
  """The early-bird figure: the normalised Hamming distance between the masks of consecutive
  evaluations of the dense training, one line per experiment (label, curve, threshold or 0,
  iteration of the draw or None), its threshold dashed and its draw starred (log axis)."""
  figure, axis = figures.new(figsize=(7.5, 4.8))
  colors = figures.colors()
  for index, (label, curve, threshold, drawn) in enumerate(series):
    color = colors[index % len(colors)]
    axis.plot([p[0] for p in curve], [max(p[1], 1e-6) for p in curve], marker=".", color=color,
              label=label or "mask distance")
    if threshold > 0:
      axis.axhline(threshold, color=color, linestyle="--", linewidth=0.8, alpha=0.6,
                   label=f"{label} threshold".strip())
    if drawn is not None:
      distance = dict(curve)[drawn]
      axis.plot([drawn], [max(distance, 1e-6)], marker="*", markersize=14, color=color,
                linestyle="none", label=f"{label} drawn at {drawn}".strip())
  axis.set_yscale("log")
  axis.set_xlabel("training iteration (dense level)")
  axis.set_ylabel("mask distance to the previous evaluation")
  axis.grid(True, which="both", alpha=0.3)
  axis.legend(fontsize=8)
  return save(figure, path)
