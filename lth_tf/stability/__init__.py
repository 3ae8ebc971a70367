"""Stability (linear mode connectivity, Frankle et al. 2020): `lth stability`.

`interpolate` evaluates the linear path between two networks (numpy and TensorFlow; the
BatchNorm rule); `experiment` trains the two copies of a level's branch and evaluates their path;
its on-disk records and table are `lth_tf.rundir.stability` (read without TensorFlow);
`plot` the figure.
"""
from lth_tf.stability.experiment import StabilityExperiment, data_seeds
from lth_tf.stability.interpolate import NORMALISATION, alphas, instability
from lth_tf.rundir.stability import by_pair, table

__all__ = ["NORMALISATION", "StabilityExperiment", "alphas", "by_pair", "data_seeds",
           "instability", "table"]
