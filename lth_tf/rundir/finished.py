"""The one reader of experiment directories: its `config.json` typed and checked, its summary rows,
its branches' files; no TensorFlow.

Every command that reads an experiment it did not just write (`lth report`, `lth stability`,
`lth masks compare`, `lth tickets save`, a rerun of `lth find`) reads `config.json` here, so a
hand-edited or damaged file is the same one-line error everywhere, and code an experiment names
runs only with the user's consent (`user_code.check_consent`).
"""
import dataclasses
import os
from typing import Any, Dict, List, Optional, Tuple

from lth_tf import io, user_code
from lth_tf.config import ExperimentConfig
from lth_tf.errors import ConfigError, CorruptFileError, UserError
from lth_tf.rundir.layout import CONFIG_FILE, SUMMARY_FILE, BranchFiles, ExperimentLayout
from lth_tf.rundir.records import SUMMARY_KEYS

# What `config.json` holds beside the experiment config's parts.
HASH_KEY, KIND_KEY, TRANSFER_KEY = "experiment_hash", "kind", "transfer"
TRANSFER_KIND = "transfer"
# Keys every `config.json` ever written holds: a file without them is not one, although a
# missing field otherwise takes its default (a field added since it was written).
REQUIRED_KEYS = {"dataset": ("name",), "model": ("name",), "training": ("optimizer",),
                 "pruning": ("mode", "rewind_iteration")}


@dataclasses.dataclass(frozen=True)
class RecordedConfig:
  """An experiment directory's `config.json`: the typed config, the hash it was written under
  ('' before it was recorded), and a transfer experiment's own section."""
  config: ExperimentConfig
  experiment_hash: str = ""
  kind: str = ""
  transfer: Dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def is_transfer(self) -> bool:
    return self.kind == TRANSFER_KIND


def parse_config(path: str, value: Any) -> RecordedConfig:
  """The content of a `config.json` at `path`, typed: fields added since it was written take
  their defaults (as in the hash), renamed and retired ones are read as `ExperimentConfig`
  reads them; anything else is a one-line `CorruptFileError` naming the file."""
  if not isinstance(value, dict):
    raise CorruptFileError(f"{path}: not an experiment config (a JSON object)")
  data = dict(value)
  recorded_hash, kind = data.pop(HASH_KEY, ""), data.pop(KIND_KEY, "")
  transfer = data.pop(TRANSFER_KEY, {})
  problems = [what for what, ok in (("experiment_hash malformed", isinstance(recorded_hash, str)),
                                    ("kind malformed", isinstance(kind, str)),
                                    ("transfer malformed", isinstance(transfer, dict)))
              if not ok]
  problems += [f"{part}.{key} missing" for part, keys in REQUIRED_KEYS.items()
               for key in keys if not isinstance(data.get(part), dict) or key not in data[part]]
  if problems or (kind == TRANSFER_KIND and not transfer):
    raise CorruptFileError(f"{path}: not an experiment config "
                           f"({', '.join(problems) or 'transfer section missing'})")
  try:
    config = ExperimentConfig.from_dict(data)
  except (ConfigError, AttributeError, TypeError, ValueError) as error:
    raise CorruptFileError(f"{path}: not an experiment config ({error})") from None
  return RecordedConfig(config, recorded_hash, kind, transfer)


def read_config(directory: str, runs_code: bool = False) -> RecordedConfig:
  """`config.json` of the experiment directory `directory`.

  Args:
    runs_code: the caller will build the experiment's model or load its data: user code the
      config names must have been named by the user (`user_code.check_consent`), checked before
      anything is imported.

  Raises:
    UserError: no `config.json` (not an experiment directory).
    CorruptFileError: a damaged or hand-edited one (a wrong type, an unknown field).
    ConfigError: with `runs_code`, it names user code the user did not name.
  """
  path = ExperimentLayout.from_directory(directory).config_file
  if not os.path.isfile(path):
    raise UserError(f"{directory} is not an experiment directory (no {CONFIG_FILE}): {path} is "
                    "missing")
  recorded = parse_config(path, io.read_json(path))
  if runs_code:
    user_code.check_consent(recorded.config, f"the experiment directory {directory}")
  return recorded


def summary_rows(directory: str) -> List[Dict[str, Any]]:
  """`summary.json`: a non-empty list of rows, each with the summary keys."""
  path = ExperimentLayout.from_directory(directory).summary_file
  if not os.path.isfile(path):
    raise UserError(f"{directory} has no finished branch yet (no {SUMMARY_FILE})")
  rows = io.read_json(path)
  if not isinstance(rows, list) or not all(
      isinstance(row, dict) and all(key in row for key in SUMMARY_KEYS) for row in rows):
    raise CorruptFileError(f"{path}: not an experiment summary (a list of rows with "
                           f"{', '.join(SUMMARY_KEYS)}); rerun the experiment to rewrite it")
  if not rows:
    raise CorruptFileError(f"{path}: no finished branch yet, nothing to report")
  return rows


def branch_metrics(path: str) -> Dict[str, Any]:
  """A finished branch's `metrics.json`: an object with the summary keys."""
  value = io.read_json(path)
  if not (isinstance(value, dict) and all(key in value for key in SUMMARY_KEYS)):
    raise CorruptFileError(f"{path}: not a finished branch's metrics (delete the branch "
                           "directory and rerun the experiment to retrain it)")
  return value


