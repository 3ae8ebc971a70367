"""The `tf.distribute` strategy from the runtime config, and the rule that only the chief writes.

Strategies are registered builders of a `RuntimeConfig`. A strategy is built once per process
and configuration (multi-worker and TPU strategies cannot be created twice). Every failure to
build one (an unreachable TPU, logical devices asked for too late) is a `ConfigError`, raised
before anything is trained or written.

The global batch is `--batch_size`: each of the N replicas takes `batch_size / N` examples of
it per iteration, the per-replica losses are summed over the replicas and divided by the
global batch, and the gradients are all-reduced (summed) before every optimizer step.
"""
from __future__ import annotations

import contextlib
import socket
import urllib.parse
from typing import Callable, Dict, Tuple

from lth_tf.compat import tf
from lth_tf.config import RuntimeConfig
from lth_tf.errors import ConfigError
from lth_tf.registry import Registry

STRATEGIES: Registry[Callable[[RuntimeConfig], tf.distribute.Strategy]] = Registry(
    "distribution strategy")

# Seconds to wait for a `grpc://HOST:PORT` TPU address to accept a connection.
TPU_CONNECT_TIMEOUT_S = 5.0

_BUILT: Dict[Tuple[str, str, int], tf.distribute.Strategy] = {}


@STRATEGIES.register("default")
def _default(runtime: RuntimeConfig) -> tf.distribute.Strategy:
  return tf.distribute.get_strategy()


@STRATEGIES.register("one_device")
def _one_device(runtime: RuntimeConfig) -> tf.distribute.Strategy:
  device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
  return tf.distribute.OneDeviceStrategy(device)


@STRATEGIES.register("mirrored")
def _mirrored(runtime: RuntimeConfig) -> tf.distribute.Strategy:
  """Every local GPU, or else every logical CPU device (see `--logical_devices`)."""
  if tf.config.list_logical_devices("GPU"):
    return tf.distribute.MirroredStrategy()
  return tf.distribute.MirroredStrategy(
      devices=[device.name for device in tf.config.list_logical_devices("CPU")])


@STRATEGIES.register("multi_worker_mirrored")
def _multi_worker_mirrored(runtime: RuntimeConfig) -> tf.distribute.Strategy:
  """The cluster and this process's task come from the `TF_CONFIG` environment variable."""
  try:
    return tf.distribute.MultiWorkerMirroredStrategy()
  except (ValueError, RuntimeError) as error:
    raise ConfigError(f"--strategy=multi_worker_mirrored: {_first_line(error)}") from None


# The TensorFlow calls of the TPU path, one place (tests replace them to check the wiring).
TPU_API = {
    "resolver": lambda tpu: tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu),
    "connect": lambda resolver: tf.config.experimental_connect_to_cluster(resolver),
    "initialize": lambda resolver: tf.tpu.experimental.initialize_tpu_system(resolver),
    "strategy": lambda resolver: tf.distribute.TPUStrategy(resolver),
}


@STRATEGIES.register("tpu")
def _tpu(runtime: RuntimeConfig) -> tf.distribute.Strategy:
  """Resolves `--tpu`, connects to it, initialises the TPU system and builds a `TPUStrategy`."""
  if not runtime.tpu:
    raise ConfigError("--strategy=tpu needs --tpu=ADDRESS (a TPU name or grpc://HOST:PORT)")
  _check_reachable(runtime.tpu)
  try:
    resolver = TPU_API["resolver"](runtime.tpu)
    TPU_API["connect"](resolver)
    TPU_API["initialize"](resolver)
    return TPU_API["strategy"](resolver)
  except (ValueError, RuntimeError, OSError, tf.errors.OpError) as error:
    raise ConfigError(f"TPU {runtime.tpu!r} is not reachable: {_first_line(error)}") from None


def _check_reachable(address: str) -> None:
  """A `grpc://HOST:PORT` address must accept a TCP connection (TensorFlow would wait on it)."""
  if not address.startswith("grpc://"):
    return
  parsed = urllib.parse.urlparse(address)
  if not parsed.hostname or not parsed.port:
    raise ConfigError(f"--tpu={address}: expected grpc://HOST:PORT")
  try:
    with socket.create_connection((parsed.hostname, parsed.port), timeout=TPU_CONNECT_TIMEOUT_S):
      pass
  except OSError as error:
    raise ConfigError(f"TPU {address!r} is not reachable: {error}") from None


