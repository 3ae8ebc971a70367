"""Config: hashing is stable and ignores runtime fields; validation rejects bad values."""
import dataclasses

import pytest

from lth_tf import config as c
from lth_tf import settings
from lth_tf import validation as v
from lth_tf.errors import ConfigError

# Pinned: changing these breaks the link between old runs and their directories.
CONV4 = c.ExperimentConfig(
    dataset=c.DatasetConfig(name="cifar10"),
    model=c.ModelConfig(name="conv4"),
    training=c.TrainingConfig(learning_rate=3e-4, iterations=25000),
    pruning=c.PruningConfig(conv_rate=0.1, levels=20, reinit=True))
RESNET = c.ExperimentConfig(
    dataset=c.DatasetConfig(name="cifar10"),
    model=c.ModelConfig(name="resnet20"),
    training=c.TrainingConfig(optimizer="sgd", learning_rate=0.03, warmup_iterations=20000,
                              lr_schedule="step", lr_decay_steps=(20000, 25000), batch_size=128),
    pruning=c.PruningConfig(scope="global", levels=10))


@pytest.mark.parametrize("config,expected", [
    (c.ExperimentConfig(), "ec75416aa5cf"), (CONV4, "67aae201ff21"), (RESNET, "36b03580bf93")])
def test_pinned_hashes(config, expected):
  assert config.experiment_hash() == expected


def test_runtime_fields_do_not_change_the_hash():
  base = c.ExperimentConfig()
  other = base.replace(runtime=c.RuntimeConfig(root_dir="/elsewhere", data_dir="x", seeds=(1, 2),
                                               strategy="mirrored", progress=False))
  assert base.experiment_hash() == other.experiment_hash()


@pytest.mark.parametrize("part,field,value", [
    ("dataset", "name", "cifar10"), ("model", "dropout", 0.5), ("training", "iterations", 10),
    ("pruning", "rewind_iteration", 100), ("pruning", "reinit", True)])
def test_scientific_fields_change_the_hash(part, field, value):
  base = c.ExperimentConfig()
  changed = base.replace(**{part: dataclasses.replace(getattr(base, part), **{field: value})})
  assert changed.experiment_hash() != base.experiment_hash()


def test_explicit_default_equals_implicit_default():
  explicit = c.ExperimentConfig(training=c.TrainingConfig(batch_size=60))
  assert explicit.experiment_hash() == c.ExperimentConfig().experiment_hash()


def test_round_trip_through_dict():
  config = CONV4.replace(dataset=c.DatasetConfig(classes=(1, 2)))
  assert c.ExperimentConfig.from_dict(config.to_dict()) == config


def test_from_dict_drops_the_retired_runtime_settings_of_older_directories():
  old = c.ExperimentConfig().to_dict()
  old["runtime"].update(batch_variants=True, variant_groups=2)
  assert c.ExperimentConfig.from_dict(old) == c.ExperimentConfig()
  with pytest.raises(ConfigError, match="unknown TrainingConfig fields: batch_variants"):
    c.ExperimentConfig.from_dict({"training": {"batch_variants": True}})


@pytest.mark.parametrize("part, field, value, message", [
    ("training", "iterations", 100.0, r"iterations must be an integer; got 100\.0 \(float\)"),
    ("training", "iterations", "100", r"iterations must be an integer; got '100' \(str\)"),
    ("training", "learning_rate", True, r"learning_rate must be a number; got True \(bool\)"),
    ("pruning", "reinit", 1, r"reinit must be true or false; got 1 \(int\)"),
    ("dataset", "classes", [1, 2.5], r"classes must be a list of an integer"),
    ("runtime", "seeds", 0, r"seeds must be a list of an integer; got 0"),
    ("model", "name", 5, r"name must be a string"),
])
def test_a_field_of_the_wrong_type_is_refused_in_one_line(part, field, value, message):
  """A hand-edited `config.json` (read by every command that reads one) and a keyword of the
  Python API alike."""
  data = c.ExperimentConfig().to_dict()
  data[part][field] = value
  with pytest.raises(ConfigError, match=message):
    c.ExperimentConfig.from_dict(data)
  if not isinstance(value, list) or part != "dataset":
    built = dataclasses.replace(getattr(c.ExperimentConfig(), part), **{field: value})
    with pytest.raises(ConfigError, match=message):
      v.validate(c.ExperimentConfig().replace(**{part: built}))
  assert c.ExperimentConfig.from_dict(c.ExperimentConfig().to_dict()) == c.ExperimentConfig()


def test_from_dict_rejects_unknown_fields():
  with pytest.raises(ConfigError, match="unknown"):
    c.ExperimentConfig.from_dict({"training": {"learning_rat": 1.0}})