def branch_curve(path: str) -> List[Dict[str, Any]]:
  """A branch's `curve.json`: a list of rows with the iteration and the test accuracy."""
  value = io.read_json(path)
  if not (isinstance(value, list) and all(
      isinstance(row, dict) and "iteration" in row and "test_accuracy" in row for row in value)):
    raise CorruptFileError(f"{path}: not a learning curve (a list of rows with iteration and "
                           "test_accuracy)")
  return value


_BRANCH_READERS = {"metrics": branch_metrics, "curve_json": branch_curve}


def _but_levels(config: ExperimentConfig, levels: int) -> Tuple:
  """The scientific parts of `config` with its level count set to `levels`."""
  pruning = dataclasses.replace(config.pruning, levels=levels)
  return tuple(pruning if part == "pruning" else getattr(config, part)
               for part in ExperimentConfig.SCIENTIFIC_PARTS)


def extends(recorded: ExperimentConfig, config: ExperimentConfig) -> bool:
  """Whether `config` is the experiment `recorded` with another level count, so that one
  directory holds both: every level trains the same whatever the count, except that an
  early-bird watch runs only in an experiment that prunes (levels >= 1)."""
  if _but_levels(recorded, 0) != _but_levels(config, 0):
    return False
  watched = config.pruning.early_bird_threshold > 0
  return not watched or (recorded.pruning.levels > 0) == (config.pruning.levels > 0)


def _may_extend(raw: Any, config: ExperimentConfig) -> bool:
  """A cheap first look at a `config.json`'s content: no transfer, and the same dataset and
  model names as `config` (`extends` decides on the typed config)."""
  if not isinstance(raw, dict) or raw.get(KIND_KEY) == TRANSFER_KIND:
    return False
  return all(isinstance(raw.get(part), dict) and raw[part].get("name") == getattr(config, part).name
             for part in ("dataset", "model"))


def layout_for(config: ExperimentConfig) -> Tuple[ExperimentLayout, int]:
  """The directory of the experiment `config` describes, and the level count it records (0 for
  a new one).

  The level count is part of the directory's hash (the hashes of existing directories and
  presets stay as they were), but not of the experiment: a run asking for more levels than a
  directory of the same experiment records extends that directory, and one asking for fewer
  reads a prefix of it. The directory named by this config's own hash is used where it exists;
  otherwise the one of the same experiment recording the most levels (`extends`), if any.
  Directories whose `config.json` cannot be read are left to the commands that read them.
  """
  exact = ExperimentLayout.for_config(config)
  if os.path.isfile(exact.config_file):
    try:
      recorded = parse_config(exact.config_file, io.read_json(exact.config_file))
      return exact, recorded.config.pruning.levels
    except UserError:
      return exact, 0  # the run's own check of the previous config says what is wrong
  root = config.runtime.root_dir
  found = []
  for name in sorted(os.listdir(root)) if os.path.isdir(root) else ():
    path = ExperimentLayout(root, name).config_file
    if not os.path.isfile(path):
      continue
    try:
      raw = io.read_json(path)
      if not _may_extend(raw, config):  # most directories differ in a name: no typed read
        continue
      recorded = parse_config(path, raw)
    except UserError:
      continue
    if not recorded.is_transfer and extends(recorded.config, config):
      found.append((recorded.config.pruning.levels, name))
  if not found:
    return exact, 0
  levels, name = max(found)
  return ExperimentLayout(root, name), levels


class FinishedExperiment:
  """An experiment directory that holds at least one finished branch, read-only: its recorded
  config, its summary rows and its branches' files, each checked as it is read."""

  def __init__(self, directory: str, runs_code: bool = False):
    self.directory = directory.rstrip("/") or directory
    self.layout = ExperimentLayout.from_directory(self.directory)
    self._read: Dict[Tuple[int, int, str, str], Any] = {}  # branch files, each read once
    self.rows = summary_rows(self.directory)
    self.recorded = read_config(self.directory, runs_code)

  @property
  def config(self) -> ExperimentConfig:
    return self.recorded.config

  @property
  def name(self) -> str:
    return self.layout.experiment_hash

  def branch_files(self, replicate: int, level: int, branch: str) -> BranchFiles:
    return BranchFiles(self.layout.branch_dir(replicate, level, branch))

  def compute_totals(self) -> Optional[Dict[str, Any]]:
    """`compute.json`'s totals (runs, iterations trained, wall time, training FLOPs); None for
    an experiment from before compute accounting."""
    path = self.layout.compute_file
    if not os.path.exists(path):
      return None
    total = io.read_json(path)
    total = total.get("total") if isinstance(total, dict) else None
    if not isinstance(total, dict) or not all(
        isinstance(total.get(key), (int, float)) and not isinstance(total.get(key), bool)
        for key in ("runs", "iterations_trained", "wall_time_s", "train_flops")):
      raise CorruptFileError(f"{path}: not an experiment's compute totals; rerun the experiment "
                             "to rewrite it")
    return total

  def branch_json(self, replicate: int, level: int, branch: str, name: str) -> Optional[Any]:
    """A branch's `metrics` or `curve_json`, checked; None when the branch has none."""
    key = (replicate, level, branch, name)
    if key not in self._read:
      path = getattr(self.branch_files(replicate, level, branch), name)
      self._read[key] = _BRANCH_READERS[name](path) if os.path.exists(path) else None
    return self._read[key]
