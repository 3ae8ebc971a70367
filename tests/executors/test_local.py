"""The local executor, the default: it imports no Ray, and bad executor settings are refused in
one line before anything runs."""
import sys

import pytest

import launcher
from lth_tf.config import ExperimentConfig, RuntimeConfig
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
     "--executor=ray trains each task on one device; it cannot be combined with --strategy"),
])
def test_bad_executor_settings_are_one_line(runtime, message):
  with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
    validate(ExperimentConfig(runtime=RuntimeConfig(**runtime)))


def test_the_ray_executor_without_ray_is_one_line_before_anything_is_written(tmp_path,
                                                                            monkeypatch):
  from lth_tf.config import DatasetConfig, PruningConfig, TrainingConfig
  from lth_tf.errors import UserError
  from lth_tf.lottery import LotteryExperiment
  monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as where it is missing
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=100),
      training=TrainingConfig(iterations=2, eval_every=2, batch_size=50),
      pruning=PruningConfig(levels=1, fc_rate=0.5),
      runtime=RuntimeConfig(root_dir=str(tmp_path / "runs"), data_dir=str(tmp_path),
                            progress=False, executor="ray"))
  with pytest.raises(UserError, match=r"--executor=ray needs Ray: pip install 'lth_tf\[ray\]'"):
    LotteryExperiment(config, log=lambda line: None).run()
  assert not (tmp_path / "runs").exists()
