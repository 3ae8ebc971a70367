"""The one place that chooses Keras 2 (tf_keras) and imports TensorFlow and tfmot.

tfmot 0.8 only accepts Keras 2 models, so every module in lth_tf imports
`tf`, `keras` and `tfmot` from here and never from TensorFlow directly.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402

__all__ = ["tf", "keras", "tfmot"]
