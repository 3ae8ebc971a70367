"""The checks of a config before anything runs: ranges, consistency, choices (asked of the
registries that own them), the rewind sweep's policy, and the settings of `lth tune` and
`lth stability`. Each refusal is a one-line `ConfigError`.
"""
import dataclasses
import math
import numbers
from typing import Tuple

from lth_tf import branches, mechanism
from lth_tf import options as plugin_options
from lth_tf.config import ExperimentConfig
from lth_tf.settings import StabilityConfig, TuningConfig
from lth_tf.config_codec import check_types, with_rewind_iteration
from lth_tf.data.modality import MODALITIES as MODALITY_REGISTRY
from lth_tf.errors import ConfigError
from lth_tf.executors import EXECUTORS
from lth_tf.models import check_dropout
from lth_tf.pruning.kinds import GLOBAL_SETS
from lth_tf.training.optimizers import OPTIMIZERS

LR_SCHEDULES = ("constant", "step")
SCOPES = ("layerwise", "global")
MODALITIES = ("auto",) + tuple(MODALITY_REGISTRY.names())
INIT_SCOPES = ("global", "layerwise", "scope")
MODES = ("iterative", "one_shot")
REWIND_OPTIMIZER = ("restore", "fresh")  # PruningConfig.rewind_optimizer, TicketSearch
ENGINES = ("auto", "manual")
MIXED_PRECISION = ("none", "mixed_float16", "mixed_bfloat16")


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise ConfigError(message)


def _check_choice(value: str, choices, name: str) -> None:
  _check(value in choices, f"{name} must be one of {', '.join(choices)}; got {value!r}")


# Seeds reach NumPy, Keras and TensorFlow generators; every one takes [0, 2**31).
MAX_SEED = 2 ** 31 - 1
# Sizes allocated from a setting: an image side resized to, points on a stability path.
MAX_IMAGE_SIDE, MAX_PATH_POINTS = 4096, 1000


def _check_finite(*parts) -> None:
  """Every float field is a finite number (a flag accepts `inf` and `nan`)."""
  for part in parts:
    for field in dataclasses.fields(part):
      value = getattr(part, field.name)
      if isinstance(value, float):
        _check(math.isfinite(value), f"{field.name} must be a finite number; got {value}")


def _check_seed(seed: int, name: str) -> None:
  _check(0 <= seed <= MAX_SEED, f"{name} must be in [0, {MAX_SEED}]; got {seed}")


