"""tf.distribute strategies and mixed precision: Mirrored on 2 logical CPUs equals one device,
MultiWorkerMirrored with 2 local workers writes only on the chief, the TPU path is built from
flags and fails clearly when unreachable, and mixed precision keeps masks exact."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import launcher
from lth_tf import distribute, io
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig,
                           TrainingConfig)
from lth_tf.errors import ConfigError
from lth_tf.pruning import Mask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
FIND = ["--dataset=synthetic", "--validation_size=500", "--iterations=40", "--eval_every=20",
        "--batch_size=50", "--fc_rate=0.5", "--output_rate=0.2", "--optimizer=sgd",
        "--learning_rate=0.01", "--progress=false"]


def lth(*args, env=None, timeout=120):
  return launcher.run([sys.executable, "-m", "lth_tf.cli", *args], capture_output=True,
                      text=True, env=env or ENV, cwd=ROOT, timeout=timeout)


def experiment_dir(root):
  (directory,) = [p for p in root.iterdir() if p.is_dir()]
  return directory


def arrays_by_file(directory, name):
  return {str(p.relative_to(directory)): io.read_arrays(str(p))
          for p in sorted(directory.glob(f"**/{name}"))}


# ---- Mirrored ---------------------------------------------------------------------------------

_MIRRORED_SCRIPT = """
import json, sys
from lth_tf import distribute
from lth_tf.config import *
from lth_tf.errors import UserError
from lth_tf.lottery import LotteryExperiment
replicas = {}
for name in ("default", "mirrored"):
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=40, eval_every=20, batch_size=50, optimizer="sgd",
                              learning_rate=0.01),
      pruning=PruningConfig(levels=2, fc_rate=0.5, output_rate=0.2),
      runtime=RuntimeConfig(root_dir=sys.argv[1] + "/" + name, data_dir=sys.argv[1],
                            strategy=name, logical_devices=2, progress=False))
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  replicas[name] = experiment.strategy.num_replicas_in_sync
  if name == "mirrored":
    odd = config.replace(training=TrainingConfig(iterations=40, batch_size=45),
                         runtime=RuntimeConfig(root_dir=sys.argv[1] + "/odd", strategy=name,
                                               logical_devices=2))
    try:
      LotteryExperiment(odd)
    except UserError as error:
      replicas["odd_batch_error"] = str(error)
