"""Your own model (`package.module:function`) and dataset (`py:package.module:function`): built,
pruned where tfmot says, pinned to their modules' content, and refused in one line when broken."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import launcher
from conftest import user_modules
from lth_tf import api, io, models, pruning, tickets, user_code
from lth_tf.config import (DatasetConfig, ExperimentConfig, ModelConfig, PruningConfig,
                           RuntimeConfig, TrainingConfig)
from lth_tf.errors import ConfigError, UserError
from lth_tf.lottery import BranchFiles, LotteryExperiment
from lth_tf.report import report
from lth_tf.training import get_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "tests", "user_code")


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
  """A directory outside the package holding the user's modules, as the current directory."""
  return user_modules(tmp_path, monkeypatch, HERE, ("my_models.py", "my_data.py"))


def _config(root, model="my_models:small_cnn", dataset="synthetic", **pruning_fields):
  fields = dict(levels=2, conv_rate=0.2, fc_rate=0.5, reinit=True)
  fields.update(pruning_fields)
  return ExperimentConfig(
      dataset=DatasetConfig(name=dataset, validation_size=200),
      model=ModelConfig(name=model),
      training=TrainingConfig(iterations=40, eval_every=20, batch_size=50),
      pruning=PruningConfig(**fields),
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False))


def test_a_user_model_is_pruned_where_tfmot_says_and_pinned_to_its_source(user_dir):
  experiment = LotteryExperiment(_config(user_dir / "runs"), log=lambda line: None)
  digest = user_code.digest("my_models:small_cnn", "model")
  assert experiment.config.model.source_sha256 == digest
  rows = experiment.run()
  assert [(r["level"], r["branch"]) for r in rows] == [
      (0, "ticket"), (1, "ticket"), (1, "reinit"), (2, "ticket"), (2, "reinit")]
  mask = pruning.Mask.from_dict(io.read_arrays(
      BranchFiles(experiment.layout.branch_dir(0, 2, "ticket")).mask))
  # The convolution, the custom PrunableLayer's kernel (not its scale) and the output layer;
  # batch norm stays dense.
  assert sorted(mask) == ["conv1/kernel", "fc1/kernel", "output/kernel"]
  densities = mask.layer_densities()
  assert densities["conv1/kernel"] == pytest.approx(0.8 ** 2, abs=0.01)
  assert densities["fc1/kernel"] == pytest.approx(0.25, abs=0.01)
  final = io.read_arrays(BranchFiles(experiment.layout.branch_dir(0, 2, "ticket")).final_weights)
  assert "bn1/moving_mean" in final and "fc1/scale" in final
  assert np.all(final["fc1/kernel"][~mask["fc1/kernel"]] == 0)
  recorded = io.read_json(experiment.layout.config_file)
  assert recorded["model"]["source_sha256"] == digest
  # The same module again: the same experiment, resumed (nothing retrained).
  again = LotteryExperiment(_config(user_dir / "runs"), log=lambda line: None)
  assert again.layout.directory == experiment.layout.directory and again.run() == rows
  # An edited model function is a new experiment.
  with open(user_dir / "my_models.py", "a") as handle:
    handle.write("\n# edited\n")
  edited = LotteryExperiment(_config(user_dir / "runs"), log=lambda line: None)
  assert edited.layout.experiment_hash != experiment.layout.experiment_hash


def test_registered_names_keep_their_hashes():
  # No source digest for built-in names: the hash of every existing preset is unchanged.
  config = ExperimentConfig()
  assert user_code.pin_sources(config) == config


@pytest.mark.parametrize("model,message", [
    ("no_such_module:build", "no module named 'no_such_module'"),
    ("my_models:no_such_function", "has no 'no_such_function'"),
    ("my_models:keras", "not a function"),
])
def test_a_broken_user_model_is_one_line_before_anything_is_written(user_dir, model, message):
  with pytest.raises(ConfigError, match=message):
    LotteryExperiment(_config(user_dir / "runs", model=model), log=lambda line: None)
  assert not (user_dir / "runs").exists()


def test_a_recorded_digest_that_the_module_no_longer_has_is_refused(user_dir):
  config = _config(user_dir / "runs")
  config = config.replace(model=dataclasses.replace(config.model, source_sha256="0" * 64))
  with pytest.raises(ConfigError, match="its module changed since it was recorded"):
    LotteryExperiment(config, log=lambda line: None)
  with pytest.raises(ConfigError, match="model_sha256 is set but model 'lenet300_100'"):
    user_code.pin_sources(ExperimentConfig(model=ModelConfig(source_sha256="ab")))


