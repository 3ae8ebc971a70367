"""An experiment directory's JSON files as the report reads them, checked: a damaged one is one line."""
import os
from typing import Any, Dict, List, Optional

from lth_tf import io
from lth_tf.errors import CorruptFileError
from lth_tf.rundir import SUMMARY_KEYS

CONFIG_KEYS = {"dataset": ("name",), "model": ("name",), "training": ("optimizer",),
               "pruning": ("mode", "rewind_iteration")}


def summary(directory: str) -> List[Dict[str, Any]]:
  """summary.json: a non-empty list of rows, each with the summary keys."""
  path = os.path.join(directory, "summary.json")
  rows = io.read_json(path)
  if not isinstance(rows, list) or not all(
      isinstance(row, dict) and all(key in row for key in SUMMARY_KEYS) for row in rows):
    raise CorruptFileError(f"{path}: not an experiment summary (a list of rows with "
                           f"{', '.join(SUMMARY_KEYS)}); rerun the experiment to rewrite it")
  if not rows:
    raise CorruptFileError(f"{path}: no finished branch yet, nothing to report")
  return rows


def config(directory: str) -> Dict[str, Any]:
  """config.json: an object with the dataset, model, training and pruning parts the report names."""
  path = os.path.join(directory, "config.json")
  value = io.read_json(path)
  if not isinstance(value, dict) or not all(
      isinstance(value.get(part), dict) and all(key in value[part] for key in keys)
      for part, keys in CONFIG_KEYS.items()):
    raise CorruptFileError(f"{path}: not an experiment config (an object with "
                           f"{', '.join(CONFIG_KEYS)})")
  return value


def branch_json(path: str, name: str) -> Optional[Any]:
  """A branch's metrics.json (an object with the summary keys) or curve.json (a list of rows with iteration and test
  accuracy); None when the branch has none."""
  if not os.path.exists(path):
    return None
  value = io.read_json(path)
  if name == "metrics" and not (isinstance(value, dict) and all(key in value for key in SUMMARY_KEYS)):
    raise CorruptFileError(f"{path}: not a finished branch's metrics (delete the branch "
                           "directory and rerun the experiment to retrain it)")
  if name == "curve_json" and not (isinstance(value, list) and all(
      isinstance(row, dict) and "iteration" in row and "test_accuracy" in row for row in value)):
    raise CorruptFileError(f"{path}: not a learning curve (a list of rows with iteration and "
                           "test_accuracy)")
  return value