print(json.dumps(replicas))
"""


def test_mirrored_on_two_logical_cpus_gives_the_masks_and_metrics_of_one_device(tmp_path):
  result = launcher.run([sys.executable, "-c", _MIRRORED_SCRIPT, str(tmp_path)], env=ENV,
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  replicas = json.loads(result.stdout.strip().splitlines()[-1])
  assert replicas["default"] == 1 and replicas["mirrored"] == 2
  # A global batch that does not split over the replicas is refused before anything is written.
  assert replicas["odd_batch_error"].startswith("batch_size 45 is not divisible by the 2 replicas")
  assert not (tmp_path / "odd").exists()
  one, two = experiment_dir(tmp_path / "default"), experiment_dir(tmp_path / "mirrored")
  masks_one, masks_two = arrays_by_file(one, "mask.npz"), arrays_by_file(two, "mask.npz")
  assert len(masks_one) == 3 and masks_one.keys() == masks_two.keys()
  for name in masks_one:
    assert Mask.from_dict(masks_one[name]) == Mask.from_dict(masks_two[name]), name
  summary_one = json.loads((one / "summary.json").read_text())
  summary_two = json.loads((two / "summary.json").read_text())
  assert len(summary_one) == len(summary_two) == 3
  for a, b in zip(summary_one, summary_two):
    assert a["weights_remaining"] == b["weights_remaining"]
    assert a["early_stop_iteration"] == b["early_stop_iteration"]
    assert b["min_validation_loss"] == pytest.approx(a["min_validation_loss"], rel=1e-3, abs=1e-5)
    assert b["early_stop_test_accuracy"] == pytest.approx(a["early_stop_test_accuracy"], abs=2e-3)
  weights_one = arrays_by_file(one, "final_weights.npz")
  weights_two = arrays_by_file(two, "final_weights.npz")
  for name, weights in weights_one.items():
    mask = Mask.from_dict(masks_one[name.replace("final_weights", "mask")])
    for key, value in weights.items():
      np.testing.assert_allclose(weights_two[name][key], value, rtol=1e-4, atol=1e-5)
      if key in mask:
        assert np.all(weights_two[name][key][~mask[key]] == 0.0)
  curve_one = json.loads((one / "replicate_0/level_2/ticket/curve.json").read_text())
  curve_two = json.loads((two / "replicate_0/level_2/ticket/curve.json").read_text())
  for a, b in zip(curve_one[1:], curve_two[1:]):
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)


# ---- MultiWorkerMirrored ----------------------------------------------------------------------

def test_multi_worker_mirrored_with_two_local_workers_writes_only_on_the_chief(tmp_path):
  ports = launcher.free_ports(2)
  cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
  workers = []
  try:
    for index in range(2):
      env = dict(ENV, TF_CONFIG=json.dumps({"cluster": cluster,
                                            "task": {"type": "worker", "index": index}}))
      workers.append(subprocess.Popen(
          [sys.executable, "-m", "lth_tf.cli", "find", *FIND, "--levels=2",
           "--strategy=multi_worker_mirrored", f"--root_dir={tmp_path / f'worker{index}'}",
           f"--data_dir={tmp_path}"],
          env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=150) for worker in workers]
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
        worker.wait()
  for worker, (out, err) in zip(workers, outputs):
    assert worker.returncode == 0, err
  assert "not the chief worker: nothing written" in outputs[1][0]
  assert not (tmp_path / "worker1").exists()
  chief = experiment_dir(tmp_path / "worker0")
  summary = json.loads((chief / "summary.json").read_text())
  assert [row["level"] for row in summary] == [0, 1, 2]
  assert len(list(chief.glob("**/mask.npz"))) == 3
  assert len(list(chief.glob("**/metrics.json"))) == 3
  # Both workers trained the same networks: the worker prints the chief's level table.
  table = lambda text: [line for line in text.splitlines() if "%" in line and "|" in line]  # noqa: E731
  assert table(outputs[0][0]) == table(outputs[1][0]) and len(table(outputs[0][0])) == 3


# ---- TPU --------------------------------------------------------------------------------------

def test_tpu_strategy_is_built_from_the_flags(monkeypatch):
  calls = []
  fake = {
      "resolver": lambda tpu: calls.append(("resolver", tpu)) or "resolver-of-" + tpu,
      "connect": lambda resolver: calls.append(("connect", resolver)),
      "initialize": lambda resolver: calls.append(("initialize", resolver)),
      "strategy": lambda resolver: calls.append(("strategy", resolver)) or "tpu-strategy",
  }
  monkeypatch.setattr(distribute, "TPU_API", fake)
  monkeypatch.setattr(distribute, "_BUILT", {})
  strategy = distribute.make_strategy(RuntimeConfig(strategy="tpu", tpu="my-tpu"))
  assert strategy == "tpu-strategy"
  assert calls == [("resolver", "my-tpu"), ("connect", "resolver-of-my-tpu"),
                   ("initialize", "resolver-of-my-tpu"), ("strategy", "resolver-of-my-tpu")]

  def refuse(resolver):
    raise ValueError("TPUs are not found")

  monkeypatch.setattr(distribute, "TPU_API", dict(fake, initialize=refuse))
  monkeypatch.setattr(distribute, "_BUILT", {})
  with pytest.raises(ConfigError, match="TPU 'my-tpu' is not reachable: TPUs are not found"):
    distribute.make_strategy(RuntimeConfig(strategy="tpu", tpu="my-tpu"))


def test_an_unreachable_tpu_is_one_line_exit_2_before_anything_is_written(tmp_path):
  (port,) = launcher.free_ports(1)
  root = tmp_path / "runs"
  result = lth("find", *FIND, "--strategy=tpu", f"--tpu=grpc://127.0.0.1:{port}",
               f"--root_dir={root}", f"--data_dir={tmp_path}")
  assert result.returncode == 2, result.stderr
  lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
  assert len(lines) == 1, result.stderr
  assert f"TPU 'grpc://127.0.0.1:{port}' is not reachable" in lines[0]
  assert not root.exists()


def test_bad_mixed_precision_and_logical_devices_are_config_errors():
  from lth_tf.validation import validate
  with pytest.raises(ConfigError, match="mixed_precision must be one of"):
    validate(ExperimentConfig(training=TrainingConfig(mixed_precision="mixed_float8")))
  with pytest.raises(ConfigError, match="logical_devices must be >= 0"):
    validate(ExperimentConfig(runtime=RuntimeConfig(logical_devices=-1)))
  with pytest.raises(ConfigError, match="unknown distribution strategy 'warp'"):
    distribute.make_strategy(RuntimeConfig(strategy="warp"))


_THREADS_SCRIPT = """
import sys
from lth_tf import distribute
from lth_tf.compat import tf
from lth_tf.config import RuntimeConfig
from lth_tf.errors import ConfigError
distribute.make_strategy(RuntimeConfig(intra_op_threads=1, inter_op_threads=2))
print(tf.config.threading.get_intra_op_parallelism_threads(),
      tf.config.threading.get_inter_op_parallelism_threads())
