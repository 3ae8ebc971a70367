"""`lth masks compare`: masks.csv, a heat map (masks.png) and masks.md of the masks' overlaps."""
import csv
import io as _io
import math
import os
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np

from lth_tf import io
from lth_tf.analysis import masks as masks_lib
from lth_tf.analysis import overlap
from lth_tf import figures
from lth_tf.errors import UserError
from lth_tf.report import publish

CSV_FIELDS = ["mask_a", "mask_b", "relation", "layer", "weights", "kept_a", "kept_b", "both",
              "random_both", "jaccard", "random_jaccard", "a_in_b", "random_a_in_b", "b_in_a",
              "random_b_in_a", "skipped"]
OVERALL = "overall"
# A heat map's cells carry their values up to this many masks.
ANNOTATE_UP_TO = 16
METHOD = ("random = two independent masks drawn uniformly with the same per-layer counts: "
          "E|A∩B| = k_a k_b / n per layer, E[A kept in B] = k_b / n, and the Jaccard index "
          "summed exactly over the hypergeometric distribution of |A∩B| (overall: over the "
          "convolution of the layers' distributions); see lth_tf/analysis/overlap.py.")


def _csv_row(masks, pair, layer: str, value: Optional[overlap.Overlap], skipped: str = ""):
  row = {"mask_a": masks[pair.a].label, "mask_b": masks[pair.b].label,
         "relation": pair.relation, "layer": layer, "skipped": skipped}
  if value is not None:
    row.update(weights=value.weights, kept_a=value.kept_a, kept_b=value.kept_b, both=value.both,
               random_both=repr(value.expected_both), jaccard=repr(value.jaccard),
               random_jaccard=repr(value.expected_jaccard), a_in_b=repr(value.a_in_b),
               random_a_in_b=repr(value.expected_a_in_b), b_in_a=repr(value.b_in_a),
               random_b_in_a=repr(value.expected_b_in_a))
  return row


def csv_text(masks: Sequence[masks_lib.LabelledMask], pairs: Sequence[masks_lib.Pair]) -> str:
  """One line per pair and layer, one per pair `overall`, and one per skipped layer."""
  buffer = _io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
  writer.writeheader()
  for pair in pairs:
    for name, value in pair.layers.items():
      writer.writerow(_csv_row(masks, pair, name, value))
    for name, reason in pair.skipped.items():
      writer.writerow(_csv_row(masks, pair, name, None, reason))
    writer.writerow(_csv_row(masks, pair, OVERALL, pair.overall,
                             "" if pair.overall else "no layer matches"))
  return buffer.getvalue()


def matrices(count: int, pairs: Sequence[masks_lib.Pair]):
  """Overall Jaccard and its ratio to the random baseline, as symmetric matrices (NaN where no
  layer matches; the diagonal is a mask with itself)."""
  jaccard = np.full((count, count), np.nan)
  ratio = np.full((count, count), np.nan)
  for pair in pairs:
    if pair.overall is None:
      continue
    value, expected = pair.overall.jaccard, pair.overall.expected_jaccard
    for i, j in ((pair.a, pair.b), (pair.b, pair.a)):
      jaccard[i, j] = value
      ratio[i, j] = value / expected if expected else np.nan
  np.fill_diagonal(jaccard, 1.0)
  return jaccard, ratio


def figure(masks: Sequence[masks_lib.LabelledMask], pairs: Sequence[masks_lib.Pair],
           path: str) -> str:
  """Two heat maps over every pair of masks: the Jaccard index, and it ÷ the random baseline."""
  jaccard, ratio = matrices(len(masks), pairs)
  side = max(4.0, 0.45 * len(masks) + 2.5)
  fig, axes = figures.new(1, 2, figsize=(2 * side + 1.5, side), squeeze=False)
  labels = [f"{index}: {item.label}" for index, item in enumerate(masks)]
  panels = ((jaccard, "Jaccard index of the kept weights", "viridis", 0.0, 1.0, "{:.2f}"),
            (ratio, "Jaccard ÷ two independent random masks", "magma", 0.0,
             max(1.0, float(np.nanmax(ratio))) if np.isfinite(ratio).any() else 1.0, "{:.1f}"))
  for axis, (matrix, title, cmap, low, high, text) in zip(axes[0], panels):
    image = axis.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=low, vmax=high)
    axis.set_xticks(range(len(masks)))
    axis.set_yticks(range(len(masks)))
    axis.set_xticklabels(labels, rotation=90, fontsize=7)
    axis.set_yticklabels(labels, fontsize=7)
    axis.set_title(title, fontsize=9)
    if len(masks) <= ANNOTATE_UP_TO:
      for (i, j), value in np.ndenumerate(matrix):
        if np.isfinite(value) and i != j:
          axis.text(j, i, text.format(value), ha="center", va="center", fontsize=6,
                    color="white" if value < 0.5 * (low + high) else "black")
    fig.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
  return figures.save(fig, path)


