"""`lth report`: report.md, a CSV table and the figures from one or more experiment directories."""
import csv
import io as _io
import os
from typing import Dict, List, Optional, Sequence

from lth_tf import io
from lth_tf.rundir import FinishedExperiment
from lth_tf.rundir import sweep as sweep_record
from lth_tf.report import early_bird, plots, publish, tables
from lth_tf.report import sweep as sweep_report
from lth_tf.report import transfer as transfer_report

FIGURES = {
    "accuracy_vs_weights.png": ("early_stop_test_accuracy", "test accuracy at early stop (%)", 100.0),
    "early_stop_vs_weights.png": ("early_stop_iteration", "early-stop iteration", 1.0),
}


class Experiment(FinishedExperiment):
  """A finished (or partly finished) experiment directory as the report names it."""

  @property
  def label(self) -> str:
    """Model, dataset, optimizer, mode and rewind iteration, plus dropout and mixed precision
    where they are set, so that overlaid experiments can be told apart."""
    p, t, m = self.config.pruning, self.config.training, self.config.model
    extras = []
    if m.dropout:
      extras.append(f"dropout={m.dropout:g}")
    if t.mixed_precision != "none":
      extras.append(t.mixed_precision)
    if p.early_bird_threshold:
      extras.append(f"early_bird={p.early_bird_threshold:g}")
    return " ".join([m.name, self.config.dataset.name, t.optimizer, p.mode,
                     f"k={p.rewind_iteration}"] + extras
                    + [f"({os.path.basename(self.directory)})"])


def csv_text(experiments: Sequence[Experiment]) -> str:
  """Every summary row of every experiment, one CSV line each."""
  buffer = _io.StringIO()
  fields = ["experiment", "replicate", "level", "branch", "weights_remaining",
            "early_stop_iteration", "early_stop_test_accuracy", "final_test_accuracy",
            "min_validation_loss", "iterations_trained", "train_flops"]
  writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
  writer.writeheader()
  for experiment in experiments:
    for row in experiment.rows:
      writer.writerow({"experiment": os.path.basename(experiment.directory), **row})
  return buffer.getvalue()


def density_table(experiment: Experiment) -> str:
  """Per-layer weights remaining (%) of the ticket at every level (first replicate)."""
  replicate = min(row["replicate"] for row in experiment.rows)
  levels = sorted({row["level"] for row in experiment.rows if row["replicate"] == replicate})
  per_level = {level: (experiment.branch_json(replicate, level, "ticket", "metrics") or {})
               .get("weights_remaining_by_layer", {}) for level in levels}
  layers = list(next((d for d in per_level.values() if d), {}))
  lines = ["| level | " + " | ".join(layers) + " |", "|---" * (len(layers) + 1) + "|"]
  for level in levels:
    lines.append(f"| {level} | " + " | ".join(
        f"{100 * per_level[level].get(name, float('nan')):.2f}" for name in layers) + " |")
  return "\n".join(lines)


def compute_line(experiment: Experiment) -> str:
  """Iterations, wall time and training FLOPs the experiment spent (see lth_tf/compute.py)."""
  total = experiment.compute_totals()
  if total is None:
    return "Compute: not recorded (the experiment predates compute accounting)."
  return (f"Compute: {total['runs']} trainings, {total['iterations_trained']} iterations, "
          f"{total['wall_time_s'] / 3600:.2f} h wall time, {total['train_flops']:.3g} training "
          "FLOPs (kept weights only).")


