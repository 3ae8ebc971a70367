"""lth_tf: find, study, transfer and ship lottery tickets with Keras and TensorFlow.

    import lth_tf
    result = lth_tf.find("lenet300", "fashion_mnist", levels=5, reinit=True)
    search = lth_tf.TicketSearch(model, rewind_iteration=100)   # around your own model.fit

The entry points are loaded on first use, so `import lth_tf` alone starts no TensorFlow.
"""
import importlib

__version__ = "0.1.0"

# Name -> the module that defines it (`lth_tf.api`: the experiments; `lth_tf.keras_fit`: the
# ticket search around `model.fit`; `lth_tf.tickets`: saved tickets).
_ENTRY_POINTS = {"find": "lth_tf.api", "train": "lth_tf.api", "run_sweep": "lth_tf.api",
                 "TicketSearch": "lth_tf.keras_fit", "load_ticket": "lth_tf.tickets"}
_NAMES_THERE = {"load_ticket": "load"}
__all__ = ["__version__", *_ENTRY_POINTS]


def __getattr__(name):
  module = _ENTRY_POINTS.get(name)
  if module is None:
    raise AttributeError(f"module 'lth_tf' has no attribute {name!r}")
  return getattr(importlib.import_module(module), _NAMES_THERE.get(name, name))


def __dir__():
  return sorted(set(globals()) | set(_ENTRY_POINTS))
