"""Transfer experiments (`lth transfer`) in the report: one table, one figure, cost against benefit.

The table has one line per experiment (a target at one budget): test accuracy at early stop of
every branch and what the transferred ticket bought over dense, the re-initialised mask, the
random mask and the target's own ticket (points). The figure draws accuracy against the training
examples per class, one panel per ticket → target pair (optimizer and schedule included), one line
per branch. The cost section sets the ticket's search cost (recorded with the ticket or estimated,
see `lth_tf.compute`) against the accuracy it bought and the training FLOPs its sparsity saves,
and divides the search cost over the experiments in the report that reuse the same ticket.
"""
import math
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np

from lth_tf import branches as branches_lib
from lth_tf.errors import UserError
from lth_tf.rundir import FinishedExperiment
from lth_tf import figures

# The branches `lth transfer` trains (`lth_tf.branches`), in table order; the controls after the
# ticket get a gain column each.
BRANCHES = branches_lib.trained_by("transfer")
CONTROLS = tuple(name for name in BRANCHES if branches_lib.BRANCHES.get(name).control)


class TransferRun:
  """A transfer experiment directory, read-only: its summary rows and each row's metrics."""

  def __init__(self, experiment: FinishedExperiment):
    self.directory = experiment.directory
    self.config = experiment.config
    self.recorded = experiment.recorded
    self.rows = experiment.rows
    self.metrics = [experiment.branch_json(row["replicate"], row["level"], row["branch"],
                                           "metrics") or dict(row) for row in experiment.rows]

  @classmethod
  def read(cls, directory: str) -> "TransferRun":
    experiment = FinishedExperiment(directory)
    if not experiment.recorded.is_transfer:
      raise UserError(f"{directory} is not a transfer experiment")
    return cls(experiment)

  @property
  def transfer(self) -> Dict:
    return self.recorded.transfer

  @property
  def target(self) -> str:
    classes = self.config.dataset.classes
    return self.config.dataset.name + (f"[{','.join(map(str, classes))}]" if classes else "")

  @property
  def source(self) -> str:
    src = self.transfer["source"]
    classes = src.get("classes") or []
    name = src["dataset"] + (f"[{','.join(map(str, classes))}]" if classes else "")
    return f"{name} {src['optimizer']} {100 * src['weights_remaining']:.1f}%"

  @property
  def optimizer(self) -> str:
    return self.config.training.optimizer

  @property
  def per_class(self) -> float:
    """Training examples per class (the budget, or the full split's average)."""
    budget = self.config.dataset.train_examples_per_class
    return float(budget or self.transfer["train_examples"] / self.transfer["num_classes"])

  @property
  def budget_label(self) -> str:
    budget = self.config.dataset.train_examples_per_class
    return str(budget) if budget else f"full ({self.transfer['train_examples']})"

  @property
  def group(self) -> Tuple:
    """Runs that differ only in their budget share a figure panel."""
    t = self.config.training
    return (self.transfer["source"]["sha256"], self.target, self.optimizer, t.iterations,
            t.learning_rate)

  @property
  def group_label(self) -> str:
    t = self.config.training
    return (f"{self.source} -> {self.target}\n{self.optimizer} lr {t.learning_rate:g}, "
            f"{t.iterations} it, {self.config.model.name}")

  def stat(self, branch: str, key: str = "early_stop_test_accuracy") -> Tuple[float, float, int]:
    values = [m[key] for m in self.metrics if m["branch"] == branch and m.get(key) is not None]
    if not values:
      return (math.nan, math.nan, 0)
    return (float(np.mean(values)), float(np.std(values)), len(values))


def _pct(value: float, digits: int = 2) -> str:
  return "-" if math.isnan(value) else f"{100 * value:.{digits}f}"


def _points(value: float) -> str:
  return "-" if math.isnan(value) else f"{value:+.2f}"


def _untrained(run: TransferRun, branch: str) -> bool:
  """Whether a run of `branch` early-stopped at its first evaluation, before any training."""
  return any(m["branch"] == branch and m.get("iterations_trained") is not None and
             m["early_stop_iteration"] == m["iterations"] - m["iterations_trained"]
             for m in run.metrics)


def _gain(run: TransferRun, *controls: str) -> str:
  """The ticket's gain over the best of `controls` (points); † if an early stop was untrained."""
  best = max(run.stat(c)[0] for c in controls)
  dagger = any(_untrained(run, b) for b in ("ticket",) + controls)
  return _points(100 * (run.stat("ticket")[0] - best)) + ("†" if dagger else "")


def _cell(run: TransferRun, branch: str) -> str:
  mean, std, n = run.stat(branch)
  if not n:
    return "-"
  final = run.stat(branch, "final_test_accuracy")[0]
  return (_pct(mean) + (f"±{100 * std:.2f}" if n > 1 else "") +
          ("†" if _untrained(run, branch) else "") + f" / {_pct(final)}")


