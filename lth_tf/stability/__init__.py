"""Stability (linear mode connectivity, Frankle et al. 2020): `lth stability`.

`interpolate` evaluates the linear path between two networks (numpy and TensorFlow; the
BatchNorm rule); `experiment` trains the two copies of a level's branch and evaluates their path;
`record` is the on-disk record and table; `plot` the figure.
"""
from lth_tf.stability.experiment import StabilityExperiment, data_seeds
from lth_tf.stability.interpolate import NORMALISATION, alphas, instability
from lth_tf.stability.record import by_pair, table

__all__ = ["NORMALISATION", "StabilityExperiment", "alphas", "by_pair", "data_seeds",
           "instability", "table"]
