"""The non-natural-domain transfer presets (transfer_flags/): CIFAR-10 and Fashion-MNIST tickets
to TFDS's digital-pathology sets, run end to end through `lth transfer` and the real TFDS reader
on `tfds.testing.mock_data` (no download), with the head replaced and the per-class budget."""
import json
import os
import signal
import sys

import numpy as np
import pytest

from lth_tf import cli, models, pruning, tickets
from lth_tf import data as data_lib
from lth_tf import flags as lth_flags
from lth_tf.config import DatasetConfig, ExperimentConfig, ModelConfig
from lth_tf.validation import validate
from lth_tf.errors import ConfigError, DataError
from lth_tf.training import get_weights

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRESETS_DIR = os.path.join(ROOT, "transfer_flags")
PRESETS = sorted(os.listdir(PRESETS_DIR))
TARGETS = {"colorectal_histology": 8, "patch_camelyon": 2, "malaria": 2}
SOURCES = {"cifar10": (32, 32, 3), "fashion_mnist": (28, 28, 1)}
PER_CLASS = 2


def _preset(name):
  lth_flags.define_flags()
  try:
    lth_flags.FLAGS(["x", f"--flagfile={os.path.join(PRESETS_DIR, name)}"])
    return lth_flags.config_from_flags(), lth_flags.command_part("transfer")
  finally:
    lth_flags.FLAGS.unparse_flags()


def test_every_source_and_target_has_a_preset_at_the_sources_input_size():
  assert PRESETS == sorted(f"{s}_to_{t}.flags" for s in SOURCES for t in TARGETS)
  for name in PRESETS:
    source, target = name[:-len(".flags")].split("_to_")
    config, transfer = _preset(name)
    assert transfer.target_dataset == target
    assert config.dataset.image_size == SOURCES[source][:2]
    assert config.dataset.train_examples_per_class > 0


def test_malaria_needs_an_image_size_and_is_resized_in_the_pipeline(tmp_path):
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=12):
    with pytest.raises(DataError, match="varying size.*--image_size"):
      data_lib.read_raw("malaria", str(tmp_path))
    raw = data_lib.read_raw("malaria", str(tmp_path), (20, 24))
  assert raw.x_train.shape == (12, 20, 24, 3) and raw.x_train.dtype == np.uint8
  assert raw.num_classes == 2


@pytest.fixture(scope="module")
def cifar_ticket(tmp_path_factory):
  """A ticket of CIFAR-10's input shape and classes, written directly (no search): LeNet-300-100
  at 32x32x3 with a seeded random mask keeping 30% of each layer."""
  model = pruning.wrap_model(models.build(ModelConfig("lenet300_100"), SOURCES["cifar10"], 10, 0))
  rng = np.random.default_rng(0)
  mask = pruning.Mask.from_dict({n: rng.random(shape) < 0.3
                                 for n, shape in pruning.prunable_shapes(model).items()})
  weights = get_weights(model)
  config = ExperimentConfig(dataset=DatasetConfig(name="cifar10"),
                            model=ModelConfig("lenet300_100"))
  return tickets.write(str(tmp_path_factory.mktemp("cifar_ticket") / "ticket"), mask, weights,
                       weights, config, {}, {"level": 5}, SOURCES["cifar10"], 10,
                       [0.49, 0.48, 0.45], [0.25, 0.24, 0.26])


def _lth_transfer(argv):
  """`lth transfer ARGV` through the command's entry point, in this process; its exit code."""
  lth_flags.FLAGS.unparse_flags()
  saved, handler = sys.argv, signal.getsignal(signal.SIGTERM)
  sys.argv = ["lth", "transfer", *argv]
  try:
    cli.main()
  except SystemExit as exited:
    return exited.code
  finally:  # the command's flags, argv and SIGTERM handler do not outlive it
    sys.argv = saved
    signal.signal(signal.SIGTERM, handler)
    lth_flags.FLAGS.unparse_flags()
  return 0


@pytest.mark.parametrize("name", PRESETS)
def test_preset_end_to_end_on_mock_data(name, tmp_path, cifar_ticket, capsys):
  import tensorflow_datasets as tfds
  source, target = name[:-len(".flags")].split("_to_")
  ticket = cifar_ticket if source == "cifar10" else "lenet300_fashion_mnist_level7"
  classes = TARGETS[target]
  with tfds.testing.mock_data(num_examples=40):
    code = _lth_transfer([
        f"--flagfile={os.path.join(PRESETS_DIR, name)}", f"--ticket={ticket}",
        # tiny overrides: the preset's target, image size and head stay
        "--iterations=2", "--eval_every=2", "--validation_size=8", "--batch_size=4",
        f"--train_examples_per_class={PER_CLASS}", "--eval_batch_size=64",
        f"--root_dir={tmp_path / 'runs'}", f"--data_dir={tmp_path}", "--progress=false"])
  out = capsys.readouterr()
  assert code == 0, out.err[-2000:]
  (directory,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
  config = json.loads((directory / "config.json").read_text())
  assert config["dataset"]["name"] == target
  assert tuple(config["dataset"]["image_size"]) == SOURCES[source][:2]
  description = config["transfer"]
  assert description["head_replaced"] and description["num_classes"] == classes
  assert description["train_examples"] == PER_CLASS * classes
  assert description["adapter"] == ([] if source == "cifar10" else ["rgb_to_grey"])
  summary = json.loads((directory / "summary.json").read_text())
  assert {row["branch"] for row in summary} >= {"ticket", "dense", "reinit", "random_prune"}
  mask = np.load(directory / "replicate_0" / "level_0" / "ticket" / "mask.npz")
  assert mask["output/kernel"].shape[-1] == classes


def test_image_size_must_be_height_and_width():
  with pytest.raises(ConfigError, match="image_size must be empty or"):
    validate(ExperimentConfig(dataset=DatasetConfig(image_size=(32,))))
  with pytest.raises(ConfigError, match="image_size must be empty or"):
    validate(ExperimentConfig(dataset=DatasetConfig(image_size=(0, 32))))
  assert validate(ExperimentConfig(dataset=DatasetConfig(image_size=(32, 32))))