def _pct(value: float) -> str:
  return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def markdown(masks: Sequence[masks_lib.LabelledMask], pairs: Sequence[masks_lib.Pair]) -> str:
  """The masks, the mean overlap per relation, every pair overall, and the skipped layers."""
  lines = ["# Mask overlap", "", "| # | mask | weights remaining (%) |", "|---|---|---|"]
  lines += [f"| {i} | {m.label} | {_pct(m.mask.weights_remaining())} |"
            for i, m in enumerate(masks)]
  by_relation = defaultdict(list)
  for pair in pairs:
    if pair.overall is not None:
      by_relation[pair.relation].append(pair.overall)
  lines += ["", "Overall, mean over the pairs of each relation (%):", "",
            "| relation | pairs | Jaccard | random | A kept in B | random |",
            "|---|---|---|---|---|---|"]
  for name, values in sorted(by_relation.items()):
    mean = lambda key: float(np.nanmean([getattr(v, key) for v in values]))  # noqa: E731
    lines.append(f"| {name} | {len(values)} | {_pct(mean('jaccard'))} | "
                 f"{_pct(mean('expected_jaccard'))} | {_pct(mean('a_in_b'))} | "
                 f"{_pct(mean('expected_a_in_b'))} |")
  lines += ["", "Every pair, overall on the layers both have (%):", "",
            "| A | B | relation | Jaccard | random | A kept in B | random | B kept in A | random |",
            "|---|---|---|---|---|---|---|---|---|"]
  for pair in pairs:
    o = pair.overall
    cells = ([o.jaccard, o.expected_jaccard, o.a_in_b, o.expected_a_in_b, o.b_in_a,
              o.expected_b_in_a] if o else [math.nan] * 6)
    lines.append(f"| {pair.a} | {pair.b} | {pair.relation} | " +
                 " | ".join(_pct(c) for c in cells) + " |")
  skipped = defaultdict(list)
  for pair in pairs:
    for name, reason in pair.skipped.items():
      skipped[(name, reason)].append(f"{pair.a}-{pair.b}")
  lines += ["", "Skipped layers (compared on the layers that match by name and shape):", ""]
  lines += [f"- {name}: {reason} (pairs {', '.join(where)})"
            for (name, reason), where in sorted(skipped.items())] or ["- none"]
  lines += ["", METHOD]
  return "\n".join(lines) + "\n"


def build(directories: Sequence[str], tickets: Sequence[str], out_dir: str,
          levels: Optional[Sequence[int]] = None,
          branches: Sequence[str] = masks_lib.DEFAULT_BRANCHES) -> Dict[str, str]:
  """Reads every mask (all checked before anything is written), compares every pair, and
  writes masks.csv, masks.png and masks.md into `out_dir`; returns their paths."""
  masks: List[masks_lib.LabelledMask] = []
  for directory in directories:
    masks += masks_lib.from_experiment(directory, levels, branches)
  masks += [masks_lib.from_ticket(name) for name in tickets]
  if len(masks) < 2:
    raise UserError(f"only {len(masks)} mask found ({', '.join(m.label for m in masks)}): give "
                    "more levels, replicates or experiments to compare")
  pairs = masks_lib.compare(masks)
  return publish.publish(out_dir, lambda staging: _write(staging, masks, pairs))


def _write(out_dir: str, masks, pairs) -> Dict[str, str]:
  written = {name: os.path.join(out_dir, name) for name in ("masks.csv", "masks.png", "masks.md")}
  io.write_text(written["masks.csv"], csv_text(masks, pairs))
  figure(masks, pairs, written["masks.png"])
  io.write_text(written["masks.md"], markdown(masks, pairs))
  return written
