"""The `ray` executor (`--executor=ray`, `pip install lth_tf[ray]`): every task of the graph is a
Ray task, started as soon as the tasks it waits for have finished.

- The cluster: the one `RAY_ADDRESS` names (Ray's own convention), or the one this process is
  already connected to; otherwise a local one is started for the run and stopped after it.
- One writer: the process that runs the command writes the experiment directory, alone. A task
  gets its start state as the files it reads (`Work.remote`, sent with it) and returns what
  it wrote (`MemoryStore.written`) and its trained branches (`BranchOutput`), which this process
  writes exactly as a local run would. The workers need no shared filesystem; the data are put
  in Ray's object store once, so they travel once per node.
- Checkpoints: a task sends each checkpoint to a keeper actor on this node, which this process
  drains into the branch's `checkpoint.npz`. A task retried after its worker died (Ray retries
  it, on another node if its node is gone) resumes from the last checkpoint the keeper holds,
  and a rerun after this process was killed resumes from the directory, as a local run does.
- Resources: each task asks for `--cpus_per_task` CPUs and `--gpus_per_task` GPUs.
- The user's own model and dataset modules (`package.module:function`) travel with the tasks
  and are imported from there (`user_code.pack`, `unpack`), unless they are installed packages.
- One training across machines (`--strategy=multi_worker_mirrored`): every task is trained by
  a group of `--training_workers` Ray actors, started here as Ray Train starts its workers:
  each reports its node's address and a free port, and gets the `TF_CONFIG` of the group (the
  first one is the chief). Every worker of the group runs every task, in the same order; the
  chief alone sends checkpoints and returns what the task wrote. A worker that dies ends the
  run in one line; the rerun resumes from the directory's checkpoints.

A worker keeps the replicate model it built last (tasks of one replicate reuse it) and trains
with the experiment's thread settings, so its steps are the steps a local run takes: on one CPU
type the directory is bit-identical to a local run's.
"""
import dataclasses
import json
import os
import socket
from typing import Dict, List

from lth_tf import io, user_code
from lth_tf.errors import TrainingDiverged, UserError
from lth_tf.executors import EXECUTORS
from lth_tf.rundir import BranchFiles, states

# How long the head waits for a task to finish before it drains new checkpoints again.
POLL_S = 0.5
# How often Ray retries a task whose worker process or node died.
TASK_RETRIES = 3


def _ray():
  try:
    import ray  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise UserError("--executor=ray needs Ray: pip install 'lth_tf[ray]'") from None
  return ray


class Keeper:
  """A Ray actor on the head's node: the last checkpoint of every branch a task trains, by the
  path of its `checkpoint.npz`: its arrays (`states.TrainingState.to_arrays`) and what the task
  had written before it (`MemoryStore.written`, such as the rewind point), which a retry of the
  task resumes with and the head writes first."""

  def __init__(self, checkpoints: Dict[str, Dict]):
    self._latest = {path: (arrays, []) for path, arrays in checkpoints.items()}
    self._new: Dict[str, tuple] = {}

  def put(self, path: str, arrays: Dict, written: list) -> None:
    self._latest[path] = self._new[path] = (arrays, written)

  def get(self, path: str):
    return self._latest.get(path)

  def take_new(self) -> Dict[str, tuple]:
    new, self._new = self._new, {}
    return new

  def drop(self, path: str) -> None:
    self._latest.pop(path, None)
    self._new.pop(path, None)


class KeeperCheckpoints:
  """A remote task's checkpoints (the `BranchRun` interface), sent to and read from the keeper
  with what the task wrote before each (through `store`, its `MemoryStore`); a worker of a
  multi-worker training that is not the chief reads them and sends none (`sends`)."""

  def __init__(self, keeper, store, sends: bool = True):
    self.keeper = keeper
    self.store = store
    self.sends = sends

  def read(self, files: BranchFiles):
    kept = _ray().get(self.keeper.get.remote(files.checkpoint))
    if kept is None:
      return None
    arrays, written = kept
    self.store.replay(written)  # what the killed attempt had written: its rewind point
    return states.TrainingState.from_arrays(arrays, files.checkpoint)

  def write(self, files: BranchFiles, state: states.TrainingState) -> None:
    if not self.sends:
      return
    _ray().get(self.keeper.put.remote(files.checkpoint, state.to_arrays(),
                                      list(self.store.written)))

  def clear(self, files: BranchFiles) -> None:
    """The head removes a finished branch's checkpoint when it writes the branch."""


