"""Config: hashing is stable and ignores runtime fields; validation rejects bad values."""
import dataclasses

import pytest

from lth_tf import config as c
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
    ("training", {"optimizer": "rmsprop"}, "optimizer"),
    ("dataset", {"validation_size": 0}, "validation_size"),
    ("model", {"dropout": 1.0}, "dropout"),
])
def test_validation_errors(part, changes, message):
  base = c.ExperimentConfig()
  bad = base.replace(**{part: dataclasses.replace(getattr(base, part), **changes)})
  with pytest.raises(ConfigError, match=message):
    c.validate(bad)
