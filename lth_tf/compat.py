"""The one place that chooses Keras 2 (tf_keras) and imports TensorFlow and tfmot, on first use.

tfmot 0.8 only accepts Keras 2 models, so every module in lth_tf takes `tf` and `keras` (tf_keras)
from here and never from TensorFlow directly. What lth_tf needs of tfmot and of tf_keras's private
names is `lth_tf.mechanism` (its `tf_keras` implementation), the only other reader of them.

`tf`, `keras` and `tfmot` are modules loaded on their first attribute read, not at import: a Keras 3
model on the JAX backend trains through modules that import this one without importing TensorFlow
(tests/on_jax/test_jax.py runs `lth find` where TensorFlow cannot be imported). Loading them sets
`TF_USE_LEGACY_KERAS=1` first, as tfmot itself does, so that `tf.keras` is tf_keras for tfmot.
"""
import contextlib
import importlib
import os
import sys
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _quiet_native_stderr():
  """Hides the native start-up lines TensorFlow prints at import (not errors raised later)."""
  if os.environ.get("LTH_VERBOSE_IMPORT") == "1":
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


# Other modules that import a native-heavy library (keras-tuner imports Keras 3) use this too.
quiet_native_stderr = _quiet_native_stderr


class _OnFirstUse(types.ModuleType):
  """Stands for the module `target`, imported (with TensorFlow) when an attribute is first read."""

  def __init__(self, target: str):
    super().__init__(target)
    self.__target = target

  def __getattr__(self, attribute):
    return getattr(_import(self.__target), attribute)

  def __dir__(self):
    return dir(_import(self.__target))


def _import(target: str):
  module = sys.modules.get(target)
  if module is None:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    with _quiet_native_stderr():
      importlib.import_module("tensorflow")
      module = importlib.import_module(target)
  return module


def on_jax() -> bool:
  """Whether Keras 3 models train on its JAX backend in this process: Keras 3's backend once it
  is imported, else `KERAS_BACKEND` (read without importing Keras, which would import
  TensorFlow on its TensorFlow backend)."""
  module = sys.modules.get("keras")
  if module is not None and hasattr(module, "ops"):
    return module.backend.backend() == "jax"
  return os.environ.get("KERAS_BACKEND") == "jax"


def loaded() -> bool:
  """Whether TensorFlow has been imported (by lth_tf or anyone else) in this process."""
  return "tensorflow" in sys.modules


tf = _OnFirstUse("tensorflow")
keras = _OnFirstUse("tf_keras")
tfmot = _OnFirstUse("tensorflow_model_optimization")

if not on_jax():
  os.environ["TF_USE_LEGACY_KERAS"] = "1"
  for _target in ("tensorflow", "tf_keras", "tensorflow_model_optimization"):
    _import(_target)


__all__ = ["tf", "keras", "tfmot", "loaded", "on_jax", "quiet_native_stderr"]
