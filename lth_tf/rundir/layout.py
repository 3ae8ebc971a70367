"""Where every artifact of an experiment lives; the only place that builds run paths."""
import dataclasses
import os

from lth_tf.config import ExperimentConfig


# An experiment directory's config (with its hash), the summary rows of its finished branches,
# and its compute totals.
CONFIG_FILE, SUMMARY_FILE, COMPUTE_FILE = "config.json", "summary.json", "compute.json"
# What an experiment directory was trained on (`rundir.records.record_data`): a rerun on other
# data is refused.
DATA_FILE = "data.json"
# The step engine it was trained with (`rundir.records.record_engine`): a rerun on another
# engine is refused, so that no experiment mixes two engines' roundings.
ENGINE_FILE = "engine.json"
# The Keras its model is built in (`rundir.records.record_model`: `tf_keras` or `keras3`).
MODEL_FILE = "model.json"
# `lth stability` (`lth_tf.stability`): its copies and per-pair paths live under this directory
# of the experiment; the roll-up record and its figure beside the summary.
STABILITY_DIR = "stability"
STABILITY_FILE = "stability.json"
STABILITY_PLOT = "stability.png"
# A rewind sweep (`lth_tf.lottery.sweep`): its record lives in `<root>/sweeps/<sweep hash>/`; its
# experiments are ordinary directories `<root>/<experiment hash>/`.
SWEEPS_DIR = "sweeps"
SWEEP_FILE = "sweep.json"
# The optimizer policy every branch of a level starts from (`rundir.records.record_optimizer`):
# a directory whose finished controls started under the earlier rule is not resumed into a mix.
OPTIMIZER_FILE = "optimizer_policy.json"


@dataclasses.dataclass(frozen=True)
class ExperimentLayout:
  """`root/<hash>/replicate_<seed>/level_<L>/<branch>/` and the files in each directory."""
  root: str
  experiment_hash: str

  @classmethod
  def for_config(cls, config: ExperimentConfig) -> "ExperimentLayout":
    return cls(config.runtime.root_dir, config.experiment_hash())

  @classmethod
  def from_directory(cls, directory: str) -> "ExperimentLayout":
    """The layout of the experiment directory `directory` (its name is its hash)."""
    directory = os.path.abspath(directory)
    return cls(os.path.dirname(directory), os.path.basename(directory))

  @property
  def directory(self) -> str:
    return os.path.join(self.root, self.experiment_hash)

  @property
  def config_file(self) -> str:
    return os.path.join(self.directory, CONFIG_FILE)

  @property
  def flags_file(self) -> str:
    return os.path.join(self.directory, "flags.txt")

  @property
  def data_file(self) -> str:
    return os.path.join(self.directory, DATA_FILE)

  @property
  def engine_file(self) -> str:
    return os.path.join(self.directory, ENGINE_FILE)

  @property
  def model_file(self) -> str:
    return os.path.join(self.directory, MODEL_FILE)

  @property
  def optimizer_file(self) -> str:
    return os.path.join(self.directory, OPTIMIZER_FILE)

  @property
  def summary_file(self) -> str:
    return os.path.join(self.directory, SUMMARY_FILE)

  @property
  def compute_file(self) -> str:
    """Compute totals (iterations, wall time, training FLOPs) over the finished branches."""
    return os.path.join(self.directory, COMPUTE_FILE)

  def replicate_dir(self, seed: int) -> str:
    return os.path.join(self.directory, f"replicate_{seed}")

  def rewind_file(self, seed: int) -> str:
    """Weights and optimizer state at the rewind iteration k (captured in level 0)."""
    return os.path.join(self.replicate_dir(seed), "rewind_point.npz")

  def branch_dir(self, seed: int, level: int, branch: str) -> str:
    return os.path.join(self.replicate_dir(seed), f"level_{level}", branch)

  @property
  def stability_file(self) -> str:
    """`lth stability`'s record: every evaluated pair of copies and its path."""
    return os.path.join(self.directory, STABILITY_FILE)

  @property
  def stability_plot(self) -> str:
    return os.path.join(self.directory, STABILITY_PLOT)

  def stability_pair(self, seed: int, level: int, branch: str) -> "StabilityFiles":
    """The two copies `lth stability` trains of one branch of one level, and their path."""
    return StabilityFiles(os.path.join(self.directory, STABILITY_DIR, f"replicate_{seed}",
                                       f"level_{level}", branch))


@dataclasses.dataclass(frozen=True)
class SweepLayout:
  """`root/sweeps/<sweep hash>/sweep.json`, the record of a rewind sweep; its experiments are
  `root/<experiment hash>/`, as each one alone would be (relative to the sweep's directory:
  moving the root moves them together)."""
  root: str
  sweep_hash: str

  @classmethod
  def from_directory(cls, directory: str) -> "SweepLayout":
    directory = os.path.abspath(directory)
    return cls(os.path.dirname(os.path.dirname(directory)), os.path.basename(directory))

  @property
  def directory(self) -> str:
    return os.path.join(self.root, SWEEPS_DIR, self.sweep_hash)

  @property
  def record_file(self) -> str:
    return os.path.join(self.directory, SWEEP_FILE)

  def experiment(self, experiment_hash: str) -> ExperimentLayout:
    return ExperimentLayout(self.root, experiment_hash)


@dataclasses.dataclass(frozen=True)
class BranchFiles:
  """The files of one trained branch."""
  directory: str

  def _path(self, name: str) -> str:
    return os.path.join(self.directory, name)

  mask = property(lambda self: self._path("mask.npz"))
  start_weights = property(lambda self: self._path("start_weights.npz"))
  final_weights = property(lambda self: self._path("final_weights.npz"))
  checkpoint = property(lambda self: self._path("checkpoint.npz"))
  curve_json = property(lambda self: self._path("curve.json"))
  curve_csv = property(lambda self: self._path("curve.csv"))
  metrics = property(lambda self: self._path("metrics.json"))
  tensorboard = property(lambda self: self._path("tensorboard"))
  error = property(lambda self: self._path("error.json"))

  def is_finished(self) -> bool:
    """A branch is finished once its metrics exist: they are written last."""
    return os.path.exists(self.metrics)


@dataclasses.dataclass(frozen=True)
class StabilityFiles:
  """`stability/replicate_<seed>/level_<L>/<branch>/`: `copy_<c>/` (the files of a trained
  branch) for each copy, and `path.json` (the evaluated linear path between them)."""
  directory: str

  def copy(self, index: int) -> BranchFiles:
    return BranchFiles(os.path.join(self.directory, f"copy_{index}"))

  path = property(lambda self: os.path.join(self.directory, "path.json"))
