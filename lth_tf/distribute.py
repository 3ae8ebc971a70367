"""The `tf.distribute` strategy from the runtime config, and the rule that only the chief writes."""
from typing import Callable

from lth_tf.compat import tf
from lth_tf.registry import Registry

STRATEGIES: Registry[Callable[[], tf.distribute.Strategy]] = Registry("distribution strategy")


@STRATEGIES.register("default")
def _default() -> tf.distribute.Strategy:
  return tf.distribute.get_strategy()


@STRATEGIES.register("one_device")
def _one_device() -> tf.distribute.Strategy:
  device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
  return tf.distribute.OneDeviceStrategy(device)


def make_strategy(name: str) -> tf.distribute.Strategy:
  return STRATEGIES.get(name)()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """True on the worker that writes files (every single-worker strategy is its own chief)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.cluster_spec().as_dict():
    return True
  return resolver.task_type in (None, "chief") or (
      resolver.task_type == "worker" and resolver.task_id == 0
      and "chief" not in resolver.cluster_spec().as_dict())