def build(directories: Sequence[str], out_dir: str, curve_levels: Optional[List[int]] = None,
          instability_level: Optional[int] = None) -> Dict:
  """Writes report.md, table.csv and the figures into `out_dir` (replaced whole, `publish`);
  returns their paths.

  Transfer experiments (`lth transfer`) get their own table, figure (`transfer.png`) and
  cost-against-benefit section; lottery experiments the level tables and figures, and where
  their dense level recorded mask distances the early-bird figure (`mask_distance.png`, first
  replicate) and line (`report.early_bird`). A rewind sweep's directory stands for its
  experiments, and adds the sweep's figures and table (`report.sweep`; instability against k
  at `instability_level`, or at every measured level).
  """
  sweeps, everything = [], []
  for directory in directories:
    if sweep_record.is_sweep(directory):
      sweeps.append(sweep_report.Sweep(directory, Experiment))
      everything += sweeps[-1].experiments.values()
    else:
      everything.append(Experiment(directory))
  experiments = [e for e in everything if not e.recorded.is_transfer]
  transfers = [transfer_report.TransferRun(e) for e in everything if e.recorded.is_transfer]
  # Everything is read (and checked) before anything is written.
  curves, sections = {}, ["# Lottery-ticket report", ""]
  for experiment in experiments:
    levels = sorted({r["level"] for r in experiment.rows})
    chosen = curve_levels or sorted({levels[0], levels[len(levels) // 2], levels[-1]})
    replicate = min(row["replicate"] for row in experiment.rows)
    for level in chosen:
      for branch in ("ticket", "reinit"):
        curve = experiment.branch_json(replicate, level, branch, "curve_json")
        row = next((r for r in experiment.rows if r["level"] == level and r["branch"] == branch
                    and r["replicate"] == replicate), None)
        if curve and row:
          prefix = "" if len(experiments) == 1 else f"{os.path.basename(experiment.directory)} "
          curves[f"{prefix}{branch} {100 * row['weights_remaining']:.1f}%"] = curve
    sections += [f"## {experiment.label}", "", "```", tables.level_table(experiment.rows), "```", "",
                 "Weights remaining per layer (%), ticket:", "", density_table(experiment), "",
                 compute_line(experiment), ""] + early_bird.section(experiment)
  watched = [(e.label if len(experiments) > 1 else "", curve, early_bird.threshold(e),
              early_bird.drawn(e).get(replicate))
             for e in experiments for replicate, curve in list(early_bird.distances(e).items())[:1]]
  return publish.publish(out_dir, lambda staging: _write(staging, experiments, transfers, everything,
                                                 sweeps, curves, sections, watched,
                                                 instability_level))


def _write(out_dir, experiments, transfers, everything, sweeps, curves, sections, watched,
           instability_level) -> Dict[str, str]:
  """Writes the report's files into `out_dir` (a staging directory); returns their paths."""
  written = {}
  if transfers:
    written["transfer.png"] = transfer_report.figure(transfers, os.path.join(out_dir, "transfer.png"))
  if not experiments:
    written["table.csv"] = os.path.join(out_dir, "table.csv")
    io.write_text(written["table.csv"], csv_text(everything))
    written["report.md"] = os.path.join(out_dir, "report.md")
    io.write_text(written["report.md"], "\n".join(
        ["# Lottery-ticket report", ""] + transfer_report.section(transfers)) + "\n")
    return written
  series = [(e.label, e.rows) for e in experiments]
  for name, (metric, ylabel, scale) in FIGURES.items():
    written[name] = plots.metric_vs_weights(series, metric, ylabel, os.path.join(out_dir, name),
                                            scale)
  if watched:
    written["mask_distance.png"] = plots.mask_distances(
        watched, os.path.join(out_dir, "mask_distance.png"))
  written["learning_curves.png"] = plots.learning_curves(
      curves, os.path.join(out_dir, "learning_curves.png"))
  swept_names = set()
  if sweeps:
    swept, sweep_sections = sweep_report.build(sweeps, out_dir, instability_level)
    written.update(swept)
    swept_names = set(swept)
    sections += sweep_sections
  written["table.csv"] = os.path.join(out_dir, "table.csv")
  io.write_text(written["table.csv"], csv_text(everything))
  if transfers:
    sections += transfer_report.section(transfers)
  sections += ["## Figures", ""] + [f"![{name}]({name})" for name in written
                                    if name.endswith(".png") and name != "transfer.png"
                                    and name not in swept_names]
  written["report.md"] = os.path.join(out_dir, "report.md")
  io.write_text(written["report.md"], "\n".join(sections) + "\n")
  return written
