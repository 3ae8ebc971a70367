"""`lth status` (one module, `lth_tf/commands/status.py`, and nothing else): what an experiment
directory has finished and what a rerun would still train, from its files alone."""
import os
import subprocess
import sys

import numpy as np
import pytest

from lth_tf import io
from lth_tf.commands import status
from lth_tf.config import ExperimentConfig, PruningConfig, RuntimeConfig
from lth_tf.errors import UserError
from lth_tf.rundir import BranchFiles, ExperimentLayout

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _experiment(root):
  """Two replicates, two levels with re-init: replicate 0 finished, replicate 1 stopped in level
  1 with its ticket finished and its re-init started (a checkpoint)."""
  config = ExperimentConfig(pruning=PruningConfig(levels=2, reinit=True),
                            runtime=RuntimeConfig(seeds=(0, 1)))
  layout = ExperimentLayout(str(root), "abcdef012345")
  io.write_json(layout.config_file, config.to_dict())
  finished = [(0, 0, "ticket"), (0, 1, "ticket"), (0, 1, "reinit"), (0, 2, "ticket"),
              (0, 2, "reinit"), (1, 0, "ticket"), (1, 1, "ticket")]
  for seed, level, branch in finished:
    io.write_json(BranchFiles(layout.branch_dir(seed, level, branch)).metrics, {"level": level})
  io.write_arrays(BranchFiles(layout.branch_dir(1, 1, "reinit")).checkpoint, {"x": np.zeros(1)})
  return layout.directory


def test_status_says_what_is_finished_started_and_left(tmp_path):
  lines = status.status(_experiment(tmp_path))
  default = ExperimentConfig()
  assert lines[0] == (f"experiment abcdef012345: {default.model.name} on {default.dataset.name}, "
                      "2 levels, replicates 0, 1")
  assert lines[2] == "| replicate | level | ticket | reinit |"
  assert lines[4:10] == ["| 0 | 0 | done |  |", "| 0 | 1 | done | done |",
                         "| 0 | 2 | done | done |", "| 1 | 0 | done |  |",
                         "| 1 | 1 | done | started |", "| 1 | 2 | - | - |"]
  assert lines[-1] == "3 branches left to train (rerun the same command to finish)"


def test_status_from_the_command_line_needs_no_tensorflow(tmp_path):
  directory = _experiment(tmp_path)
  code = ("import sys\n"
          "from lth_tf import cli\n"
          f"sys.argv = ['lth', 'status', '--experiment_dir={directory}']\n"
          "try:\n"
          "  cli.main()\n"
          "except SystemExit as exit:\n"
          "  assert not exit.code, exit.code\n"
          "assert not [m for m in sys.modules if m.startswith('tensorflow')]\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "| 1 | 1 | done | started |" in result.stdout


def test_status_of_a_directory_without_a_config_is_one_line(tmp_path):
  with pytest.raises(UserError, match="is not an experiment directory"):
    status.status(str(tmp_path))
  broken = _experiment(tmp_path / "runs")
  recorded = io.read_json(os.path.join(broken, "config.json"))
  recorded["pruning"]["levels"] = 2.0
  io.write_json(os.path.join(broken, "config.json"), recorded)
  with pytest.raises(UserError, match="config.json: not an experiment config .*levels"):
    status.status(broken)


def test_the_status_of_a_finished_experiment_leaves_nothing(tmp_path):
  directory = _experiment(tmp_path)
  layout = ExperimentLayout.from_directory(directory)
  for seed, level, branch in [(1, 1, "reinit"), (1, 2, "ticket"), (1, 2, "reinit")]:
    io.write_json(BranchFiles(layout.branch_dir(seed, level, branch)).metrics, {})
  assert status.status(directory)[-1] == "0 branches left to train"
