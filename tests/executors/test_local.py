"""The local executor, the default: it imports no Ray, and bad executor settings are refused in
one line before anything runs."""
import sys

import pytest

import launcher
from lth_tf.config import ExperimentConfig, RuntimeConfig, TrainingConfig
from lth_tf.errors import ConfigError
from lth_tf.validation import validate

_FIND = """
import sys
from lth_tf.config import *
from lth_tf.lottery import LotteryExperiment
config = ExperimentConfig(
    dataset=DatasetConfig(name="synthetic", validation_size=100),
    training=TrainingConfig(iterations=2, eval_every=2, batch_size=50),
    pruning=PruningConfig(levels=0),
    runtime=RuntimeConfig(root_dir=sys.argv[1], data_dir=sys.argv[1], progress=False))
LotteryExperiment(config, log=lambda line: None).run()
print(sorted(name for name in sys.modules if name == "ray" or name.startswith("ray.")))
"""


def test_a_local_find_imports_no_ray(tmp_path):
  # The test launcher's process has imported TensorFlow, tf_keras and tfmot only (no Ray).
  result = launcher.run([sys.executable, "-c", _FIND, str(tmp_path)], capture_output=True,
                        text=True)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().splitlines()[-1] == "[]"
  assert list(tmp_path.glob("*/replicate_0/level_0/ticket/metrics.json"))


@pytest.mark.parametrize("runtime, message", [
    (dict(executor="slurm"), "executor must be one of local, ray; got 'slurm'"),
    (dict(executor="ray", cpus_per_task=0.0), "cpus_per_task must be > 0"),
    (dict(executor="ray", gpus_per_task=-1.0), "gpus_per_task must be >= 0"),
    (dict(executor="ray", strategy="mirrored"),
     "--executor=ray trains each task on one device, or across Ray actors with "
     "--strategy=multi_worker_mirrored; it cannot be combined with --strategy=mirrored"),
    (dict(executor="ray", strategy="multi_worker_mirrored", training_workers=0),
     "training_workers must be >= 1; got 0"),
    (dict(executor="ray", strategy="multi_worker_mirrored", training_workers=7),
     "batch_size 60 is not divisible by the 7 replicas of --training_workers=7"),
])
def test_bad_executor_settings_are_one_line(runtime, message):
  with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
    validate(ExperimentConfig(training=TrainingConfig(batch_size=60),
                              runtime=RuntimeConfig(**runtime)))


def _small(tmp_path, **runtime):
  from lth_tf.config import DatasetConfig, PruningConfig
  return ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=100),
      training=TrainingConfig(iterations=2, eval_every=2, batch_size=50),
      pruning=PruningConfig(levels=1, fc_rate=0.5),
      runtime=RuntimeConfig(root_dir=str(tmp_path / "runs"), data_dir=str(tmp_path),
                            progress=False, **runtime))


def test_a_tf_config_beside_the_ray_executor_s_workers_is_one_line_before_anything_is_written(
    tmp_path, monkeypatch):
  """The ray executor sets the TF_CONFIG of a multi-worker training's workers itself: one in
  the command's environment would make the command a worker of another cluster."""
  pytest.importorskip("ray")
  from lth_tf.errors import UserError
  from lth_tf.lottery import LotteryExperiment
  monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, '
                     '"task": {"type": "worker", "index": 0}}')
  with pytest.raises(UserError, match="sets their TF_CONFIG itself; unset TF_CONFIG"):
    LotteryExperiment(_small(tmp_path, executor="ray", strategy="multi_worker_mirrored"),
                      log=lambda line: None).run()
  assert not (tmp_path / "runs").exists()


def test_the_ray_executor_without_ray_is_one_line_before_anything_is_written(tmp_path,
                                                                            monkeypatch):
  from lth_tf.errors import UserError
  from lth_tf.lottery import LotteryExperiment
  monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as where it is missing
  config = _small(tmp_path, executor="ray")
  with pytest.raises(UserError, match=r"--executor=ray needs Ray: pip install 'lth_tf\[ray\]'"):
    LotteryExperiment(config, log=lambda line: None).run()
  assert not (tmp_path / "runs").exists()
