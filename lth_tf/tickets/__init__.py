"""Saved tickets: save a finished level as data (npz + JSON), load it back verified."""
from lth_tf.tickets.format import Ticket, apply, build_model, describe, load, one_line, resolve, save, shipped

__all__ = ["Ticket", "apply", "build_model", "describe", "load", "one_line", "resolve", "save", "shipped"]
