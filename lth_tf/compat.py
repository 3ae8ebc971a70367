"""The one place that chooses Keras 2 (tf_keras) and imports TensorFlow and tfmot.

tfmot 0.8 only accepts Keras 2 models, so every module in lth_tf imports `tf` and `keras` from
here and never from TensorFlow directly. What lth_tf needs of tfmot and of tf_keras's private
names is `lth_tf.mechanism` (its `tf_keras` implementation), the only other reader of them.
"""
import contextlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"


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


with _quiet_native_stderr():
  import tensorflow as tf  # noqa: E402
  import tf_keras as keras  # noqa: E402
  import tensorflow_model_optimization as tfmot  # noqa: E402

# Other modules that import a native-heavy library (keras-tuner imports Keras 3) use this too.
quiet_native_stderr = _quiet_native_stderr


__all__ = ["tf", "keras", "tfmot", "quiet_native_stderr"]