def _first_line(error: Exception) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def split_cpu(count: int) -> None:
  """Splits the first physical CPU into `count` logical devices (before TensorFlow starts)."""
  if count <= 0:
    return
  cpu = tf.config.list_physical_devices("CPU")[0]
  current = tf.config.get_logical_device_configuration(cpu)
  if current is not None and len(current) == count:
    return
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
  except RuntimeError:
    have = len(tf.config.list_logical_devices("CPU"))
    if have != count:
      raise ConfigError(f"--logical_devices={count}: TensorFlow already started with {have} CPU "
                        "device(s) in this process; set it before anything else runs") from None


# The thread settings of `RuntimeConfig`: flag name -> (setter, getter) of TensorFlow's pools.
THREAD_POOLS = {
    "intra_op_threads": (lambda n: tf.config.threading.set_intra_op_parallelism_threads(n),
                         lambda: tf.config.threading.get_intra_op_parallelism_threads()),
    "inter_op_threads": (lambda n: tf.config.threading.set_inter_op_parallelism_threads(n),
                         lambda: tf.config.threading.get_inter_op_parallelism_threads()),
}


def set_threads(runtime: RuntimeConfig) -> None:
  """Sizes TensorFlow's CPU thread pools (before TensorFlow starts); 0 keeps its default.

  `--dense_shards` implies one thread per operation where `--intra_op_threads` is not given; that
  implied setting is skipped if TensorFlow has already started in the process.
  """
  implied = runtime.dense_shards > 1 and runtime.intra_op_threads == 0
  for name, (setter, getter) in THREAD_POOLS.items():
    count = 1 if implied and name == "intra_op_threads" else getattr(runtime, name)
    if count <= 0 or getter() == count:
      continue
    try:
      setter(count)
    except RuntimeError:
      if implied and name == "intra_op_threads":
        continue
      raise ConfigError(f"--{name}={count}: TensorFlow already started in this process with "
                        f"{getter() or 'its default'}; set it before anything else runs") from None


def make_strategy(runtime: RuntimeConfig) -> tf.distribute.Strategy:
  """The configured strategy, built once per process and (strategy, tpu, logical_devices).

  The thread pools (`set_threads`) are sized first. A Keras 3 model on the JAX backend
  (`KERAS_BACKEND=jax`) trains without TensorFlow: its strategy is `JAX_DEVICE`.

  Raises:
    ConfigError: a strategy that cannot be built, or any but the default on JAX.
  """
  from lth_tf.mechanism import keras3  # pylint: disable=import-outside-toplevel
  if keras3.on_jax():
    if runtime.strategy != "default" or runtime.logical_devices:
      raise ConfigError(f"--strategy={runtime.strategy}: Keras 3 on JAX trains on JAX's default "
                        "device, with the default strategy and no --logical_devices")
    return JAX_DEVICE
  set_threads(runtime)
  builder = STRATEGIES.get(runtime.strategy)
  key = (runtime.strategy, runtime.tpu, runtime.logical_devices)
  if key not in _BUILT:
    split_cpu(runtime.logical_devices)
    _BUILT[key] = builder(runtime)
  return _BUILT[key]


def enable_determinism() -> None:
  """`--deterministic`: TensorFlow's op determinism. Keras 3 on JAX needs no call: XLA's CPU
  kernels are deterministic (on a GPU, start with XLA_FLAGS=--xla_gpu_deterministic_ops=true)."""
  from lth_tf.mechanism import keras3  # pylint: disable=import-outside-toplevel
  if not keras3.on_jax():
    tf.config.experimental.enable_op_determinism()


class JaxDevice:
  """The strategy of Keras 3 on JAX: none of TensorFlow's; one process trains on JAX's default
  device (an accelerator where JAX sees one), and is its own chief."""
  num_replicas_in_sync = 1
  cluster_resolver = None

  def scope(self):
    return contextlib.nullcontext()


JAX_DEVICE = JaxDevice()


def uses_replica_steps(strategy: tf.distribute.Strategy) -> bool:
  """Whether training steps go through `strategy.run` (the multi-replica strategies).

  The default and one-device strategies keep the plain single-device step.
  """
  if isinstance(strategy, JaxDevice):
    return False
  return isinstance(strategy, (tf.distribute.MirroredStrategy,
                               tf.distribute.MultiWorkerMirroredStrategy,
                               tf.distribute.TPUStrategy))


def check_batch_size(strategy: tf.distribute.Strategy, batch_size: int, name: str) -> None:
  """The global batch must split evenly over the replicas."""
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise ConfigError(f"batch_size {batch_size} is not divisible by the {replicas} replicas of "
                      f"--strategy={name} (each replica takes batch_size / {replicas} examples)")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """True on the worker that writes files (every single-worker strategy is its own chief)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.cluster_spec().as_dict():
    return True
  return resolver.task_type in (None, "chief") or (
      resolver.task_type == "worker" and resolver.task_id == 0
      and "chief" not in resolver.cluster_spec().as_dict())
