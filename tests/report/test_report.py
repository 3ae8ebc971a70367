"""`lth report` on a fabricated experiment: valid figures with content, tables equal to the summary."""
import csv
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import launcher

from lth_tf import io
from lth_tf.config import ExperimentConfig
from lth_tf.errors import UserError
from lth_tf.lottery import BranchFiles, ExperimentLayout
from lth_tf.report import report, tables

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fabricate(root, name, seeds=(0, 1), levels=4, config=None):
  layout = ExperimentLayout(str(root), name)
  rng = np.random.default_rng(len(name))
  rows = []
  for seed in seeds:
    for level in range(levels + 1):
      for branch in (("ticket",) if level == 0 else ("ticket", "reinit")):
        remaining = 0.8 ** level
        row = {"replicate": seed, "level": level, "branch": branch, "weights_remaining": remaining,
               "early_stop_iteration": int(rng.integers(1, 50)) * 100,
               "early_stop_test_accuracy": float(rng.uniform(0.8, 0.9)),
               "final_test_accuracy": float(rng.uniform(0.8, 0.9)),
               "min_validation_loss": float(rng.uniform(0.2, 0.4))}
        rows.append(row)
        files = BranchFiles(layout.branch_dir(seed, level, branch))
        io.write_json(files.metrics, dict(row, weights_remaining_by_layer={
            "fc1/kernel": remaining, "output/kernel": 0.9 ** level}))
        io.write_json(files.curve_json, [
            {"iteration": it, "test_accuracy": float(rng.uniform(0.5, 0.9))} for it in range(0, 1001, 250)])
  io.write_json(layout.summary_file, rows)
  io.write_json(layout.config_file, (config or ExperimentConfig()).to_dict())
  return layout.directory, rows


def _has_content(path):
  import matplotlib.image
  with open(path, "rb") as handle:
    assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
  pixels = matplotlib.image.imread(path)
  assert pixels.shape[0] > 200 and pixels.shape[1] > 200
  colourful = np.abs(pixels[..., 0] - pixels[..., 2]) > 0.2  # lines are coloured, axes are grey
  assert colourful.sum() > 500


def test_report_files_figures_and_numbers(tmp_path):
  first, rows_a = _fabricate(tmp_path / "runs", "aaaa")
  second, rows_b = _fabricate(tmp_path / "runs", "bbbb", seeds=(3,))
  written = report.build([first, second], str(tmp_path / "out"))
  for name in ("accuracy_vs_weights.png", "early_stop_vs_weights.png", "learning_curves.png"):
    _has_content(written[name])
  with open(written["table.csv"]) as handle:
    table = list(csv.DictReader(handle))
  assert len(table) == len(rows_a) + len(rows_b)
  for line, row in zip(table, rows_a + rows_b):
    for key, value in row.items():
      assert type(value)(line[key]) == value, key
  text = open(written["report.md"]).read()
  stats = tables.aggregate(rows_a)
  mean, std, n = stats[(4, "reinit")]["early_stop_test_accuracy"]
  assert n == 2
  assert f"{100 * mean:.2f}±{100 * std:.2f}" in text
  assert "| 4 | 40.96 | 65.61 |" in text  # per-layer density table


def test_report_refuses_a_directory_without_summary(tmp_path):
  with pytest.raises(UserError, match="no summary.json"):
    report.build([str(tmp_path)], str(tmp_path / "out"))


@pytest.mark.parametrize("name,text", [
    ("summary.json", ""),
    ("summary.json", "[]"),
    ("summary.json", "{}"),
    ("summary.json", '[{"level": 0}]'),
    ("summary.json", '[{"replicate": 0, "lev'),
    ("config.json", '{"model": {"na'),
    ("config.json", "[]"),
    ("config.json", '{"model": {}}'),
    ("config.json", None),
    ("compute.json", "{}"),
    ("compute.json", '{"total": '),
    ("replicate_0/level_0/ticket/curve.json", '[{"iteration": 0, "test_acc'),
    ("replicate_0/level_0/ticket/curve.json", "[1, 2]"),
    ("replicate_0/level_0/ticket/metrics.json", "\xff\xfe"),
    ("replicate_0/level_0/ticket/metrics.json", "[]"),
])
def test_report_on_a_damaged_file_is_one_line_naming_it(tmp_path, name, text):
  directory, _ = _fabricate(tmp_path / "runs", "aaaa", seeds=(0,), levels=2)
  path = os.path.join(directory, name)
  if text is None:
    os.remove(path)
  else:
    with open(path, "w", encoding="latin-1") as handle:
      handle.write(text)
  with pytest.raises(UserError) as error:
    report.build([directory], str(tmp_path / "out"))
  assert path in str(error.value) and "\n" not in str(error.value)
  assert not (tmp_path / "out").exists()  # everything is read before anything is written


