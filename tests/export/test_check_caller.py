"""The export check's process ends with the `lth export` that started it: a killed export's
check never writes into its staging directory afterwards."""
import os
import subprocess
import sys

import numpy as np

import launcher
from lth_tf import io
from lth_tf.export import check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _directory(tmp_path):
  """An export directory with reference outputs and no model: the check has nothing to time."""
  rng = np.random.default_rng(0)
  io.write_arrays(str(tmp_path / "reference.npz"),
                  {"images": rng.random((4, 3)).astype(np.float32), "labels": np.arange(4) % 2,
                   "logits": rng.random((4, 2)).astype(np.float32)})
  return str(tmp_path)


def _check(directory, caller):
  return launcher.run([sys.executable, "-m", "lth_tf.export.check", f"--dir={directory}",
                         "--runs=1", f"--caller={caller}"], capture_output=True, text=True,
                        cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)


def test_a_check_whose_caller_is_gone_writes_nothing(tmp_path):
  directory = _directory(tmp_path)
  gone = subprocess.Popen([sys.executable, "-c", "pass"])
  gone.wait()
  result = _check(directory, gone.pid)
  assert result.returncode == check.CALLER_GONE, result.stderr
  assert not os.path.exists(os.path.join(directory, "check.json"))


def test_a_check_whose_caller_lives_writes_its_results(tmp_path):
  directory = _directory(tmp_path)
  result = _check(directory, os.getpid())
  assert result.returncode == 0, result.stderr
  written = io.read_json(os.path.join(directory, "check.json"))
  assert written["examples"] == 4 and written["models"] == {}


def test_a_check_ends_when_its_caller_dies_mid_check(tmp_path):
  """The caller is killed while the check runs (here: while it waits to start): the check
  process ends within about a second, without writing."""
  directory = _directory(tmp_path)
  caller = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  started = launcher.start([sys.executable, "-c",
                              "import sys, time\n"
                              "from lth_tf.export import check\n"
                              "check._follow(int(sys.argv[1]))\n"
                              "time.sleep(60)\n", str(caller.pid)], cwd=ROOT)
  try:
    caller.kill()
    caller.wait()
    assert started.wait(timeout=30) == check.CALLER_GONE
  finally:
    started.kill()
  assert not os.path.exists(os.path.join(directory, "check.json"))