def test_a_user_model_that_returns_the_wrong_thing_is_refused(user_dir):
  (user_dir / "bad_models.py").write_text(
      "import tf_keras as keras\n"
      "def three_outputs(input_shape, num_classes, seed):\n"
      "  inputs = keras.Input(input_shape)\n"
      "  return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))\n"
      "def not_a_model(input_shape, num_classes, seed):\n"
      "  return 42\n"
      "def slash(input_shape, num_classes, seed):\n"
      "  inputs = keras.Input(input_shape)\n"
      "  hidden = keras.layers.Dense(8, name='a/b')(keras.layers.Flatten()(inputs))\n"
      "  return keras.Model(inputs, keras.layers.Dense(num_classes)(hidden))\n"
      "raise_at_import = False\n")
  with pytest.raises(ConfigError, match="must return one output of 10 logits"):
    LotteryExperiment(_config(user_dir / "runs", model="bad_models:three_outputs"))
  with pytest.raises(ConfigError, match="returned int, not a Keras model"):
    LotteryExperiment(_config(user_dir / "runs", model="bad_models:not_a_model"))
  # Weight names are layer paths joined by '/': a layer named a/b would be read as b inside a
  # (it ended in a KeyError after config.json was written).
  with pytest.raises(ConfigError, match="layer name 'a/b' holds '/'.*rename the layer"):
    LotteryExperiment(_config(user_dir / "runs", model="bad_models:slash"))
  (user_dir / "raising.py").write_text("raise RuntimeError('broken on purpose')\n"
                                       "def build(a, b, c):\n  pass\n")
  with pytest.raises(ConfigError, match="importing 'raising' failed: RuntimeError: broken on"):
    LotteryExperiment(_config(user_dir / "runs", model="raising:build"))
  assert not (user_dir / "runs").exists()


def test_a_user_model_builds_the_same_weights_for_the_same_seed(user_dir):
  config = ModelConfig(name="my_models:small_cnn")
  first, again, other = (get_weights(models.build(config, (16, 16, 1), 4, seed))
                         for seed in (3, 3, 4))
  assert all(np.array_equal(first[n], again[n]) for n in first)
  assert not np.array_equal(first["conv1/kernel"], other["conv1/kernel"])