def run_task(detached, spec, data, task, inputs: Dict, keeper, code: Dict):
  """A Ray task: `detached` (the work's `run_detached`) with the keeper's checkpoints, the
  user's `code` (`user_code.pack`) importable."""
  user_code.unpack(code)
  return detached(spec, data, task, inputs, lambda store: KeeperCheckpoints(keeper, store))


class TrainingWorker:
  """A Ray actor: one worker of a multi-worker training (`--strategy=multi_worker_mirrored`).
  Its strategy is built at its first task, from the `TF_CONFIG` that `join` set."""

  def address(self) -> str:
    """This node's address and a port free on it, for the group's cluster."""
    with socket.socket() as probe:
      probe.bind(("", 0))
      port = probe.getsockname()[1]
    return f"{_ray().util.get_node_ip_address()}:{port}"

  def join(self, cluster: List[str], index: int) -> None:
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": cluster},
                                          "task": {"type": "worker", "index": index}})

  def run(self, detached, spec, data, task, inputs: Dict, keeper, code: Dict, chief: bool):
    """The task's share of this worker; what it wrote and trained on the chief only."""
    user_code.unpack(code)
    result = detached(spec, data, task, inputs,
                      lambda store: KeeperCheckpoints(keeper, store, sends=chief))
    return result if chief else None


def _requires(runtime) -> None:
  _ray()
  if runtime.strategy == "multi_worker_mirrored" and os.environ.get("TF_CONFIG"):
    raise UserError("--executor=ray starts the workers of --strategy=multi_worker_mirrored and "
                    "sets their TF_CONFIG itself; unset TF_CONFIG in the command's environment")


@EXECUTORS.register("ray")
def run(work, graph) -> None:
  ray = _ray()
  started_here = not ray.is_initialized()
  if started_here:
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
  try:
    _HeadRun(ray, work, graph).run()
  finally:
    if started_here:
      ray.shutdown()


run.requires = _requires


