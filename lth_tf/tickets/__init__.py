"""Saved tickets: save a finished level as data (npz + JSON), read it back verified, build its model."""
from lth_tf.tickets.format import (Ticket, apply, build_model, describe, load, one_line, read,
                                   reads_carried_examples, resolve, save, shipped, sign, write)

__all__ = ["Ticket", "apply", "build_model", "describe", "load", "one_line", "read",
           "reads_carried_examples", "resolve", "save", "shipped", "sign", "write"]