@pytest.mark.parametrize("part,changes,message", [
    ("pruning", {"fc_rate": 1.0}, "fc_rate"),
    ("pruning", {"conv_rate": -0.1}, "conv_rate"),
    ("pruning", {"levels": -1}, "levels"),
    ("pruning", {"rewind_iteration": 50000}, "rewind_iteration"),
    ("pruning", {"scope": "sideways"}, "scope"),
    ("training", {"batch_size": 0}, "batch_size"),
    ("training", {"iterations": 0}, "iterations"),
    ("training", {"optimizer": "adagrad"}, "optimizer"),
    ("dataset", {"validation_size": 0}, "validation_size"),
    ("model", {"dropout": 1.0}, "dropout"),
    ("runtime", {"seeds": (-1,)}, r"seeds must be in \[0, 2147483647\]; got -1"),
    ("runtime", {"seeds": (0, 2 ** 31)}, r"seeds must be in \[0, 2147483647\]; got 2147483648"),
    ("runtime", {"seeds": ()}, "at least one seed"),
    ("dataset", {"split_seed": -1}, r"split_seed must be in \[0, 2147483647\]"),
    ("dataset", {"validation_size": -5}, "validation_size must be > 0"),
    ("dataset", {"train_examples_per_class": -1}, "train_examples_per_class must be >= 0"),
    ("training", {"learning_rate": float("inf")}, "learning_rate must be a finite number; got inf"),
    ("training", {"learning_rate": float("nan")}, "learning_rate must be a finite number; got nan"),
    ("training", {"learning_rate": 0.0}, "learning_rate must be > 0"),
    ("training", {"learning_rate": -1e-3}, "learning_rate must be > 0"),
    ("training", {"weight_decay": float("inf")}, "weight_decay must be a finite number"),
    ("training", {"weight_decay": -1e-4}, "weight_decay must be >= 0"),
    ("training", {"momentum": float("nan")}, "momentum must be a finite number"),
    ("training", {"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
    ("training", {"lr_decay_factor": float("-inf")}, "lr_decay_factor must be a finite number"),
    ("training", {"warmup_iterations": -1}, "warmup_iterations must be >= 0"),
    ("training", {"eval_every": 0}, "eval_every must be > 0"),
    ("training", {"lr_decay_steps": (0,)}, "lr_decay_steps must be positive"),
    ("model", {"dropout": float("nan")}, "dropout must be a finite number"),
    ("pruning", {"global_rate": float("nan")}, "global_rate must be a finite number"),
    ("pruning", {"rewind_iteration": -1}, "rewind_iteration must be in"),
    ("runtime", {"eval_batch_size": 0}, "eval_batch_size must be > 0"),
    ("runtime", {"logical_devices": -1}, "logical_devices must be >= 0"),
    # A size allocated from a setting is bounded before anything is allocated.
    ("dataset", {"image_size": (100000, 100000)}, r"image_size must be .* in \[1, 4096\]"),
    ("dataset", {"image_size": (32, 0)}, r"image_size must be .* in \[1, 4096\]"),
])
def test_validation_errors(part, changes, message):
  base = c.ExperimentConfig()
  bad = base.replace(**{part: dataclasses.replace(getattr(base, part), **changes)})
  with pytest.raises(ConfigError, match=message):
    v.validate(bad)


@pytest.mark.parametrize("changes,message", [
    ({"max_trials": 0}, "max_trials must be >= 1"),
    ({"target_weights_remaining": float("nan")}, "target_weights_remaining must be a finite"),
    ({"target_weights_remaining": 0.0}, r"target_weights_remaining must be in \(0, 1\]"),
    ({"learning_rate_factor": float("inf")}, "learning_rate_factor must be a finite number"),
    ({"rewind_fraction": float("nan")}, "rewind_fraction must be a finite number"),
    ({"tuner_seed": -1}, r"tuner_seed must be in \[0, 2147483647\]"),
    ({"max_levels": -1}, "max_levels must be >= 0"),
    ({"hyperband_budget": 1}, "hyperband_budget must be >= 2"),
])
def test_tuning_validation_errors(changes, message):
  with pytest.raises(ConfigError, match=message):
    v.validate_tuning(dataclasses.replace(settings.TuningConfig(), **changes))


def test_valid_edge_values_are_accepted():
  base = c.ExperimentConfig()
  v.validate(base.replace(runtime=c.RuntimeConfig(seeds=(0, 2 ** 31 - 1)),
                          dataset=c.DatasetConfig(split_seed=2 ** 31 - 1)))
  v.validate_tuning(settings.TuningConfig(tuner_seed=0, target_weights_remaining=1.0))


@pytest.mark.parametrize("points", [0, 10 ** 9])
def test_stability_path_points_are_bounded(points):
  with pytest.raises(ConfigError, match=r"stability_points must be >= 1 and at most 1000"):
    v.validate_stability(settings.StabilityConfig(points=points))