def table(runs: Sequence[TransferRun]) -> str:
  """Markdown: one line per experiment, accuracies (%) and the ticket's gains (points)."""
  head = ("| source ticket → target | optimizer | examples/class | remaining | " +
          " | ".join(BRANCHES) + " | " +
          " | ".join(f"Δ {branches_lib.BRANCHES.get(name).heading}" for name in CONTROLS) + " |")
  lines = [head, "|---" * (head.count("|") - 1) + "|"]
  for run in sorted(runs, key=lambda r: (r.group, r.per_class)):
    ticket_rows = [m for m in run.metrics if m["branch"] == "ticket"]
    remaining = ticket_rows[0]["weights_remaining"] if ticket_rows else math.nan
    accs = [_cell(run, branch) for branch in BRANCHES]
    lines.append(f"| {run.source} → {run.target} | {run.optimizer} | {run.budget_label} | "
                 f"{_pct(remaining, 1)}% | " + " | ".join(accs) + " | " +
                 " | ".join(_gain(run, c) if run.stat(c)[2] else "-" for c in CONTROLS) + " |")
  replicates = sorted({len({m['replicate'] for m in r.metrics}) for r in runs})
  lines.append("")
  lines.append("Each branch: test accuracy at early stop / at the end of training (%, mean over " +
               "/".join(map(str, replicates)) + " replicate(s)); † marks an early stop at the "
               "branch's first evaluation (before any training: its validation loss only rose). "
               "Δ = ticket minus the branch at early stop, in points (†: one of the two stopped "
               "untrained; compare final accuracies). remaining = weights "
               "remaining of the transferred ticket.")
  return "\n".join(lines)


def figure(runs: Sequence[TransferRun], path: str) -> str:
  """Accuracy against examples per class: a panel per ticket → target, a line per branch."""
  groups = defaultdict(list)
  for run in runs:
    groups[run.group].append(run)
  count = len(groups)
  columns = min(count, 3)
  rows = int(math.ceil(count / columns))
  fig, axes = figures.new(rows, columns, figsize=(5.2 * columns, 4.2 * rows), squeeze=False)
  for axis, (_, members) in zip(axes.flat, sorted(groups.items())):
    members = sorted(members, key=lambda r: r.per_class)
    for branch in BRANCHES:
      points = [(r.per_class, r.stat(branch)) for r in members if r.stat(branch)[2]]
      if not points:
        continue
      marker, style = branches_lib.style(branch)
      axis.errorbar([p[0] for p in points], [100 * p[1][0] for p in points],
                    yerr=[100 * p[1][1] for p in points], marker=marker, linestyle=style,
                    capsize=3, label=branch)
    axis.set_xscale("log")
    axis.set_xticks([r.per_class for r in members])
    axis.set_xticklabels([r.budget_label.split(" ")[0] for r in members])
    axis.minorticks_off()
    axis.set_xlabel("training examples per class")
    axis.set_ylabel("test accuracy at early stop (%)")
    axis.set_title(members[0].group_label, fontsize=8)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=7)
  for axis in list(axes.flat)[count:]:
    axis.set_visible(False)
  return figures.save(fig, path)


def _flops(value) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return "-"
  return f"{value:.3g}"


def cost_benefit(runs: Sequence[TransferRun]) -> str:
  """Markdown: per target, the accuracy bought against the search cost and the FLOPs saved."""
  by_ticket = defaultdict(list)
  for run in runs:
    by_ticket[run.transfer["source"]["sha256"]].append(run)
  lines = []
  for sha, members in by_ticket.items():
    search = members[0].transfer.get("search_compute", {})
    reuse = len(members)
    wall = search.get("wall_time_s")
    lines += [
        f"Ticket {members[0].source} (sha256 {sha[:12]}): finding it took "
        f"{search.get('levels_trained', '?')} trainings, {search.get('iterations_trained', '?')} "
        f"iterations, {_flops(search.get('train_flops'))} training FLOPs"
        f"{' (estimated from its config)' if search.get('estimated') else ''}"
        f"{f', {wall:.0f} s wall time' if wall else ''}. "
        f"{reuse} experiment(s) below reuse it, so each carries 1/{reuse} of that cost.", ""]
  head = ("| source ticket → target | examples/class | Δ dense | Δ best random | "
          "search FLOPs / run | dense training FLOPs | ticket training FLOPs | "
          "search ÷ dense training | trainings to repay |")
  lines += [head, "|---" * (head.count("|") - 1) + "|"]
  for run in sorted(runs, key=lambda r: (r.group, r.per_class)):
    search = run.transfer.get("search_compute", {}).get("train_flops")
    share = search / len(by_ticket[run.transfer["source"]["sha256"]]) if search else None
    dense = run.stat("dense", "train_flops")[0]
    sparse = run.stat("ticket", "train_flops")[0]
    ratio = share / dense if share and dense and not math.isnan(dense) else math.nan
    saved = dense - sparse
    repay = share / saved if share and saved and saved > 0 else math.nan
    lines.append(f"| {run.source} → {run.target} | {run.budget_label} | "
                 f"{_gain(run, 'dense')} | {_gain(run, 'reinit', 'random_prune')} | {_flops(share)} | "
                 f"{_flops(dense)} | {_flops(sparse)} | "
                 f"{'-' if math.isnan(ratio) else f'{ratio:.1f}x'} | "
                 f"{'-' if math.isnan(repay) else f'{repay:.1f}'} |")
  lines += ["", "Δ best random: ticket minus the better of the re-initialised and the random "
            "mask (points); † as in the table above (an early stop before training). search FLOPs / run: the ticket's search cost divided over the "
            "experiments here that reuse it. trainings to repay: how many trainings of the "
            "sparse ticket instead of the dense network save that share, at the FLOPs of an "
            "ideal sparse kernel (training FLOPs: 3 × 2 × kept-weight MACs × batch × "
            "iterations; see lth_tf/compute.py)."]
  return "\n".join(lines)


def section(runs: Sequence[TransferRun]) -> List[str]:
  """The report.md lines of the transfer experiments."""
  adapters = sorted({f"{r.target}: {r.transfer['adapter_description']}"
                     + (", output layer replaced" if r.transfer["head_replaced"] else "")
                     for r in runs})
  return (["## Transfer", "", table(runs), "", "Input adapters: " + "; ".join(adapters) + ".", "",
           "![transfer.png](transfer.png)", "", "## Cost against benefit", "", cost_benefit(runs),
           ""])