def validate(config: ExperimentConfig) -> ExperimentConfig:
  """Checks ranges and consistency; raises `ConfigError` with a one-line message."""
  d, t, p, r = config.dataset, config.training, config.pruning, config.runtime
  for part in (d, config.model, t, p, r):
    check_types(part)
  _check_finite(d, config.model, t, p, r)
  _check(d.validation_size > 0,
         f"validation_size must be > 0 (early stopping needs it); got {d.validation_size}")
  _check(d.train_examples >= 0, f"train_examples must be >= 0; got {d.train_examples}")
  _check(d.train_examples_per_class >= 0,
         f"train_examples_per_class must be >= 0; got {d.train_examples_per_class}")
  _check(not (d.train_examples and d.train_examples_per_class),
         "give train_examples or train_examples_per_class, not both")
  _check_choice(d.modality, MODALITIES, "modality")
  _check(not d.image_size or (len(d.image_size) == 2 and 0 < min(d.image_size)
                              and max(d.image_size) <= MAX_IMAGE_SIDE),
         f"image_size must be empty or (height, width) in [1, {MAX_IMAGE_SIDE}]; got "
         f"{list(d.image_size)}")
  check_dropout(config.model)
  frameworks = mechanism.names()
  _check(config.model.framework in ("",) + frameworks,
         f"framework must be one of {', '.join(frameworks)}; got {config.model.framework!r}")
  _check_choice(t.optimizer, OPTIMIZERS.names(), "optimizer")
  _check(t.learning_rate > 0, f"learning_rate must be > 0; got {t.learning_rate}")
  _check(0.0 <= t.momentum < 1.0, f"momentum must be in [0, 1); got {t.momentum}")
  _check(t.weight_decay >= 0, f"weight_decay must be >= 0; got {t.weight_decay}")
  _check(t.batch_size > 0, f"batch_size must be > 0; got {t.batch_size}")
  _check(t.iterations > 0, f"iterations must be > 0; got {t.iterations}")
  _check_choice(t.lr_schedule, LR_SCHEDULES, "lr_schedule")
  _check(all(s > 0 for s in t.lr_decay_steps), "lr_decay_steps must be positive")
  _check(list(t.lr_decay_steps) == sorted(t.lr_decay_steps), "lr_decay_steps must be increasing")
  _check(0.0 < t.lr_decay_factor <= 1.0, f"lr_decay_factor must be in (0, 1]; got {t.lr_decay_factor}")
  _check(t.warmup_iterations >= 0, f"warmup_iterations must be >= 0; got {t.warmup_iterations}")
  _check(t.eval_every > 0, f"eval_every must be > 0; got {t.eval_every}")
  _check_choice(t.mixed_precision, MIXED_PRECISION, "mixed_precision")
  for name in ("conv_rate", "fc_rate", "output_rate", "global_rate"):
    rate = getattr(p, name)
    _check(0.0 <= rate < 1.0, f"{name} must be in [0, 1); got {rate}")
  _check_choice(p.scope, SCOPES, "scope")
  _check_choice(p.global_layers, tuple(GLOBAL_SETS), "global_layers")
  _check_choice(p.init_scope, INIT_SCOPES, "init_scope")
  _check(p.score_iterations >= 0, f"score_iterations must be >= 0; got {p.score_iterations}")
  _check(p.score_examples >= 0, f"score_examples must be >= 0; got {p.score_examples}")
  _check_choice(p.mode, MODES, "mode")
  _check_choice(p.rewind_optimizer, REWIND_OPTIMIZER, "rewind_optimizer")
  _check_choice(r.engine, ENGINES, "engine")
  for name in p.branches:
    _check(name not in branches.RETIRED, f"branches: {name!r} {branches.RETIRED.get(name)}")
    _check(name in branches.listable("find"),
           f"branches: {name!r} is not a branch --branches can add (those: "
           f"{', '.join(branches.listable('find')) or 'none registered'}; reinit and random_prune "
           "have their own flags)")
  _check(len(set(p.branches)) == len(p.branches), f"branches names one twice: {list(p.branches)}")
  _check(p.levels >= 0, f"levels must be >= 0; got {p.levels}")
  _check(0.0 <= p.early_bird_threshold <= 1.0,
         f"early_bird_threshold must be in [0, 1] (0: off); got {p.early_bird_threshold}")
  _check(p.options == plugin_options.normal("pruning", p.options),
         f"options must be (name, value) pairs of declared options, sorted, none at its default; "
         f"got {list(p.options)}")
  for name, value in p.options:  # each as the strategy that declares it parses it
    plugin_options.declared("pruning")[name].parse(value)
  _check(p.early_bird_window >= 1, f"early_bird_window must be >= 1; got {p.early_bird_window}")
  _check(p.early_bird_threshold == 0 or p.levels >= 1,
         "early_bird_threshold draws level 1's mask during the dense training; it needs "
         "--levels >= 1")
  _check(0 <= p.rewind_iteration < t.iterations,
         f"rewind_iteration must be in [0, iterations={t.iterations}); got {p.rewind_iteration}")
  _check(len(r.seeds) > 0, "at least one seed is needed")
  _check(len(set(r.seeds)) == len(r.seeds), "seeds must be distinct")
  for seed in r.seeds:
    _check_seed(seed, "seeds")
  _check_seed(d.split_seed, "split_seed")
  _check(r.eval_batch_size > 0, f"eval_batch_size must be > 0; got {r.eval_batch_size}")
  _check(r.logical_devices >= 0, f"logical_devices must be >= 0; got {r.logical_devices}")
  _check_choice(r.executor, EXECUTORS.names(), "executor")
  _check(r.cpus_per_task > 0, f"cpus_per_task must be > 0; got {r.cpus_per_task}")
  _check(r.gpus_per_task >= 0, f"gpus_per_task must be >= 0; got {r.gpus_per_task}")
  _check(r.executor == "local" or r.strategy in ("default", "one_device",
                                                 "multi_worker_mirrored"),
         f"--executor={r.executor} trains each task on one device, or across Ray actors with "
         f"--strategy=multi_worker_mirrored; it cannot be combined with --strategy={r.strategy}")
  _check(r.training_workers >= 1, f"training_workers must be >= 1; got {r.training_workers}")
  if r.executor == "ray" and r.strategy == "multi_worker_mirrored":
    replicas = r.training_workers * max(1, int(r.gpus_per_task))
    _check(t.batch_size % replicas == 0,
           f"batch_size {t.batch_size} is not divisible by the {replicas} replicas of "
           f"--training_workers={r.training_workers} (each replica takes batch_size / "
           f"{replicas} examples)")
  _check(r.dense_shards >= 1, f"dense_shards must be >= 1; got {r.dense_shards}")
  _check(r.dense_shards == 1 or r.strategy in ("default", "one_device"),
         f"--dense_shards splits one device's step across its cores; it cannot be combined "
         f"with --strategy={r.strategy}")
  for name in ("intra_op_threads", "inter_op_threads"):
    _check(getattr(r, name) >= 0, f"{name} must be >= 0 (0: TensorFlow's default); got "
           f"{getattr(r, name)}")
  return config


