"""`lth tune`: a keras-tuner search over rewinding, learning rate, warm-up and pruning.

A trial is one short lottery experiment (the lottery engine, ticket branch only) whose pruning
runs until the target density is reached; its objective is the ticket's validation accuracy
at early stop, at the level whose weights remaining is closest to the target (mean over the
configured seeds). The hypermodel turns hyperparameters into an `ExperimentConfig` and builds
its model with the same config → model builder as every other command.

Search spaces, tuners (oracles) and their budgets are registries. keras-tuner's distributed
mode works unchanged: with `KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and
`KERASTUNER_ORACLE_PORT` set, the tuner whose id contains `chief` serves the oracle and the
others run trials; only the chief writes the results and `best.flags`.
"""
from __future__ import annotations

import csv
import dataclasses
import io as _io
import math
import os
from typing import Any, Callable, Dict, List, Optional

from lth_tf.compat import quiet_native_stderr

with quiet_native_stderr():
  import keras_tuner as kt  # noqa: E402  (it imports Keras 3, whose start-up lines are hidden)

from lth_tf import data as data_lib  # noqa: E402
from lth_tf import branches, io, models, precision, pruning
from lth_tf.config import ExperimentConfig
from lth_tf.settings import TuningConfig
from lth_tf.validation import validate, validate_tuning
from lth_tf.errors import ConfigError, TrainingDiverged
from lth_tf.lottery import BranchFiles, LotteryExperiment
from lth_tf.rundir import DATA_FILE, check_data_record, record_data
from lth_tf.registry import Registry

OBJECTIVE = "ticket_validation_accuracy"
RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
BEST_FLAGS = "best.flags"


# ---- the search space -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Param:
  """One searched hyperparameter: how it is declared, and how its value changes a config."""
  declare: Callable[[kt.HyperParameters, ExperimentConfig, TuningConfig], Any]
  apply: Callable[[ExperimentConfig, Any], ExperimentConfig]


PARAMS: Registry[Param] = Registry("tuned hyperparameter")


def _training(config: ExperimentConfig, **changes) -> ExperimentConfig:
  return config.replace(training=dataclasses.replace(config.training, **changes))


def _pruning(config: ExperimentConfig, **changes) -> ExperimentConfig:
  return config.replace(pruning=dataclasses.replace(config.pruning, **changes))


def _rewind_max(base: ExperimentConfig, tuning: TuningConfig) -> int:
  return max(0, min(int(tuning.rewind_fraction * base.training.iterations),
                    base.training.iterations - 1))


