"""The schemas of an experiment directory's records that more than one reader relies on."""
import os
from typing import Dict

from lth_tf import io
from lth_tf.errors import UserError

# The keys of every row of `summary.json`, and of every finished branch's `metrics.json` (which
# has more): what a resume, a report and a saved ticket read.
SUMMARY_KEYS = ("replicate", "level", "branch", "weights_remaining", "early_stop_iteration",
                "early_stop_test_accuracy", "final_test_accuracy", "min_validation_loss")


# `data.json`: the data an experiment (or a tuning search) trains on, from its `Splits`.
def data_record(data) -> Dict:
  """What `data.json` records of the data an experiment trains on."""
  return {"dataset": data.name, "sha256": data.digest, "train": int(len(data.y_train)),
          "validation": int(len(data.y_val)), "test": int(len(data.y_test)),
          "num_classes": int(data.num_classes), "input_shape": list(data.input_shape)}


def check_data_record(path: str, data, directory: str,
                      flag: str = "root_dir") -> None:
  """Refuses to go on in `directory` if its recorded data (`path`, when it exists) is not `data`.

  Raises:
    UserError: other data than recorded (a file replaced since, another data_dir), or an
      unreadable record; one line that says how to start a new experiment.
  """
  if not os.path.exists(path):
    return
  try:
    recorded = io.read_json(path)
  except UserError as error:
    raise UserError(f"{error}; remove it to record the data again") from None
  if not isinstance(recorded, dict) or recorded.get("sha256") != data.digest:
    raise UserError(f"{directory} was trained on other data than dataset {data.name} holds now "
                    f"(recorded in {path}: {_describe(recorded)}; now: "
                    f"{_describe(data_record(data))}); to start a new experiment on this data "
                    f"use another --{flag}, or remove {directory}")


def _describe(record) -> str:
  record = record if isinstance(record, dict) else {}
  sizes = "/".join(str(record.get(key)) for key in ("train", "validation", "test"))
  return f"sha256 {str(record.get('sha256'))[:12]}, {sizes} train/validation/test examples"


def record_data(path: str, data, directory: str, flag: str = "root_dir") -> None:
  """Records the data in `path` if no record exists (a new directory, or one older than the
  record); a record written meanwhile by another process is checked instead."""
  check_data_record(path, data, directory, flag)
  if not os.path.exists(path):
    io.write_json(path, data_record(data))
