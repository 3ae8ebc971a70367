"""Shared test set-up: quiet TensorFlow, Keras 2 chosen before anything imports TensorFlow."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import lth_tf.compat  # noqa: E402,F401  (chooses tf_keras before any test imports TensorFlow)

import launcher  # noqa: E402
from lth_tf.export import ship  # noqa: E402

# The export's check runs in a new interpreter: in the tests, a fork of one that has imported
# TensorFlow only (launcher.py), as the command-line tests' processes are.
ship.run_check = launcher.run