class _HeadRun:
  """The head's side of one run: submits ready tasks, writes what they return."""

  def __init__(self, ray, work, graph):
    self.ray = ray
    self.work = work
    self.graph = list(graph)
    runtime = work.config.runtime
    # A worker runs as many operations at once as its task has CPUs (TensorFlow's default is
    # every core of the machine, which several workers of one machine oversubscribe). Which
    # independent operations run at the same time changes no result; the threads of one
    # operation (`intra_op_threads`) are left as the experiment has them.
    self._threads = runtime.inter_op_threads or max(1, int(runtime.cpus_per_task))
    self._specs: Dict = {}  # an experiment's spec -> its workers' spec
    self._data: Dict[int, object] = {}  # id of the data -> their reference in the object store
    # The user's model and dataset modules travel with the tasks, put once in the object store.
    self.code = ray.put(user_code.pack(work.config))
    self._remotes: Dict = {}  # a worker's thread pools -> the Ray task that runs on such workers
    self.group = (self._start_group(runtime) if runtime.strategy == "multi_worker_mirrored"
                  else None)
    self._followers: Dict = {}  # a group task's chief reference -> its other workers'
    here = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
        ray.get_runtime_context().get_node_id(), soft=False)
    checkpoints = {}
    for task, _ in self.graph:
      path = work.checkpoint(task)
      if path and os.path.exists(path):
        checkpoints[path] = io.read_arrays(path)
    self.keeper = ray.remote(Keeper).options(num_cpus=0, scheduling_strategy=here).remote(
        checkpoints)

  def _start_group(self, runtime) -> List:
    """The actors of one multi-worker training, each told the group's `TF_CONFIG`."""
    actor = self.ray.remote(TrainingWorker).options(
        num_cpus=runtime.cpus_per_task, num_gpus=runtime.gpus_per_task,
        scheduling_strategy="SPREAD")
    group = [actor.remote() for _ in range(runtime.training_workers)]
    cluster = self.ray.get([worker.address.remote() for worker in group])
    self.ray.get([worker.join.remote(cluster, index) for index, worker in enumerate(group)])
    return group

  def _worker_spec(self, spec):
    """`spec` as the workers run it: no progress bars, `_threads` operations at once."""
    key = (type(spec).__name__, spec.key())
    if key not in self._specs:
      runtime = spec.config.runtime
      self._specs[key] = spec.with_config(spec.config.replace(runtime=dataclasses.replace(
          runtime, progress=False, inter_op_threads=runtime.inter_op_threads or self._threads)))
    return self._specs[key]

  def _remote(self, runtime):
    """The Ray task for a spec of `runtime`, on worker processes that started TensorFlow with
    its thread pools: a process sizes them once, when TensorFlow starts, so tasks of another
    size (`--intra_op_threads`, the one thread `--dense_shards` implies) run in processes of
    their own (Ray keeps one pool of worker processes per `runtime_env`)."""
    implied = 1 if runtime.dense_shards > 1 else 0
    pools = f"intra={runtime.intra_op_threads or implied},inter={runtime.inter_op_threads}"
    if pools not in self._remotes:
      self._remotes[pools] = self.ray.remote(run_task).options(
          num_cpus=runtime.cpus_per_task, num_gpus=runtime.gpus_per_task,
          max_retries=TASK_RETRIES, retry_exceptions=False,
          runtime_env={"env_vars": {"LTH_THREAD_POOLS": pools}})
    return self._remotes[pools]

  def _submit(self, task):
    """Starts `task` as a Ray task; None for a task that runs here (it has run)."""
    remote = self.work.remote(task)
    if remote is None:
      self.work.run(task)
      return None
    if id(remote.data) not in self._data:  # once per dataset: it travels once per node
      self._data[id(remote.data)] = (self.ray.put(remote.data), remote.data)
    spec = self._worker_spec(remote.spec)
    args = (self.work.detached, spec, self._data[id(remote.data)][0], remote.task,
            remote.inputs, self.keeper, self.code)
    if self.group is None:
      return self._remote(spec.config.runtime).remote(*args)
    # Every worker of the group runs the task (its actors run their calls in this order).
    chief, *others = [worker.run.remote(*args, index == 0)
                      for index, worker in enumerate(self.group)]
    self._followers[chief] = others
    return chief

  def run(self) -> None:
    pending = list(self.graph)
    done, running = set(), {}
    try:
      while pending or running:
        for task, deps in list(pending):
          if all(dep in done for dep in deps):
            pending.remove((task, deps))
            ref = self._submit(task)
            if ref is None:
              done.add(task)
            else:
              running[ref] = task
        if not running:
          continue
        self.work.where = "during " + ", ".join(map(str, running.values()))
        finished, _ = self.ray.wait(self._waited(running), num_returns=1, timeout=POLL_S)
        self._write_checkpoints()
        for ref in finished:
          if ref not in running:  # a worker of a group, not the chief: an error ends the run
            self._result(ref)
            for others in self._followers.values():
              if ref in others:
                others.remove(ref)
            continue
          task = running.pop(ref)
          self._write(task, self._result(ref))
          self._result_of_group(ref)
          done.add(task)
    finally:
      if self.group is not None:
        for worker in self.group:
          self.ray.kill(worker)
      else:
        for ref in running:
          self.ray.cancel(ref, force=True)

  def _waited(self, running) -> List:
    """What the head waits for: the running tasks, and the other workers of a group's task
    (one that dies would leave the chief waiting for it)."""
    return list(running) + [ref for chief in running for ref in self._followers.get(chief, ())]

  def _result_of_group(self, chief) -> None:
    for ref in self._followers.pop(chief, ()):
      self._result(ref)

  def _result(self, ref):
    try:
      return self.ray.get(ref)
    except self.ray.exceptions.RayTaskError as error:
      cause = getattr(error, "cause", None)
      if isinstance(cause, (UserError, TrainingDiverged)):
        record = getattr(cause, "record", None)
        if record is not None and self.work.writes:
          io.write_json(*record)
        raise cause from None
      raise
    except self.ray.exceptions.RayActorError as error:
      raise UserError("a worker of the multi-worker training died "
                      f"({str(error).splitlines()[0][:200]}); rerun the command to resume from "
                      "the last checkpoint") from None

  def _write_checkpoints(self) -> None:
    if not self.work.writes:
      return
    for path, (arrays, written) in self.ray.get(self.keeper.take_new.remote()).items():
      self.work.apply(written)  # first: a rerun resumed from the checkpoint reads them
      states.write(io, path, states.TrainingState.from_arrays(arrays, path))

  def _write(self, task, result) -> None:
    written, outputs = result
    self._write_checkpoints()  # the task's last ones first: the commit below removes them
    self.work.write(task, written, outputs)
    for output in outputs:
      self.ray.get(self.keeper.drop.remote(output.files.checkpoint))
