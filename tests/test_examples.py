"""The user scripts in examples/ run as a user runs them, on a small stand-in for their data."""
import os
import subprocess
import sys

import numpy as np

import launcher
from lth_tf import io, tickets
from lth_tf.data import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _run(*args):
  return launcher.run([sys.executable, *args], capture_output=True, text=True, env=ENV,
                      cwd=ROOT)


def _fashion_mnist(directory, train, test):
  """Fashion-MNIST's layout and classes, small, in `directory`: the examples' own loading code
  reads it (5,000 of the `train` examples are held out for validation)."""
  raw = synthetic.make((28, 28, 1), num_classes=10, train=train, test=test, seed=0)
  np.savez(directory / "fashion_mnist.npz", x_train=raw.x_train[..., 0], y_train=raw.y_train,
           x_test=raw.x_test[..., 0], y_test=raw.y_test)


def test_keras_fit_example_finds_a_ticket_that_exports_with_the_masks_zeros(tmp_path):
  _fashion_mnist(tmp_path, train=6500, test=300)
  ticket_dir = tmp_path / "ticket"
  found = _run("examples/keras_fit.py", f"--data_dir={tmp_path}", f"--out={ticket_dir}",
               "--iterations=120", "--levels=2")
  assert found.returncode == 0, found.stderr
  assert "level 2:  64.06% weights" in found.stdout, found.stdout
  ticket = tickets.read(str(ticket_dir), consent=False)  # read here, not built
  assert ticket.config.model.name == "examples.keras_fit:build_model"
  assert ticket.config.pruning.rewind_iteration == 100 and ticket.config.pruning.levels == 2
  assert ticket.mask.weights_remaining() < 0.65
  for name in ticket.mask:  # the trained ticket keeps its pruned weights at exactly 0
    assert np.all(ticket.trained_weights[name][~ticket.mask[name]] == 0)
  exported = _run("-m", "lth_tf.cli", "export", f"--ticket={ticket_dir}", "--formats=tflite",
                  f"--out={tmp_path / 'exported'}", f"--data_dir={tmp_path}", "--latency_runs=3",
                  "--trust_code=examples.keras_fit:build_model")
  assert exported.returncode == 0, exported.stderr + exported.stdout
  (row,) = [line for line in exported.stdout.splitlines() if line.startswith("| model_none")]
  assert row.split("|")[5].strip().replace(",", "") == str(ticket.mask.num_remaining())
  check = io.read_json(str(tmp_path / "exported" / "check.json"))
  assert check["failures"] == [] and check["mask_nonzero_weights"] == ticket.mask.num_remaining()


def test_keras3_fit_example_finds_a_ticket_that_exports_with_the_masks_zeros(tmp_path,
                                                                             monkeypatch):
  """examples/keras3_fit.py: a Keras 3 Sequential CNN with a softmax head, compiled and fitted
  by the user, through TicketSearch; its ticket exports to TFLite with exactly the mask's
  weights."""
  _fashion_mnist(tmp_path, train=5400, test=200)
  ticket_dir = tmp_path / "ticket"
  found = _run("examples/keras3_fit.py", f"--data_dir={tmp_path}", f"--out={ticket_dir}",
               "--iterations=60", "--levels=2")
  assert found.returncode == 0, found.stderr
  assert [line.split(":")[0] for line in found.stdout.splitlines() if line.startswith("level")] == [
      "level 0", "level 1", "level 2"], found.stdout
  ticket = tickets.read(str(ticket_dir), consent=False)
  assert ticket.framework == "keras3" and ticket.config.model.name == "examples.keras3_fit:build_model"
  assert ticket.config.model.framework == "keras3"  # readers build it in Keras 3 too
  assert 0.4 < ticket.mask.weights_remaining() < 0.55  # two rounds of 15% / 30% / 15%
  for name in ticket.mask:  # the trained ticket keeps its pruned weights at exactly 0
    assert np.all(ticket.trained_weights[name][~ticket.mask[name]] == 0)
  from lth_tf import user_code  # pylint: disable=import-outside-toplevel
  from lth_tf.export import ship  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(user_code, "_trusted", {"examples.keras3_fit:build_model"})
  monkeypatch.syspath_prepend(ROOT)
  results = ship.ship(str(ticket_dir), ["tflite"], "none", str(tmp_path / "exported"),
                      str(tmp_path), latency_runs=2)
  assert results["failures"] == [], results["failures"]
  assert results["models"]["model_none.tflite"]["nonzero_kernel_weights"] == (
      ticket.mask.num_remaining())
