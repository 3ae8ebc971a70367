"""Shared test set-up: quiet TensorFlow, Keras 2 chosen before anything imports TensorFlow."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import lth_tf.compat  # noqa: E402,F401  (chooses tf_keras before any test imports TensorFlow)
