"""Every command that reads an experiment directory reads its `config.json` through one reader
(`rundir.finished`): a hand-edited file is the same one-line error in each, and code the file
names is imported only by the readers that run the experiment's code, with consent."""
import os
import subprocess
import sys

import numpy as np
import pytest

from lth_tf import io
from lth_tf.config import ExperimentConfig
from lth_tf.settings import StabilityConfig
from lth_tf.errors import UserError
from lth_tf.rundir import BranchFiles, ExperimentLayout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _experiment(root, edit):
  """A directory with a finished dense level (summary and metrics) whose config.json is the
  default config with `edit` applied to its dict."""
  layout = ExperimentLayout(str(root), "edited")
  row = {"replicate": 0, "level": 0, "branch": "ticket", "weights_remaining": 1.0,
         "early_stop_iteration": 100, "early_stop_test_accuracy": 0.9,
         "final_test_accuracy": 0.9, "min_validation_loss": 0.3}
  io.write_json(layout.summary_file, [row])
  files = BranchFiles(layout.branch_dir(0, 0, "ticket"))
  io.write_json(files.metrics, row)
  io.write_arrays(files.mask, {"fc1/kernel": np.ones((4, 3), bool)})
  config = ExperimentConfig().to_dict()
  edit(config)
  io.write_json(layout.config_file, config)
  return layout.directory


def _set(part, field, value):
  def edit(config):
    config[part][field] = value
  return edit


TAMPERED = {
    "a float iteration count": (_set("training", "iterations", 100.0), "iterations"),
    "a string learning rate": (_set("training", "learning_rate", "0.1"), "learning_rate"),
    "a fractional seed": (_set("runtime", "seeds", [0.5]), "seeds"),
    "a boolean level count": (_set("pruning", "levels", True), "levels"),
    "an unknown field": (_set("pruning", "prune_rate", 0.2), "prune_rate"),
    "a part that is not an object": (lambda c: c.update(training=[1]), "training"),
    "no model name": (lambda c: c["model"].pop("name"), "model.name"),
    "a malformed hash": (lambda c: c.update(experiment_hash=3), "experiment_hash"),
}


def _report(directory, out):
  from lth_tf.report import report  # pylint: disable=import-outside-toplevel
  report.build([directory], out)


def _masks(directory, out):
  from lth_tf.report import masks  # pylint: disable=import-outside-toplevel
  masks.build([directory, directory], [], out)


def _stability(directory, out):
  from lth_tf.stability import StabilityExperiment  # pylint: disable=import-outside-toplevel
  StabilityExperiment.from_directory(directory, StabilityConfig(), data_dir=out)


def _tickets_save(directory, out):
  from lth_tf import tickets  # pylint: disable=import-outside-toplevel
  tickets.save(directory, 0, 0, out)


READERS = {"report": _report, "masks compare": _masks, "stability": _stability,
           "tickets save": _tickets_save}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_config_is_one_line_naming_the_file_in_every_reader(tmp_path, reader, case):
  edit, field = TAMPERED[case]
  directory = _experiment(tmp_path / "runs", edit)
  out = str(tmp_path / "out")
  with pytest.raises(UserError) as error:
    READERS[reader](directory, out)
  message = str(error.value)
  assert os.path.join(directory, "config.json") in message and field in message, message
  assert "\n" not in message
  assert not os.path.exists(out)


def test_the_reader_types_what_it_reads(tmp_path):
  from lth_tf.rundir import FinishedExperiment  # pylint: disable=import-outside-toplevel
  directory = _experiment(tmp_path / "runs", _set("training", "iterations", 300))
  experiment = FinishedExperiment(directory)
  assert experiment.config.training.iterations == 300
  assert experiment.name == "edited" and experiment.layout == ExperimentLayout.from_directory(directory)
  assert experiment.branch_json(0, 0, "ticket", "metrics")["early_stop_iteration"] == 100
  assert experiment.branch_json(0, 1, "ticket", "metrics") is None
  assert experiment.compute_totals() is None
  assert not experiment.recorded.is_transfer


def test_a_transfer_directory_needs_its_transfer_section(tmp_path):
  from lth_tf.rundir import FinishedExperiment  # pylint: disable=import-outside-toplevel
  directory = _experiment(tmp_path / "runs", lambda c: c.update(kind="transfer"))
  with pytest.raises(UserError, match="transfer section missing"):
    FinishedExperiment(directory)


def test_reading_names_no_code_and_running_asks_consent(tmp_path):
  """A directory whose config names `this:x`: report and masks compare read it without importing
  `this` (they run no code of the experiment); stability and tickets save refuse it before any
  import."""
  directory = _experiment(tmp_path / "runs", _set("model", "name", "this:x"))
  code = ("import sys\n"
          "from lth_tf.report import report, masks\n"
          f"report.build([{directory!r}], {str(tmp_path / 'r')!r})\n"
          f"masks.build([{directory!r}, {directory!r}], [], {str(tmp_path / 'm')!r})\n"
          "assert 'this' not in sys.modules\n"
          "from lth_tf.errors import ConfigError\n"
          "from lth_tf.rundir import finished\n"
          "try:\n"
          f"  finished.read_config({directory!r}, runs_code=True)\n"
          "except ConfigError as error:\n"
          "  assert 'this:x' in str(error) and '--trust_code' in str(error), error\n"
          "else:\n"
          "  raise AssertionError('no consent asked')\n"
          "assert 'this' not in sys.modules\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Zen of Python" not in result.stdout
  for reader in (_stability, _tickets_save):
    with pytest.raises(UserError, match="names code that would run: this:x"):
      reader(directory, str(tmp_path / "out"))



@pytest.mark.parametrize("named", ["../elsewhere", "/etc", "..", "a/b", ""])
def test_a_sweep_record_names_experiments_by_hash_never_by_path(tmp_path, named):
  """A sweep's record naming a path instead of a hash would send the report to read a directory
  outside the sweep's root."""
  from lth_tf.errors import CorruptFileError  # pylint: disable=import-outside-toplevel
  from lth_tf.report import report  # pylint: disable=import-outside-toplevel
  from lth_tf.rundir import SweepLayout, sweep  # pylint: disable=import-outside-toplevel
  layout = SweepLayout(str(tmp_path / "runs"), "abcdef123456")
  sweep.write(layout, [(0, "0123456789ab"), (10, named)])
  with pytest.raises(CorruptFileError, match="not a rewind sweep's record"):
    report.build([layout.directory], str(tmp_path / "out"))
  assert not os.path.exists(tmp_path / "out")
