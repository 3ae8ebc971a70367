"""The record of a rewind sweep (`lth_tf.lottery.sweep`): its one schema, writer and reader.

`<root>/sweeps/<sweep hash>/sweep.json` is

    {"sweep_hash": "...",
     "experiments": [{"rewind_iteration": k, "experiment_hash": "..."}, ...]}

one entry per k in increasing order; each experiment is the ordinary directory
`<root>/<experiment hash>/` of a run with that k alone. It needs no TensorFlow to read.
"""
import os
import re
from typing import List, Tuple

from lth_tf import io
from lth_tf.errors import CorruptFileError, UserError
from lth_tf.rundir.layout import SWEEP_FILE, ExperimentLayout, SweepLayout

_HASH = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def write(layout: SweepLayout, experiments: List[Tuple[int, str]]) -> None:
  """Writes the record of `layout`'s sweep: its (k, experiment hash) pairs."""
  io.write_json(layout.record_file, {
      "sweep_hash": layout.sweep_hash,
      "experiments": [{"rewind_iteration": int(k), "experiment_hash": h} for k, h in experiments]})


def is_sweep(directory: str) -> bool:
  """Whether `directory` is a rewind sweep's (it holds `sweep.json`)."""
  return os.path.isfile(os.path.join(directory, SWEEP_FILE))


def read(directory: str) -> List[Tuple[int, ExperimentLayout]]:
  """The (k, experiment layout) of every experiment of the sweep in `directory`, by k.

  Raises:
    UserError: `directory` is no sweep's; CorruptFileError: its record is not one.
  """
  if not is_sweep(directory):
    raise UserError(f"{directory} is not a rewind sweep's directory (no {SWEEP_FILE})")
  layout = SweepLayout.from_directory(directory)
  record = io.read_json(layout.record_file)
  entries = record.get("experiments") if isinstance(record, dict) else None
  # An experiment is named by its hash, a directory beside the sweeps: never a path (`..`, `/`)
  # that would make the report read a directory elsewhere.
  if not isinstance(entries, list) or not entries or not all(
      isinstance(e, dict) and isinstance(e.get("rewind_iteration"), int)
      and isinstance(e.get("experiment_hash"), str) and _HASH.match(e["experiment_hash"])
      for e in entries):
    raise CorruptFileError(f"{layout.record_file}: not a rewind sweep's record (experiments "
                           "with rewind_iteration and experiment_hash, a directory name); rerun "
                           "the sweep to write it again")
  return sorted(((e["rewind_iteration"], layout.experiment(e["experiment_hash"]))
                 for e in entries), key=lambda item: item[0])