def _lth(cwd, *args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
  return launcher.run([sys.executable, "-m", "lth_tf.cli", *args], capture_output=True,
                      text=True, env=env, cwd=cwd)


def test_your_model_and_data_from_the_command_line_through_report_ticket_and_export(user_dir,
                                                                                   monkeypatch):
  found = _lth(user_dir, "find", "--model=my_models:small_cnn", "--dataset=py:my_data:load",
               "--levels=2", "--reinit", "--conv_rate=0.2", "--fc_rate=0.5",
               "--iterations=60", "--eval_every=30", "--batch_size=50", "--validation_size=200",
               "--root_dir=runs", "--data_dir=.", "--progress=false")
  assert found.returncode == 0, found.stderr
  (directory,) = [p for p in (user_dir / "runs").iterdir() if p.is_dir()]
  summary = json.loads((directory / "summary.json").read_text())
  assert [(r["level"], r["branch"]) for r in summary] == [
      (0, "ticket"), (1, "ticket"), (1, "reinit"), (2, "ticket"), (2, "reinit")]
  recorded = json.loads((directory / "config.json").read_text())
  assert recorded["dataset"]["source_sha256"] == user_code.digest("my_data:load", "dataset")
  # The Python API with the same settings is the same experiment: it finds the directory and
  # resumes it (everything is finished, so the rows come back as recorded).
  result = api.find("my_models:small_cnn", "py:my_data:load", log=lambda line: None, levels=2,
                    reinit=True, conv_rate=0.2, fc_rate=0.5, iterations=60, eval_every=30,
                    batch_size=50, validation_size=200, root_dir="runs", data_dir=".",
                    progress=False)
  assert os.path.abspath(result.directory) == str(directory) and result.rows == summary
  # `lth report` and `lth tickets save` do what these calls do (in this process: one TensorFlow
  # start-up fewer each); `lth find` and `lth export` run as real commands.
  written = report.build([str(directory)], str(user_dir / "report"))
  assert "| 2 |" in open(written["report.md"]).read()
  # The directory names user code: it runs only when the user names that code.
  monkeypatch.setattr(user_code, "_trusted", set())
  with pytest.raises(ConfigError, match="--trust_code=my_models:small_cnn,py:my_data:load"):
    tickets.save(str(directory), 0, 2, str(user_dir / "ticket"), ".")
  user_code.trust(["my_models:small_cnn", "py:my_data:load"])
  saved = tickets.save(str(directory), 0, 2, str(user_dir / "ticket"), ".")
  assert "runs code: my_models:small_cnn, py:my_data:load" in tickets.describe(
      tickets.read(saved), saved)
  refused = _lth(user_dir, "export", "--ticket=ticket", "--formats=tflite", "--out=exported",
                 "--data_dir=.", "--latency_runs=3")
  assert refused.returncode == 2 and "names code that would run: my_models:small_cnn;" in refused.stderr
  assert not os.path.exists(user_dir / "exported")
  # The ticket carries the examples export reads: exporting it runs no dataset code, so only
  # the model need be trusted, and the dataset's module need not even exist any more.
  ticket = tickets.read(saved)
  assert ticket.export_data is not None and len(ticket.export_data.calibration) == 200
  assert "export reads: the " in tickets.describe(ticket, saved)
  os.rename(user_dir / "my_data.py", user_dir / "my_data.py.gone")
  exported = _lth(user_dir, "export", "--ticket=ticket", "--formats=tflite", "--out=exported",
                  "--data_dir=.", "--latency_runs=3", "--trust_code=my_models:small_cnn")
  assert exported.returncode == 0, exported.stderr + exported.stdout
  check = json.loads((user_dir / "exported" / "check.json").read_text())
  assert check["examples_from"].endswith("test examples the ticket carries")
  assert check["examples"] == len(ticket.export_data.test_labels) and not check["failures"]
  mask = pruning.Mask.from_dict(io.read_arrays(
      str(directory / "replicate_0" / "level_2" / "ticket" / "mask.npz")))
  # The sparse TFLite model's kernels, decoded back from the file, hold exactly the mask's
  # non-zeros (the export's own check, reported per model in its table).
  (row,) = [line for line in exported.stdout.splitlines() if line.startswith("| model_none")]
  assert row.split("|")[5].strip().replace(",", "") == str(mask.num_remaining())


@pytest.mark.parametrize("body,message", [
    ("  raise OSError('disk gone')", "the function raised OSError: disk gone"),
    ("  return 1, 2", "must return the four arrays x_train, y_train, x_test, y_test"),
    ("  return np.zeros((4, 8, 8)), np.arange(4), np.zeros((2, 8, 8)), np.array([0, 9])",
     "y_test: 1 labels outside 0..3"),
    ("  return np.zeros((4, 8, 8)), np.arange(3), np.zeros((2, 8, 8)), np.arange(2)",
     "4 images but 3 labels"),
    ("  return np.full((4, 8, 8), 300.0), np.arange(4), np.zeros((2, 8, 8)), np.arange(2)",
     r"pixel values must be in \[0, 255\]"),
])
def test_a_broken_user_dataset_is_one_line_before_anything_is_written(user_dir, body, message):
  (user_dir / "bad_data.py").write_text(f"import numpy as np\ndef load():\n{body}\n")
  config = _config(user_dir / "runs", model="lenet300_100", dataset="py:bad_data:load")
  with pytest.raises(UserError, match=message):
    LotteryExperiment(config, log=lambda line: None)
  assert not (user_dir / "runs").exists()


def test_the_user_s_package_is_packed_and_imports_where_it_is_unpacked(tmp_path, monkeypatch):
  """What the ray executor sends its workers (`user_code.pack`): the top-level package of the
  module a model names, compiled files left out; unpacked on a machine that does not have it,
  the same source imports from there."""
  package = tmp_path / "home" / "labnets"
  (package / "__pycache__").mkdir(parents=True)
  (package / "__init__.py").write_text("")
  (package / "vision.py").write_text("def build(input_shape, num_classes, seed):\n  return 7\n")
  (package / "__pycache__" / "vision.cpython-311.pyc").write_bytes(b"stale")
  monkeypatch.syspath_prepend(str(tmp_path / "home"))
  config = ExperimentConfig(model=ModelConfig(name="labnets.vision:build"))
  files = user_code.pack(config)
  assert sorted(files) == ["labnets/__init__.py", "labnets/vision.py"]
  # Another machine: the home directory is not there; what arrives is.
  monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path / "home")])
  monkeypatch.setattr(user_code.tempfile, "tempdir", str(tmp_path / "elsewhere"))
  (tmp_path / "elsewhere").mkdir()
  for name in ("labnets", "labnets.vision"):
    monkeypatch.delitem(sys.modules, name, raising=False)
  user_code.unpack(files)
  user_code.unpack(files)  # a second task on the machine finds them unpacked
  build = user_code.load("labnets.vision:build", "model")
  assert build(None, None, None) == 7
  assert sys.modules["labnets.vision"].__file__.startswith(str(tmp_path / "elsewhere"))
  assert user_code.digest("labnets.vision:build", "model") == user_code._file_digest(  # pylint: disable=protected-access
      str(package / "vision.py"))
