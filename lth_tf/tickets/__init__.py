"""Saved tickets: save a finished level as data (npz + JSON), load it back verified."""
from lth_tf.tickets.format import Ticket, apply, load, save

__all__ = ["Ticket", "apply", "load", "save"]
