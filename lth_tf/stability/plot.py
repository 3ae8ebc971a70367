"""The figure of `lth stability`: error against the interpolation coefficient α, per pair."""
from typing import Dict, Iterable

from lth_tf import branches as branches_lib
from lth_tf import figures
from lth_tf.rundir.stability import by_pair


def error_vs_alpha(pairs: Iterable[Dict], path: str) -> str:
  """Test error (left) and training-subset error (right), in %, against α: one line per
  (level, branch, k) and replicate, in the branch's style; the legend gives the mean
  instability. Returns the written path."""
  figure, axes = figures.new(1, 2, figsize=(11, 4.5), sharex=True)
  colors = figures.colors()
  for index, ((level, branch, k), group) in enumerate(sorted(by_pair(pairs).items())):
    marker, linestyle = branches_lib.style(branch)
    color = colors[index % len(colors)]
    mean = 100.0 * sum(p["instability"] for p in group) / len(group)
    label = (f"level {level} {branch} ({100 * group[0]['weights_remaining']:.1f}%), k={k}: "
             f"instability {mean:.2f}")
    for replicate, pair in enumerate(group):
      alphas = [row["alpha"] for row in pair["path"]]
      for axis, key in zip(axes, ("test_error", "train_error")):
        axis.plot(alphas, [100.0 * row[key] for row in pair["path"]], color=color,
                  marker=marker, markersize=3, linestyle=linestyle, linewidth=1.2,
                  label=label if replicate == 0 and key == "test_error" else None)
  for axis, title in zip(axes, ("test set", "training subset")):
    axis.set_xlabel("interpolation coefficient α")
    axis.set_ylabel("error (%)")
    axis.set_title(f"Linear path between two copies: {title}")
    axis.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  return figures.save(figure, path)