def test_report_on_an_empty_summary_from_the_command_line(tmp_path):
  directory, _ = _fabricate(tmp_path / "runs", "aaaa", seeds=(0,), levels=1)
  with open(os.path.join(directory, "summary.json"), "w") as handle:
    handle.write("")
  result = subprocess.run([sys.executable, "-m", "lth_tf.cli", "report",
                           f"--experiment_dir={directory}", f"--out={tmp_path / 'out'}"],
                          capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
  assert result.stderr.strip().splitlines() == [result.stderr.strip()]
  assert "summary.json" in result.stderr


def test_overlaid_experiments_are_labelled_by_what_sets_them_apart(tmp_path):
  base = ExperimentConfig()
  dropout = base.replace(model=dataclasses.replace(base.model, dropout=0.5),
                         training=dataclasses.replace(base.training, mixed_precision="mixed_bfloat16"))
  plain, _ = _fabricate(tmp_path / "runs", "aaaa")
  varied, _ = _fabricate(tmp_path / "runs", "bbbb", config=dropout)
  plain_label, varied_label = report.Experiment(plain).label, report.Experiment(varied).label
  assert "dropout" not in plain_label and "bfloat16" not in plain_label
  assert "dropout=0.5" in varied_label and "mixed_bfloat16" in varied_label
  text = open(report.build([plain, varied], str(tmp_path / "out"))["report.md"]).read()
  assert f"## {plain_label}" in text and f"## {varied_label}" in text


def test_reading_results_does_not_start_tensorflow():
  # The report and the run directory's layout and schemas are plain Python and numpy.
  code = ("import sys\n"
          "import lth_tf.report.report, lth_tf.report.transfer, lth_tf.analysis.masks, lth_tf.rundir\n"
          "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras'))\n"
          "assert not loaded, loaded[:5]\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
  assert result.returncode == 0, result.stderr


def test_figures_leave_the_users_matplotlib_backend_and_pyplot_alone(tmp_path):
  """A notebook's backend (here svg) survives importing the API and writing every kind of
  figure, and no figure is left open in pyplot."""
  directory, _ = _fabricate(tmp_path / "runs", "aaaa", seeds=(0,), levels=2)
  code = ("import matplotlib\n"
          "matplotlib.use('svg')\n"
          "import matplotlib.pyplot as plt\n"
          "import lth_tf.api, lth_tf.stability.plot, lth_tf.report.masks\n"
          "from lth_tf.report import report\n"
          f"report.build([{directory!r}], {str(tmp_path / 'out')!r})\n"
          "lth_tf.stability.plot.error_vs_alpha([], " + repr(str(tmp_path / "s.png")) + ")\n"
          "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
          "assert plt.get_fignums() == [], plt.get_fignums()\n")
  # From the test launcher's interpreter, which has imported TensorFlow and not matplotlib.
  result = launcher.run([sys.executable, "-c", code], capture_output=True, text=True,
                        cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == 0, result.stderr[-2000:]
  _has_content(str(tmp_path / "out" / "accuracy_vs_weights.png"))


def test_a_table_of_one_replicate_has_no_error_bars(tmp_path):
  _, rows = _fabricate(tmp_path, "single", seeds=(0,), levels=2)
  one = tables.level_table(rows)
  assert "±" not in one and "one replicate: no error bars" in one
  _, rows = _fabricate(tmp_path, "double", seeds=(0, 1), levels=2)
  two = tables.level_table(rows)
  assert "±" in two.splitlines()[2] and "mean ± std over 2 replicates" in two


def test_the_accuracy_figure_marks_the_dense_network(tmp_path):
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  from lth_tf.report import plots  # pylint: disable=import-outside-toplevel
  _, rows = _fabricate(tmp_path, "single", seeds=(0,), levels=2)
  drawn = {}
  real_savefig = Figure.savefig

  def record(figure, *args, **kwargs):
    axis = figure.axes[0]
    drawn["labels"] = axis.get_legend_handles_labels()[1]
    drawn["dense_line"] = [line.get_ydata()[0] for line in axis.get_lines()
                           if line.get_label() == "dense (level 0)"]
    return real_savefig(figure, *args, **kwargs)

  Figure.savefig = record
  try:
    plots.metric_vs_weights([("single", rows)], "early_stop_test_accuracy", "acc",
                            str(tmp_path / "a.png"))
  finally:
    Figure.savefig = real_savefig
  dense = next(r for r in rows if r["level"] == 0)["early_stop_test_accuracy"]
  assert "dense (level 0)" in drawn["labels"]
  assert drawn["dense_line"] == [pytest.approx(100 * dense)]


# ---- the report directory is replaced whole --------------------------------------------------

def _report_in_process(directories, out, fault=""):
  """`report.build` in a fresh interpreter (no TensorFlow), optionally killed at a fault point."""
  code = f"from lth_tf.report import report\nreport.build({directories!r}, {out!r})\n"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  if fault:
    env["LTH_FAULT_KILL_AT"] = fault
  return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                          stderr=subprocess.PIPE, text=True)


def _contents(directory):
  return {name: open(os.path.join(directory, name), "rb").read()
          for name in sorted(os.listdir(directory))}


@pytest.mark.parametrize("fault", ["write:learning_curves.png@1", "write:report.md@1"])
def test_a_killed_report_leaves_the_earlier_report_whole(tmp_path, fault):
  """Killed while writing (after some of its figures, or at its text), the report of another
  experiment leaves `--out` exactly the earlier report; the next report to `--out` replaces it
  and leaves nothing of the killed one beside it."""
  first, _ = _fabricate(tmp_path / "runs", "aaaa", seeds=(0,), levels=2)
  second, _ = _fabricate(tmp_path / "runs", "bbbbbb", seeds=(0, 1), levels=3)
  out = str(tmp_path / "reports" / "out")
  report.build([first], out)
  before = _contents(out)
  killed = _report_in_process([second], out, fault)
  killed.wait(timeout=300)
  assert killed.returncode == -9, killed.stderr.read()
  assert _contents(out) == before
  report.build([second], out)
  assert "bbbbbb" in open(os.path.join(out, "report.md")).read()
  assert sorted(os.listdir(tmp_path / "reports")) == ["out"]


def test_concurrent_reports_to_one_directory_leave_one_of_them_whole(tmp_path):
  """Two reports of different experiments written to one `--out` at once: both succeed, and
  `--out` is one of the two reports byte for byte (figures, table and text together)."""
  first, _ = _fabricate(tmp_path / "runs", "aaaa", seeds=(0,), levels=2)
  second, _ = _fabricate(tmp_path / "runs", "bbbbbb", seeds=(0, 1), levels=3)
  alone = {}
  for directory in (first, second):
    report.build([directory], str(tmp_path / os.path.basename(directory)))
    alone[directory] = _contents(str(tmp_path / os.path.basename(directory)))
  out = str(tmp_path / "shared")
  runs = [_report_in_process([directory], out) for directory in (first, second, first, second)]
  for run in runs:
    assert run.wait(timeout=300) == 0, run.stderr.read()
  assert _contents(out) in list(alone.values())
  assert sorted(os.listdir(tmp_path)) == ["aaaa", "bbbbbb", "runs", "shared"]


def test_a_report_refuses_to_replace_a_directory_of_other_files(tmp_path):
  directory, _ = _fabricate(tmp_path / "runs", "aaaa", seeds=(0,), levels=1)
  out = tmp_path / "notes"
  out.mkdir()
  (out / "draft.txt").write_text("mine")
  with pytest.raises(UserError, match="holds files that no report writes .draft.txt."):
    report.build([directory], str(out))
  assert sorted(os.listdir(out)) == ["draft.txt"]