PARAMS.add("rewind_iteration", Param(
    declare=lambda hp, base, tuning: hp.Int(
        "rewind_iteration", 0, max(_rewind_max(base, tuning), 1),
        step=max(1, _rewind_max(base, tuning) // 10)),
    apply=lambda config, value: _pruning(
        config, rewind_iteration=min(int(value), config.training.iterations - 1))))

PARAMS.add("learning_rate", Param(
    declare=lambda hp, base, tuning: hp.Float(
        "learning_rate", base.training.learning_rate / tuning.learning_rate_factor,
        base.training.learning_rate * tuning.learning_rate_factor, sampling="log"),
    apply=lambda config, value: _training(config, learning_rate=float(value))))

PARAMS.add("warmup_iterations", Param(
    declare=lambda hp, base, tuning: hp.Int(
        "warmup_iterations", 0, max(1, int(tuning.warmup_fraction * base.training.iterations))),
    apply=lambda config, value: _training(config, warmup_iterations=int(value))))


def _apply_rate(config: ExperimentConfig, rate: float) -> ExperimentConfig:
  """Hidden-layer and global rates become `rate`; convolution and output keep their ratio."""
  p = config.pruning
  ratio = rate / p.fc_rate if p.fc_rate else 1.0
  return _pruning(config, fc_rate=rate, global_rate=rate, conv_rate=min(p.conv_rate * ratio, 0.99),
                  output_rate=min(p.output_rate * ratio, 0.99))


PARAMS.add("pruning_rate", Param(
    declare=lambda hp, base, tuning: hp.Float(
        "pruning_rate", tuning.pruning_rate_min, tuning.pruning_rate_max),
    apply=lambda config, value: _apply_rate(config, float(value))))

PARAMS.add("pruning_scope", Param(
    declare=lambda hp, base, tuning: hp.Choice("pruning_scope", ["layerwise", "global"]),
    apply=lambda config, value: _pruning(
        config, scope=value, global_layers="all" if value == "global" else config.pruning.global_layers)))

PARAMS.add("pruning_strategy", Param(
    declare=lambda hp, base, tuning: hp.Choice("pruning_strategy", pruning.STRATEGIES.names()),
    apply=lambda config, value: _pruning(config, strategy=value)))


def levels_for(config: ExperimentConfig, target: float, max_levels: int) -> int:
  """The rounds of pruning at the configured rate that reach the target density."""
  p = config.pruning
  rate = p.global_rate if p.scope == "global" else max(p.fc_rate, p.conv_rate)
  if target >= 1.0 or rate <= 0.0:
    return 0
  return min(max_levels, max(1, math.ceil(math.log(target) / math.log(1.0 - rate))))


class LotteryHyperModel(kt.HyperModel):
  """Hyperparameters → `ExperimentConfig` → model, through the shared model builder.

  Args:
    base: the experiment every trial starts from (the flags and flagfile of `lth tune`).
    tuning: the search settings.
    input_shape, num_classes: of the configured dataset.
  """

  def __init__(self, base: ExperimentConfig, tuning: TuningConfig, input_shape, num_classes: int):
    super().__init__(name="lottery")
    self.base = base
    self.tuning = tuning
    self.input_shape = tuple(input_shape)
    self.num_classes = num_classes

  def config_for(self, hp: kt.HyperParameters, budget_fraction: float = 1.0) -> ExperimentConfig:
    """The experiment of one trial: the searched values, enough levels, ticket branch only."""
    config = self.base
    if budget_fraction < 1.0:
      iterations = max(1, round(config.training.iterations * budget_fraction))
      config = _training(config, iterations=iterations)
    for name in self.tuning.tune_params:
      param = PARAMS.get(name)
      config = param.apply(config, param.declare(hp, self.base, self.tuning))
    config = _pruning(branches.ticket_only(config),
                      rewind_iteration=min(config.pruning.rewind_iteration,
                                           config.training.iterations - 1))
    levels = levels_for(config, self.tuning.target_weights_remaining, self.tuning.max_levels)
    return _pruning(config, levels=pruning.level_limit(config.pruning, levels))

  def build(self, hp: kt.HyperParameters):
    config = self.config_for(hp)
    with precision.policy(config.training.mixed_precision):
      return pruning.wrap_model(models.build(config.model, self.input_shape, self.num_classes, seed=0))


# ---- tuners ---------------------------------------------------------------------------------

def _objective() -> kt.Objective:
  return kt.Objective(OBJECTIVE, direction="max")


ORACLES: Registry[Callable[[TuningConfig], kt.Oracle]] = Registry("tuner")

# keras-tuner replaces a seed of 0 (falsy) by a random one; the search's seed 0 is given to it as
# this value instead, so that every seed reproduces its search.
ZERO_SEED = 2 ** 31 - 1


def oracle_seed(tuning: TuningConfig) -> int:
  """The seed keras-tuner's oracle gets for `tuning.tuner_seed`."""
  return tuning.tuner_seed or ZERO_SEED


@ORACLES.register("random")
def _random(tuning: TuningConfig) -> kt.Oracle:
  return kt.oracles.RandomSearchOracle(objective=_objective(), max_trials=tuning.max_trials,
                                       seed=oracle_seed(tuning))


@ORACLES.register("bayesian")
def _bayesian(tuning: TuningConfig) -> kt.Oracle:
  try:
    return kt.oracles.BayesianOptimizationOracle(
        objective=_objective(), max_trials=tuning.max_trials, seed=oracle_seed(tuning),
        num_initial_points=min(tuning.max_trials, 3))
  except ImportError:
    raise ConfigError("--tuner=bayesian needs scipy and scikit-learn: "
                      "pip install 'keras-tuner[bayesian]'") from None


@ORACLES.register("hyperband")
def _hyperband(tuning: TuningConfig) -> kt.Oracle:
  oracle = kt.oracles.HyperbandOracle(objective=_objective(), max_epochs=tuning.hyperband_budget,
                                      factor=2, seed=oracle_seed(tuning))
  oracle.max_trials = tuning.max_trials  # the base oracle stops creating trials at this count
  return oracle


class LotteryTuner(kt.Tuner):
  """A keras-tuner `Tuner` whose trial is a short lottery experiment.

  Args:
    hypermodel: the `LotteryHyperModel`.
    tuning: the search settings.
    oracle: the search algorithm.
    log: where each trial's progress lines go.
  """

  def __init__(self, hypermodel: LotteryHyperModel, tuning: TuningConfig, oracle: kt.Oracle,
               log: Callable[[str], None] = print):
    self.tuning = tuning
    self.log = log
    super().__init__(oracle=oracle, hypermodel=hypermodel, directory=tuning.tune_dir,
                     project_name="trials", overwrite=False)

  @property
  def experiments_dir(self) -> str:
    return os.path.join(self.tuning.tune_dir, "experiments")

  def trial_config(self, hp: kt.HyperParameters) -> ExperimentConfig:
    budget = hp.values.get("tuner/epochs")
    fraction = budget / self.tuning.hyperband_budget if budget else 1.0
    config = self.hypermodel.config_for(hp, fraction)
    return config.replace(runtime=dataclasses.replace(config.runtime, root_dir=self.experiments_dir))

  def run_trial(self, trial, *args, **kwargs) -> Dict[str, float]:
    config = self.trial_config(trial.hyperparameters)
    self.log(f"trial {trial.trial_id}: " + ", ".join(
        f"{k}={v}" for k, v in trial.hyperparameters.values.items()) + f", levels={config.pruning.levels}")
    experiment = LotteryExperiment(config, log=self.log)
    try:
      experiment.run()
    except TrainingDiverged as error:
      raise kt.errors.FailedTrialError(str(error)) from None
    return ticket_metrics(experiment, self.tuning.target_weights_remaining)


def ticket_metrics(experiment: LotteryExperiment, target: float) -> Dict[str, float]:
  """The ticket branch at the level closest to `target` (log scale), mean over replicates."""
  config = experiment.config
  found = []
  for seed in config.runtime.seeds:
    rows = []
    for level in range(config.pruning.levels + 1):
      files = BranchFiles(experiment.layout.branch_dir(seed, level, "ticket"))
      rows.append(experiment.store.read_json(files.metrics))
    found.append(min(rows, key=lambda r: (abs(math.log(r["weights_remaining"] / target)), r["level"])))
  mean = lambda key: sum(float(r[key]) for r in found) / len(found)  # noqa: E731
  return {OBJECTIVE: mean("early_stop_validation_accuracy"),
          "weights_remaining": mean("weights_remaining"),
          "level": mean("level"),
          "early_stop_test_accuracy": mean("early_stop_test_accuracy"),
          "early_stop_iteration": mean("early_stop_iteration")}


# ---- the command ----------------------------------------------------------------------------

def is_chief() -> bool:
  """The tuner that writes results: the only one, or the oracle chief of a distributed search."""
  if "KERASTUNER_ORACLE_IP" not in os.environ:
    return True
  return "chief" in os.environ.get("KERASTUNER_TUNER_ID", "")


def build_tuner(base: ExperimentConfig, tuning: TuningConfig,
                log: Callable[[str], None] = print) -> LotteryTuner:
  """Checks everything a trial would need, then builds the tuner; nothing is trained."""
  validate_tuning(tuning)
  oracle_factory = ORACLES.get(tuning.tuner)
  for name in tuning.tune_params:
    PARAMS.get(name)
  validate(base)
  data = data_lib.load(base.dataset, base.runtime.data_dir)
  # Trials already in tune_dir were trained on the recorded data; new ones must not mix in other.
  check_data_record(os.path.join(tuning.tune_dir, DATA_FILE), data, tuning.tune_dir, "tune_dir")
  hypermodel = LotteryHyperModel(base, tuning, data.input_shape, data.num_classes)
  # The first trial's experiment, checked the way `lth find` checks it (nothing is written).
  first = hypermodel.config_for(kt.HyperParameters())
  LotteryExperiment(first.replace(runtime=dataclasses.replace(
      first.runtime, root_dir=os.path.join(tuning.tune_dir, "experiments"))), log=log)
  return LotteryTuner(hypermodel, tuning, oracle_factory(tuning), log=log)


def ranked(tuner: LotteryTuner) -> List[Dict[str, Any]]:
  """Every completed trial, best first (ties in trial order): its hyperparameters and metrics."""
  trials = sorted(tuner.oracle.get_best_trials(num_trials=10 ** 6),
                  key=lambda t: (-t.metrics.get_best_value(OBJECTIVE), int(t.trial_id)))
  rows = []
  for rank, trial in enumerate(trials, start=1):
    row = {"rank": rank, "trial": trial.trial_id}
    for name in ("ticket_validation_accuracy", "weights_remaining", "level",
                 "early_stop_test_accuracy", "early_stop_iteration"):
      metric = trial.metrics.get_best_value(name) if trial.metrics.exists(name) else None
      row[name] = metric
    row.update({k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")})
    if "tuner/epochs" in trial.hyperparameters.values:
      row["budget"] = trial.hyperparameters.values["tuner/epochs"]
    rows.append(row)
  return rows


def table(rows: List[Dict[str, Any]]) -> str:
  """A markdown table of ranked trials."""
  if not rows:
    return "no completed trials"
  keys = list(dict.fromkeys(k for row in rows for k in row))

  def cell(value):
    if isinstance(value, float):
      return f"{value:.4g}"
    return "" if value is None else str(value)

  lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
  lines += ["| " + " | ".join(cell(row.get(k)) for k in keys) + " |" for row in rows]
  return "\n".join(lines)


def write_results(tuner: LotteryTuner, rows: List[Dict[str, Any]], flags_for) -> Dict[str, str]:
  """`results.md`, `results.csv` and `best.flags` (the best trial's experiment) in `tune_dir`."""
  directory = tuner.tuning.tune_dir
  written = {}
  keys = list(dict.fromkeys(k for row in rows for k in row))
  buffer = _io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=keys)
  writer.writeheader()
  writer.writerows(rows)
  written[RESULTS_CSV] = os.path.join(directory, RESULTS_CSV)
  io.write_text(written[RESULTS_CSV], buffer.getvalue())
  target = tuner.tuning.target_weights_remaining
  written[RESULTS_MD] = os.path.join(directory, RESULTS_MD)
  io.write_text(written[RESULTS_MD], f"# lth tune: {tuner.tuning.tuner} search\n\nObjective: ticket "
                f"validation accuracy at early stop, at the level closest to {100 * target:.2f}% "
                f"weights remaining.\n\n{table(rows)}\n")
  if rows:
    best = tuner.oracle.get_trial(rows[0]["trial"])
    config = tuner.hypermodel.config_for(best.hyperparameters)
    written[BEST_FLAGS] = os.path.join(directory, BEST_FLAGS)
    io.write_text(written[BEST_FLAGS], f"# lth tune: best of {len(rows)} trials, "
                  f"{OBJECTIVE}={rows[0][OBJECTIVE]}\n" + flags_for(config))
  return written


def run(base: ExperimentConfig, tuning: TuningConfig, flags_for: Callable[[ExperimentConfig], str],
        log: Callable[[str], None] = print) -> Optional[Dict[str, Any]]:
  """Runs (or resumes) the search; on the chief, writes and returns the results."""
  tuner = build_tuner(base, tuning, log=log)
  if is_chief():
    record_data(os.path.join(tuning.tune_dir, DATA_FILE),
                data_lib.load(base.dataset, base.runtime.data_dir), tuning.tune_dir, "tune_dir")
  tuner.search()
  if not is_chief():
    return None
  rows = ranked(tuner)
  return {"rows": rows, "written": write_results(tuner, rows, flags_for)}
