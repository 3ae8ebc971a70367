"""Analyses of experiments: they read the run directory and compute with numpy (no TensorFlow)."""