float(tf.reduce_sum(tf.ones([4])))  # TensorFlow has started
distribute.make_strategy(RuntimeConfig(intra_op_threads=1, inter_op_threads=2))  # the same: fine
try:
  distribute.set_threads(RuntimeConfig(intra_op_threads=2))
except ConfigError as error:
  print(error)
"""


def test_thread_pools_are_sized_before_tensorflow_starts_and_not_after():
  result = launcher.run([sys.executable, "-c", _THREADS_SCRIPT], env=ENV, cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  lines = result.stdout.strip().splitlines()
  assert lines[0] == "1 2"
  assert lines[1].startswith("--intra_op_threads=2: TensorFlow already started in this process "
                             "with 1; set it before anything else runs")
  from lth_tf.validation import validate
  for name in ("intra_op_threads", "inter_op_threads"):
    with pytest.raises(ConfigError, match=f"{name} must be >= 0"):
      validate(ExperimentConfig(runtime=RuntimeConfig(**{name: -1})))


def test_lth_find_with_one_thread_per_op_and_two_inter_op_threads(tmp_path):
  result = lth("find", *FIND, "--levels=1", "--reinit=true", "--random_prune=true",
               "--intra_op_threads=1", "--inter_op_threads=2", f"--root_dir={tmp_path}",
               f"--data_dir={tmp_path}")
  assert result.returncode == 0, result.stderr
  rows = io.read_json(next(tmp_path.glob("*/summary.json")))
  assert [(r["level"], r["branch"]) for r in rows] == [
      (0, "ticket"), (1, "ticket"), (1, "reinit"), (1, "random_prune")]


def test_lth_find_with_dense_shards_implies_one_thread_per_op(tmp_path):
  result = lth("find", *FIND, "--levels=1", "--reinit=true", "--dense_shards=2",
               f"--root_dir={tmp_path}", f"--data_dir={tmp_path}")
  assert result.returncode == 0, result.stderr
  rows = io.read_json(next(tmp_path.glob("*/summary.json")))
  assert [(r["level"], r["branch"]) for r in rows] == [(0, "ticket"), (1, "ticket"), (1, "reinit")]
  # Before TensorFlow starts, the implied setting is applied; after, it is skipped without error.
  for start_first, expected in ((False, "1"), (True, "0")):
    probe = ("from lth_tf import distribute; from lth_tf.config import RuntimeConfig; "
             "from lth_tf.compat import tf; " + ("tf.constant(1.0) + 1.0; " if start_first else "") +
             "distribute.set_threads(RuntimeConfig(dense_shards=2)); "
             "print(tf.config.threading.get_intra_op_parallelism_threads())")
    out = launcher.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV,
                       cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected]


def test_tpu_needs_an_address():
  with pytest.raises(ConfigError, match="needs --tpu"):
    distribute.make_strategy(RuntimeConfig(strategy="tpu"))


# ---- mixed precision --------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_masks_exact_and_logits_float32(tmp_path, policy):
  from lth_tf.compat import keras
  from lth_tf.lottery import BranchFiles, LotteryExperiment
  from lth_tf.lottery.replicate import ReplicateModel
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=40, eval_every=20, batch_size=50, optimizer="sgd",
                              learning_rate=0.05, mixed_precision=policy),
      pruning=PruningConfig(levels=1, fc_rate=0.5, output_rate=0.2),
      runtime=RuntimeConfig(root_dir=str(tmp_path), data_dir=str(tmp_path), progress=False))
  experiment = LotteryExperiment(config, log=lambda line: None)
  rows = experiment.run()
  assert keras.mixed_precision.global_policy().name == "float32"  # restored after the builds
  assert rows[-1]["early_stop_test_accuracy"] > 0.5
  files = BranchFiles(experiment.layout.branch_dir(0, 1, "ticket"))
  mask = Mask.from_dict(io.read_arrays(files.mask))
  final = io.read_arrays(files.final_weights)
  assert 0.4 < mask.weights_remaining() < 0.6
  for name in mask:
    assert final[name].dtype == np.float32
    assert np.all(final[name][~mask[name]] == 0.0)
    assert np.any(final[name][mask[name]] != 0.0)
  replicate = ReplicateModel(config, experiment.data, 0, experiment.strategy)
  assert replicate.model.layers[1].compute_dtype == policy.split("_")[1]
  assert replicate.model.output.dtype == "float32"
  from lth_tf.pruning import mask_pairs
  assert all(m.dtype == "float32" for _, _, m in mask_pairs(replicate.model))
  is_scaled = isinstance(replicate.trainer.optimizer, keras.mixed_precision.LossScaleOptimizer)
  assert is_scaled == (policy == "mixed_float16")
