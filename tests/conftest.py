"""Shared test set-up: quiet TensorFlow, Keras 2 chosen before anything imports TensorFlow."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import lth_tf.compat  # noqa: E402,F401  (chooses tf_keras before any test imports TensorFlow)

import shutil  # noqa: E402
import sys  # noqa: E402

# tests/ on the path under Bazel too, whose targets run one test file from the runfiles root.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launcher  # noqa: E402
from lth_tf.export import ship  # noqa: E402

# The export's check runs in a new interpreter: in the tests, a fork of one that has imported
# TensorFlow only (launcher.py), as the command-line tests' processes are.
ship.run_check = launcher.run


def user_modules(tmp_path, monkeypatch, source_dir, names):
  """Copies a user's modules (`names` in `source_dir`) into `tmp_path`, made the current
  directory and importable, as a user's own files outside the package; returns `tmp_path`."""
  for name in names:
    shutil.copy(os.path.join(source_dir, name), tmp_path / name)
  monkeypatch.chdir(tmp_path)
  monkeypatch.syspath_prepend(str(tmp_path))
  return tmp_path
