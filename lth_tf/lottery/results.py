"""What a finished branch leaves: its metrics record, curve (JSON, CSV, TensorBoard), the summary
rows and compute totals, and the one line printed per branch."""
from __future__ import annotations

import csv
import io as _io
import os
import shutil
from typing import Dict, List

from lth_tf import compute, io, pruning
from lth_tf import compat
from lth_tf.compat import tf
from lth_tf.mechanism import keras3
from lth_tf.errors import WriteError
from lth_tf.rundir import SUMMARY_KEYS
from lth_tf.training import TrainResult


def row(seed: int, level: int, branch: str, mask: pruning.Mask, result: TrainResult) -> Dict:
  """The summary keys of a finished branch."""
  return {"replicate": seed, "level": level, "branch": branch,
          "weights_remaining": mask.weights_remaining(),
          "early_stop_iteration": result.early_stop_iteration,
          "early_stop_test_accuracy": result.early_stop_test_accuracy,
          "final_test_accuracy": result.final_test_accuracy,
          "min_validation_loss": result.min_validation_loss}


def metrics(model, seed: int, level: int, branch: str, mask: pruning.Mask, result: TrainResult,
            experiment_hash: str, batch_size: int, elapsed: float) -> Dict:
  """`metrics.json` of a finished branch: its row, the result, densities and compute."""
  out = row(seed, level, branch, mask, result)
  out.update(result.metrics())
  out.update({
      "weights_remaining_by_layer": mask.layer_densities(),
      "prunable_weights": mask.num_weights(),
      "prunable_weights_remaining": mask.num_remaining(),
      "experiment_hash": experiment_hash,
  })
  out.update(compute.branch_compute(
      model, mask, batch_size, result.iterations - int(result.curve[0]["iteration"]), elapsed))
  return out


def summary_row(metrics_record: Dict) -> Dict:
  """A summary row from a branch's metrics, with its deterministic compute (iterations, FLOPs);
  None for runs that predate compute accounting. Wall time stays in metrics and compute.json."""
  out = {key: metrics_record[key] for key in SUMMARY_KEYS}
  out.update({key: metrics_record.get(key) for key in compute.SUMMARY_COMPUTE_KEYS})
  return out


def compute_summary(records: List[Dict]) -> Dict:
  """Compute totals of an experiment from its branches' metrics: all branches, and per branch."""
  branches = sorted({m["branch"] for m in records})
  return {"total": compute.total(records),
          "by_branch": {b: compute.total(m for m in records if m["branch"] == b) for b in branches},
          "rule": compute.__doc__.split("\n\n")[1]}


def format_row(summary: Dict) -> str:
  return (f"replicate {summary['replicate']} level {summary['level']:>2} "
          f"{summary['branch']:<12} "
          f"weights remaining {100 * summary['weights_remaining']:6.2f}%  "
          f"early stop it {summary['early_stop_iteration']:>6}  "
          f"test acc {100 * summary['early_stop_test_accuracy']:.2f}% (early stop) "
          f"{100 * summary['final_test_accuracy']:.2f}% (final)")


def curve_csv(curve) -> str:
  buffer = _io.StringIO()
  # Every key of any row (level 0's start row has no mask distance), in first-seen order.
  writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for row in curve for k in row)))
  writer.writeheader()
  writer.writerows(curve)
  return buffer.getvalue()


def write_tensorboard(directory: str, curve) -> None:
  """Writes the curve as TensorBoard scalars into a temporary folder, then renames it into place.

  Keras 3 on JAX writes none unless TensorFlow is already imported: TensorBoard's writers import
  TensorFlow, which that path never does (`curve.csv` and `curve.json` hold the same rows)."""
  if not compat.loaded() and keras3.on_jax():
    return
  staging = os.path.join(os.path.dirname(directory), io.TEMP_PREFIX + os.path.basename(directory))
  shutil.rmtree(staging, ignore_errors=True)
  try:
    writer = tf.summary.create_file_writer(staging)
    with writer.as_default():
      for entry in curve:
        for key, value in entry.items():
          if key != "iteration" and value is not None:
            tf.summary.scalar(key, value, step=int(entry["iteration"]))
    writer.close()
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(staging, directory)
  except OSError as error:
    raise WriteError(io.write_failure(directory, error)) from None
  finally:
    shutil.rmtree(staging, ignore_errors=True)  # a failed or interrupted write
