"""`lth report` on a rewind sweep (`lth find --rewind_iteration=K1,K2,...`): per k, the ticket's
test accuracy against weights remaining; where `lth stability` measured the k's, instability
against k at each measured level (the figure Frankle et al., ICML 2020, choose k by); a table.

The sweep's experiments are read as any experiment (`report.Experiment`), and their stability
records with `lth_tf.rundir.stability`.
"""
import csv
import io as _io
import os
from typing import Dict, List, Optional, Sequence, Tuple

from lth_tf import io
from lth_tf.errors import UserError
from lth_tf.report import plots, tables
from lth_tf.rundir import stability as stability_record
from lth_tf.rundir import sweep as sweep_record

CSV_FIELDS = ("sweep", "rewind_iteration", "experiment", "level", "branch", "weights_remaining",
              "replicates", "early_stop_test_accuracy_mean", "early_stop_test_accuracy_std",
              "instability_mean", "instability_std")


class Sweep:
  """A rewind sweep's experiments (`report.Experiment` by k) and their stability summaries.

  Args:
    directory: the sweep's directory (its `sweep.json`).
    experiment: reads one experiment directory (`report.Experiment`).
  """

  def __init__(self, directory: str, experiment):
    self.directory = directory.rstrip("/")
    self.name = os.path.basename(os.path.abspath(self.directory))
    self.experiments = {}
    for k, layout in sweep_record.read(directory):
      if not os.path.isdir(layout.directory):
        raise UserError(f"k={k} of the sweep in {directory} has no experiment directory "
                        f"({layout.directory}); rerun the sweep to train it")
      self.experiments[k] = experiment(layout.directory)
    # (level, branch, k) -> the stability summary row, for every k that was measured.
    self.instability: Dict[Tuple[int, str, int], Dict] = {}
    for k, experiment_read in self.experiments.items():
      path = experiment_read.layout.stability_file
      if os.path.exists(path):
        for row in stability_record.summary(stability_record.read(path)):
          self.instability[row["level"], row["branch"], k] = row

  def measured(self, level: Optional[int]) -> Dict[Tuple[int, str], List[Tuple[int, float, float]]]:
    """Per measured (level, branch) (only `level` if given), its (k, mean, std) instabilities."""
    out: Dict[Tuple[int, str], List[Tuple[int, float, float]]] = {}
    for (lvl, branch, k), row in sorted(self.instability.items()):
      if level is None or lvl == level:
        out.setdefault((lvl, branch), []).append(
            (k, row["instability_mean"], row["instability_std"]))
    return out

  def rows(self) -> List[Dict]:
    """The table's rows: one per k, level and branch."""
    out = []
    for k, experiment in self.experiments.items():
      for (level, branch), stats in sorted(tables.aggregate(experiment.rows).items()):
        measured = self.instability.get((level, branch, k), {})
        out.append({
            "sweep": self.name, "rewind_iteration": k,
            "experiment": os.path.basename(experiment.directory), "level": level,
            "branch": branch, "weights_remaining": stats["weights_remaining"][0],
            "replicates": stats["early_stop_test_accuracy"][2],
            "early_stop_test_accuracy_mean": stats["early_stop_test_accuracy"][0],
            "early_stop_test_accuracy_std": stats["early_stop_test_accuracy"][1],
            "instability_mean": measured.get("instability_mean"),
            "instability_std": measured.get("instability_std")})
    return out


def csv_text(sweeps: Sequence[Sweep]) -> str:
  buffer = _io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
  writer.writeheader()
  for sweep in sweeps:
    writer.writerows(sweep.rows())
  return buffer.getvalue()


def _percent(mean: Optional[float], std: Optional[float], n: int) -> str:
  if mean is None:
    return "-"
  return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if n > 1 else "")


def section(sweep: Sweep, figures: Sequence[str], level: Optional[int]) -> List[str]:
  """The sweep's part of report.md: its k's, the ticket's accuracy and instability per level."""
  lines = [f"## Rewind sweep {sweep.name}", "",
           "k: " + ", ".join(f"{k} ({os.path.basename(e.directory)})"
                             for k, e in sweep.experiments.items()), "",
           "| k | level | weights remaining (%) | ticket test accuracy at early stop (%) | "
           "ticket instability (points) |", "|---|---|---|---|---|"]
  for row in sweep.rows():
    if row["branch"] != "ticket":
      continue
    n = row["replicates"]
    accuracy = _percent(row["early_stop_test_accuracy_mean"], row["early_stop_test_accuracy_std"], n)
    instability = _percent(row["instability_mean"], row["instability_std"], n)
    lines.append(f"| {row['rewind_iteration']} | {row['level']} | "
                 f"{100 * row['weights_remaining']:.2f} | {accuracy} | {instability} |")
  lines.append("")
  if not sweep.measured(level):
    where = f"level {level}" if level is not None else "any level"
    lines += [f"No stability records at {where}: `lth stability --experiment_dir="
              f"{sweep.directory} --stability_levels=L` measures every k.", ""]
  lines += [f"![{name}]({name})" for name in figures] + [""]
  return lines


def build(sweeps: Sequence[Sweep], out_dir: str, level: Optional[int]) -> Tuple[Dict, List[str]]:
  """Writes each sweep's figures and the sweep table (`rewind_sweep.csv`) into `out_dir`;
  returns their paths and the report's sections."""
  written, sections = {}, []
  for sweep in sweeps:
    suffix = "" if len(sweeps) == 1 else f"_{sweep.name}"
    names = []
    name = f"rewind_sweep_accuracy{suffix}.png"
    series = [(f"k={k}", [r for r in e.rows if r["branch"] == "ticket"])
              for k, e in sweep.experiments.items()]
    written[name] = plots.metric_vs_weights(series, "early_stop_test_accuracy",
                                            "ticket test accuracy at early stop (%)",
                                            os.path.join(out_dir, name), shared_dense=True)
    names.append(name)
    measured = sweep.measured(level)
    if measured:
      name = f"instability_vs_k{suffix}.png"
      written[name] = plots.metric_vs_rewind(
          [(f"level {lvl} {branch} "
            f"({100 * sweep.instability[lvl, branch, points[0][0]]['weights_remaining']:.1f}%)",
            points) for (lvl, branch), points in measured.items()],
          "instability (test error, points)", os.path.join(out_dir, name))
      names.append(name)
    sections += section(sweep, names, level)
  written["rewind_sweep.csv"] = os.path.join(out_dir, "rewind_sweep.csv")
  io.write_text(written["rewind_sweep.csv"], csv_text(sweeps))
  return written, sections
