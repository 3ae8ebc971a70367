"""The Python API: the engine of `lth find` on a model function and arrays or tf.data datasets."""
import os
import shutil

import numpy as np
import pytest

from lth_tf import api, io
from lth_tf.compat import tf
from lth_tf.config import ExperimentConfig
from lth_tf.config_codec import with_fields
from lth_tf.errors import ConfigError, DataError

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "user_code")
FAST = dict(levels=1, reinit=True, fc_rate=0.5, iterations=40, eval_every=20, batch_size=50,
            validation_size=200, progress=False)


def _arrays():
  rng = np.random.default_rng(3)
  labels = rng.integers(0, 3, 900)
  images = rng.integers(0, 50, (900, 12, 12)).astype(np.uint8)
  for label in range(3):
    images[labels == label, 4 * label:4 * label + 4, :] = 250
  return images[:700], labels[:700], images[700:], labels[700:]


def test_arrays_are_stored_by_content_and_the_run_resumes(tmp_path):
  data = _arrays()
  result = api.find("lenet300_100", data, log=lambda line: None, root_dir=str(tmp_path), **FAST)
  assert [(r["level"], r["branch"]) for r in result.rows] == [
      (0, "ticket"), (1, "ticket"), (1, "reinit")]
  assert io.read_json(os.path.join(result.directory, "summary.json")) == result.rows
  assert os.path.exists(result.plot) and "level" in result.table()
  name = result.config.dataset.name
  assert name.startswith("npz:") and os.path.exists(name[4:])
  stored = io.read_arrays(name[4:])
  np.testing.assert_array_equal(stored["x_train"], data[0])
  # The same arrays: the same file and experiment, resumed without training.
  metrics = os.path.join(result.directory, "replicate_0", "level_1", "ticket", "metrics.json")
  stamp = os.path.getmtime(metrics)
  again = api.find("lenet300_100", _arrays(), log=lambda line: None, root_dir=str(tmp_path), **FAST)
  assert again.directory == result.directory and again.rows == result.rows
  assert os.path.getmtime(metrics) == stamp
  # Other arrays: another file and another experiment.
  other = list(_arrays())
  other[1] = (other[1] + 1) % 3
  assert api.dataset_name(tuple(other), str(tmp_path)) != name


def test_a_model_function_and_tf_data_datasets(tmp_path, monkeypatch):
  shutil.copy(os.path.join(HERE, "my_models.py"), tmp_path / "my_models.py")
  monkeypatch.chdir(tmp_path)
  monkeypatch.syspath_prepend(str(tmp_path))
  import my_models  # pylint: disable=import-outside-toplevel,import-error
  x_train, y_train, x_test, y_test = _arrays()
  train = tf.data.Dataset.from_tensor_slices((x_train[..., None], y_train))
  test = tf.data.Dataset.from_tensor_slices((x_test[..., None], y_test))
  result = api.find(my_models.small_cnn, (train, test), log=lambda line: None,
                    root_dir="runs", conv_rate=0.2, **FAST)
  assert result.config.model.name == "my_models:small_cnn"
  assert result.config.model.source_sha256
  assert len(result.rows) == 3
  stored = io.read_arrays(result.config.dataset.name[4:])
  np.testing.assert_array_equal(stored["x_test"][..., 0], x_test)


def test_settings_are_the_flags_of_lth_find():
  config = with_fields(ExperimentConfig(), model="conv2", pruning_strategy="random", levels=3,
                       seeds=[0, 1], root_dir="elsewhere")
  assert (config.model.name, config.pruning.strategy, config.pruning.levels,
          config.runtime.seeds, config.runtime.root_dir) == (
              "conv2", "random", 3, (0, 1), "elsewhere")
  with pytest.raises(ConfigError, match=r"unknown settings \['levles'\]"):
    with_fields(ExperimentConfig(), levles=3)


def test_bad_model_or_data_is_refused_before_anything_is_written(tmp_path):
  with pytest.raises(ConfigError, match="must be a top-level function"):
    api.find(lambda shape, classes, seed: None, _arrays(), root_dir=str(tmp_path), **FAST)
  with pytest.raises(DataError, match="the four arrays"):
    api.find("lenet300_100", (1, 2, 3), root_dir=str(tmp_path), **FAST)
  with pytest.raises(DataError, match="the train split must be a tf.data dataset"):
    api.find("lenet300_100", ([1], [2]), root_dir=str(tmp_path), **FAST)
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize("settings, message", [
    ({"iterations": 100.0}, r"iterations must be an integer; got 100\.0"),
    ({"seeds": 3}, "seeds must be a list of an integer; got 3"),
    ({"root_dir": 5, "data_dir": "elsewhere"}, "root_dir must be a string"),
    ({"levels": -1}, "levels must be >= 0"),
])
def test_a_setting_of_the_wrong_type_or_range_is_one_line_and_stores_no_arrays(tmp_path,
                                                                               settings,
                                                                               message):
  """Refused before the arrays given as data are stored under `root_dir/datasets/`."""
  settings = {**FAST, "root_dir": str(tmp_path), **settings}
  with pytest.raises(ConfigError, match=message):
    api.find("lenet300_100", _arrays(), **settings)
  assert not os.listdir(tmp_path)


def test_data_refused_after_its_arrays_were_stored_leaves_nothing_behind(tmp_path):
  """Arrays pass the settings' checks and are stored, then the data is refused (one class):
  the stored copy goes too, so a refused call leaves nothing behind."""
  x_train, y_train, x_test, y_test = _arrays()
  one_class = (x_train, np.zeros_like(y_train), x_test, np.zeros_like(y_test))
  with pytest.raises(DataError, match="1 class"):
    api.find("lenet300_100", one_class, root_dir=str(tmp_path), **FAST)
  assert not os.listdir(tmp_path)
  result = api.find("lenet300_100", _arrays(), root_dir=str(tmp_path), **dict(FAST, levels=0))
  assert os.listdir(tmp_path / "datasets")  # an experiment that ran keeps its arrays
  assert result.rows