def validate_sweep(config: ExperimentConfig, rewind_iterations) -> Tuple[int, ...]:
  """Checks a rewind sweep (one experiment per k of `rewind_iterations` sharing level 0, the
  dense training) before anything is trained; returns its k's in increasing order.

  Level 0 is shared only where it does not depend on k: its initialisation and data order are
  functions of the seed, and k only marks where θk is captured. Refused: an early-bird
  threshold (the dense training ends at the first draw at or after k), a saved ticket (level
  0 starts from its weights at k), and no pruned level (every k would be the same dense run);
  also multi-worker strategies (the sweep shares level 0 in one process, on one machine's
  files).

  Raises:
    ConfigError: a k that is no integer, outside [0, iterations) or given twice, or one of
      the settings above; or whatever `validate` refuses in `config`.
  """
  ks = tuple(rewind_iterations)
  iterations = config.training.iterations
  _check(len(ks) > 0, "a rewind sweep needs at least one rewind_iteration")
  for k in ks:
    _check(isinstance(k, numbers.Integral) and not isinstance(k, bool),
           f"rewind_iteration values must be integers; got {k!r}")
    _check(0 <= k < iterations,
           f"rewind_iteration must be in [0, iterations={iterations}); got {k}")
  ks = tuple(int(k) for k in ks)
  _check(len(set(ks)) == len(ks), f"rewind_iteration names a k twice: {list(ks)}")
  ks = tuple(sorted(ks))
  validate(with_rewind_iteration(config, ks[0]))
  p, r = config.pruning, config.runtime
  if len(ks) > 1:
    _check(p.levels >= 1, "a rewind sweep needs --levels >= 1: k is where the pruned levels "
           "rewind to, and level 0 is the same dense training for every k")
    _check(p.early_bird_threshold == 0,
           "--early_bird_threshold ends the dense training at the first draw at or after k, "
           "so level 0 depends on k and a rewind sweep cannot share it; run one k at a time")
    _check(not (p.ticket_sha256 or r.ticket),
           "--ticket starts level 0 from the ticket's weights at k, so level 0 depends on k "
           "and a rewind sweep cannot share it; run one k at a time")
    _check(r.strategy != "multi_worker_mirrored",
           "a rewind sweep copies level 0 between experiment directories on one machine; "
           "run one k at a time with --strategy=multi_worker_mirrored")
  return ks


def validate_tuning(tuning: TuningConfig) -> TuningConfig:
  """Checks the ranges of a tuning config (the tuner name is checked by its registry)."""
  _check_finite(tuning)
  _check_seed(tuning.tuner_seed, "tuner_seed")
  _check(tuning.max_trials >= 1, f"max_trials must be >= 1; got {tuning.max_trials}")
  _check(0.0 < tuning.target_weights_remaining <= 1.0,
         f"target_weights_remaining must be in (0, 1]; got {tuning.target_weights_remaining}")
  _check(tuning.max_levels >= 0, f"max_levels must be >= 0; got {tuning.max_levels}")
  _check(0.0 <= tuning.rewind_fraction < 1.0,
         f"rewind_fraction must be in [0, 1); got {tuning.rewind_fraction}")
  _check(0.0 <= tuning.warmup_fraction <= 1.0,
         f"warmup_fraction must be in [0, 1]; got {tuning.warmup_fraction}")
  _check(tuning.learning_rate_factor >= 1.0,
         f"learning_rate_factor must be >= 1; got {tuning.learning_rate_factor}")
  _check(0.0 < tuning.pruning_rate_min <= tuning.pruning_rate_max < 1.0,
         "pruning rates need 0 < pruning_rate_min <= pruning_rate_max < 1; got "
         f"{tuning.pruning_rate_min}, {tuning.pruning_rate_max}")
  _check(tuning.hyperband_budget >= 2, f"hyperband_budget must be >= 2; got {tuning.hyperband_budget}")
  _check(bool(tuning.tune_dir), "tune_dir must not be empty")
  return tuning


def validate_stability(stability: StabilityConfig) -> StabilityConfig:
  """Checks the ranges of a stability config (names are checked against the experiment)."""
  _check(1 <= stability.points <= MAX_PATH_POINTS,
         f"stability_points must be >= 1 and at most {MAX_PATH_POINTS}; got {stability.points}")
  _check(stability.train_examples >= 1,
         f"stability_train_examples must be >= 1; got {stability.train_examples}")
  _check(stability.normalisation_batches >= 1, "stability_normalisation_batches must be >= 1; "
         f"got {stability.normalisation_batches}")
  _check(bool(stability.branches), "stability_branches must name at least one branch")
  _check(all(level >= 0 for level in stability.levels),
         f"stability_levels must be >= 0; got {list(stability.levels)}")
  return stability
