"""The ray executor (`--executor=ray`) on a Ray cluster of two worker nodes on this machine: the
experiment directory it leaves is the local executor's, bit for bit, however its workers, its
nodes or its head die on the way."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import ray
from ray.cluster_utils import Cluster

import artifacts
import launcher
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig,
                           TrainingConfig)
from lth_tf.lottery import LotteryExperiment
from lth_tf.lottery.sweep import RewindSweep
from lth_tf.settings import StabilityConfig
from lth_tf.stability import StabilityExperiment

# The tests share one cluster: they run in one test process (scripts/test.sh: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("ray")

# Two runs of one experiment under two executors differ in the executor they record too.
VARIABLE = dict(artifacts.VARIABLE, **{"config.json": artifacts.VARIABLE["config.json"] + (
    ("runtime", "executor"),)})


@pytest.fixture(scope="module")
def cluster():
  """A head node that trains nothing and two worker nodes of one CPU each."""
  # A lost node is noticed within about a second (Ray's default waits tens of seconds).
  cluster = Cluster(initialize_head=True, head_node_args={
      "num_cpus": 0, "include_dashboard": False,
      "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                         "health_check_failure_threshold": 2}})
  for _ in range(2):
    cluster.add_node(num_cpus=1)
  ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
  yield cluster
  ray.shutdown()
  cluster.shutdown()


def _config(root, executor="local", seeds=(0, 1), levels=2, iterations=60, eval_every=20,
            **pruning):
  pruning = dict(dict(levels=levels, fc_rate=0.5, output_rate=0.2, reinit=True,
                      random_prune=True), **pruning)
  return ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=iterations, eval_every=eval_every, batch_size=50),
      pruning=PruningConfig(**pruning),
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False, seeds=seeds,
                            executor=executor))


def _experiments(root):
  """Every experiment directory under `root`, by name, as `artifacts.of_directory` sees it."""
  return {path.name: artifacts.of_directory(path, VARIABLE)
          for path in sorted(root.iterdir()) if (path / "config.json").exists()}


def test_a_find_with_controls_on_two_nodes_equals_the_local_run(cluster, tmp_path):
  local = LotteryExperiment(_config(tmp_path / "local"), log=lambda line: None).run()
  lines = []
  rows = LotteryExperiment(_config(tmp_path / "ray", "ray"), log=lines.append).run()
  assert rows == local
  # One line per trained branch, logged by the head as it writes the branch.
  assert len([line for line in lines if line.startswith("replicate ")]) == 2 * (1 + 2 * 3)
  got, expected = _experiments(tmp_path / "ray"), _experiments(tmp_path / "local")
  assert got.keys() == expected.keys() and len(got) == 1
  assert got == expected


def test_a_rewind_sweep_on_two_nodes_equals_the_local_run(cluster, tmp_path):
  for name, executor in (("local", "local"), ("ray", "ray")):
    config = _config(tmp_path / name, executor, seeds=(0,), levels=1, random_prune=False)
    RewindSweep(config, (0, 20), log=lambda line: None).run()
  got, expected = _experiments(tmp_path / "ray"), _experiments(tmp_path / "local")
  assert len(expected) == 2 and got == expected


def test_a_stability_run_on_two_nodes_equals_the_local_run(cluster, tmp_path):
  """`lth stability --flagfile=...`: the experiment's tasks and the copies as one graph (each
  copy waits for its level), then the paths evaluated by the head."""
  settings = StabilityConfig(branches=("ticket", "reinit"), points=2)
  for name, executor in (("local", "local"), ("ray", "ray")):
    config = _config(tmp_path / name, executor, seeds=(0,), levels=1, random_prune=False)
    StabilityExperiment.for_config(config, settings, log=lambda line: None).run()
  got, expected = _experiments(tmp_path / "ray"), _experiments(tmp_path / "local")
  assert len(expected) == 1 and got == expected
  (files,) = expected.values()
  assert len([name for name in files if name.endswith("copy_1/metrics.json")]) == 3


def test_a_transfer_on_two_nodes_equals_the_local_run(cluster, tmp_path):
  """`lth transfer`: every branch (ticket, dense, re-init, random-prune) is a task; the ticket
  travels with them."""
  from lth_tf import tickets
  from lth_tf.settings import TransferConfig
  from lth_tf.transfer import TransferExperiment, target_config
  source = LotteryExperiment(_config(tmp_path / "source", seeds=(0,), levels=1,
                                     random_prune=False, iterations=40), log=lambda line: None)
  source.run()
  path = tickets.save(source.layout.directory, 0, 1, str(tmp_path / "ticket"),
                      str(tmp_path / "source"))
  transfer = TransferConfig(target_dataset="synthetic", target_classes=(0, 1, 2))
  for name, executor in (("local", "local"), ("ray", "ray")):
    base = _config(tmp_path / name, executor, seeds=(0,), iterations=40)
    base = base.replace(runtime=dataclasses.replace(base.runtime, ticket=path))
    TransferExperiment(target_config(tickets.read(path), base, transfer, {}), transfer,
                       log=lambda line: None).run()
  got, expected = _experiments(tmp_path / "ray"), _experiments(tmp_path / "local")
  assert len(expected) == 1 and got == expected
  (files,) = expected.values()
  assert len([name for name in files if name.endswith("metrics.json")]) == 4


# A training long enough to be caught in the middle: a checkpoint every 50 of 400 iterations.
_LONG = dict(seeds=(0,), levels=1, iterations=400, eval_every=50, random_prune=False)


@pytest.fixture(scope="module")
def long_local(tmp_path_factory):
  root = tmp_path_factory.mktemp("long_local")
  LotteryExperiment(_config(root, **_LONG), log=lambda line: None).run()
  return _experiments(root)


def _task_processes():
  """The worker processes running a task now (Ray titles them after the task's function)."""
  out = []
  for entry in os.listdir("/proc"):
    try:
      with open(f"/proc/{entry}/cmdline", "rb") as handle:
        title = handle.read().split(b"\0")[0]
    except OSError:
      continue
    if title.startswith(b"ray::run_task"):
      out.append(int(entry))
  return out


def _node_running_a_task(cluster):
  """The worker node whose raylet started a process that runs a task now (None if none does)."""
  parents = set()
  for pid in _task_processes():
    with open(f"/proc/{pid}/stat") as handle:
      parents.add(int(handle.read().rsplit(")", 1)[1].split()[1]))
  for node in cluster.worker_nodes:
    if any(info.process.pid in parents for info in node.all_processes.get("raylet", ())):
      return node
  return None


def _when(condition, action, timeout=180):
  """Calls `action()` once `condition()` holds; returns whether it did before `timeout` s."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    if condition():
      action()
      return True
    time.sleep(0.02)
  return False


def _checkpoint(root, level):
  return lambda: bool(list(root.glob(f"*/replicate_0/level_{level}/ticket/checkpoint.npz")))


def test_a_killed_worker_and_a_lost_node_change_nothing(cluster, tmp_path, long_local):
  """A worker process SIGKILLed in the middle of level 0: Ray retries its task, which resumes
  from the last checkpoint the head holds (with the rewind point it had captured). Then the
  node training level 1 is removed: its task moves to the other node."""
  root = tmp_path / "ray"
  errors = []

  def run():
    try:
      LotteryExperiment(_config(root, "ray", **_LONG), log=lambda line: None).run()
    except Exception as error:  # pylint: disable=broad-except
      errors.append(error)

  thread = threading.Thread(target=run)
  thread.start()
  killed, lost = [], []

  def kill():
    for pid in _task_processes():
      os.kill(pid, signal.SIGKILL)
      killed.append(pid)

  def lose_a_node():
    node = _node_running_a_task(cluster)
    if node is not None:
      cluster.remove_node(node)
      lost.append(node)

  try:
    assert _when(_checkpoint(root, 0), kill)
    assert _when(_checkpoint(root, 1), lose_a_node)
  finally:
    thread.join(300)
    if lost:
      cluster.add_node(num_cpus=1)  # the next test's cluster has two worker nodes again
  assert not thread.is_alive() and not errors, errors
  assert killed and lost  # both faults really happened in the middle of a task
  assert _experiments(root) == long_local


_HEAD = """
import sys
from lth_tf.config import ExperimentConfig
from lth_tf import io
from lth_tf.lottery import LotteryExperiment
LotteryExperiment(ExperimentConfig.from_dict(io.read_json(sys.argv[1])), log=print).run()
"""


def test_a_killed_head_leaves_a_directory_that_a_rerun_finishes(cluster, tmp_path, long_local):
  from lth_tf import io
  root = tmp_path / "ray"
  config = _config(root, "ray", **_LONG)
  io.write_json(str(tmp_path / "config.json"), config.to_dict())
  head = launcher.start([sys.executable, "-c", _HEAD, str(tmp_path / "config.json")],
                        env=dict(os.environ, RAY_ADDRESS=cluster.address),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  assert _when(_checkpoint(root, 0), head.kill)
  head.wait()
  assert not list(root.glob("**/level_1/ticket/metrics.json"))  # it died before the end
  LotteryExperiment(config, log=lambda line: None).run()
  assert _experiments(root) == long_local


def test_a_task_that_diverges_stops_the_run_with_its_message_recorded_by_the_head(cluster,
                                                                                 tmp_path):
  from lth_tf.errors import TrainingDiverged
  config = _config(tmp_path, "ray", levels=0)
  config = dataclasses.replace(config, training=dataclasses.replace(
      config.training, optimizer="sgd", learning_rate=1e12))
  with pytest.raises(TrainingDiverged, match=r"replicate \d level 0 ticket: .*NaN or Inf"):
    LotteryExperiment(config, log=lambda line: None).run()
  (record,) = tmp_path.glob("*/replicate_*/level_0/ticket/error.json")
  assert "NaN or Inf" in record.read_text()


# ---- one training across Ray actors: --strategy=multi_worker_mirrored --------------------------

def _multi_worker(root, executor):
  config = _config(root, executor, seeds=(0,), levels=1, random_prune=False, iterations=40)
  return dataclasses.replace(config, runtime=dataclasses.replace(
      config.runtime, strategy="multi_worker_mirrored", training_workers=2))


def test_a_multi_worker_training_on_ray_actors_equals_its_workers_started_by_hand(cluster,
                                                                                 tmp_path):
  """Two Ray actors, each given its TF_CONFIG by the executor, train every task together: the
  directory equals the chief's of the same two workers started by hand with their TF_CONFIG,
  bit for bit, and nothing else is written."""
  from lth_tf import io
  config = _multi_worker(tmp_path / "hand", "local")
  io.write_json(str(tmp_path / "config.json"), config.to_dict())
  cluster_spec = {"worker": [f"127.0.0.1:{port}" for port in launcher.free_ports(2)]}
  workers = []
  try:
    for index in range(2):
      task = json.dumps({"cluster": cluster_spec, "task": {"type": "worker", "index": index}})
      worker_config = str(tmp_path / f"config{index}.json")
      io.write_json(worker_config, dict(config.to_dict(), runtime=dict(
          config.to_dict()["runtime"], root_dir=str(tmp_path / ("hand" if index == 0 else "other")))))
      workers.append(launcher.start([sys.executable, "-c", _HEAD, worker_config],
                                    env=dict(os.environ, TF_CONFIG=task),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    errors = [worker.communicate(timeout=150)[1] for worker in workers]
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
  assert [worker.returncode for worker in workers] == [0, 0], errors
  assert not (tmp_path / "other").exists()  # the second worker wrote nothing
  lines = []
  LotteryExperiment(_multi_worker(tmp_path / "ray", "ray"), log=lines.append).run()
  assert len([line for line in lines if line.startswith("replicate ")]) == 1 + 2
  got, expected = _experiments(tmp_path / "ray"), _experiments(tmp_path / "hand")
  assert len(expected) == 1 and got == expected


def test_a_find_on_the_user_s_own_model_and_data_ships_their_modules(cluster, tmp_path,
                                                                     monkeypatch):
  """A model (convolutions, batch normalisation, a layer of the user's) and a dataset function
  in the user's own modules, which the workers cannot import from their own paths: the
  executor ships them with the tasks, and the run equals the local one, run as a user runs it
  (a new process; this one's TensorFlow may have started with other thread pools)."""
  import shutil
  from lth_tf import io
  code = tmp_path / "code"
  code.mkdir()
  here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "user_code")
  shutil.copy(os.path.join(here, "my_models.py"), code / "shipped_models.py")
  shutil.copy(os.path.join(here, "my_data.py"), code / "shipped_data.py")
  monkeypatch.syspath_prepend(str(code))
  configs = {}
  for name, executor in (("local", "local"), ("ray", "ray")):
    config = _config(tmp_path / name, executor, seeds=(0,), levels=1, random_prune=False,
                     iterations=40)
    # One thread per operation, as the other tests' fully connected networks run: the workers
    # they started (whose TensorFlow sized its thread pools once) take these tasks too.
    configs[name] = config.replace(
        dataset=dataclasses.replace(config.dataset, name="py:shipped_data:load"),
        model=dataclasses.replace(config.model, name="shipped_models:small_cnn"),
        runtime=dataclasses.replace(config.runtime, intra_op_threads=1))
  io.write_json(str(tmp_path / "local.json"), configs["local"].to_dict())
  result = launcher.run([sys.executable, "-c", _HEAD, str(tmp_path / "local.json")],
                        env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                            [str(code), os.environ.get("PYTHONPATH", "")])),
                        capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
  LotteryExperiment(configs["ray"], log=lambda line: None).run()
  got, expected = _experiments(tmp_path / "ray"), _experiments(tmp_path / "local")
  assert len(expected) == 1 and got == expected
