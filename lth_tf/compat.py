"""The one place that chooses Keras 2 (tf_keras) and imports TensorFlow and tfmot.

tfmot 0.8 only accepts Keras 2 models, so every module in lth_tf imports
`tf`, `keras` and `tfmot` from here and never from TensorFlow directly.
"""
import contextlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"


@contextlib.contextmanager
def _quiet_native_stderr():
  """Hides the native start-up lines TensorFlow prints at import (not errors raised later)."""
  if os.environ.get("LTH_VERBOSE_IMPORT") == "1":
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


with _quiet_native_stderr():
  import tensorflow as tf  # noqa: E402
  import tf_keras as keras  # noqa: E402
  import tensorflow_model_optimization as tfmot  # noqa: E402
  # tfmot's prune registry and wrapper are not exported by its public API (see below).
  from tensorflow_model_optimization.python.core.sparsity.keras import (  # noqa: E402
      prune_registry, pruning_wrapper)

# Other modules that import a native-heavy library (keras-tuner imports Keras 3) use this too.
quiet_native_stderr = _quiet_native_stderr


# ---- private names of tf_keras and tfmot ----------------------------------------------------
# lth_tf needs two facts neither library makes public. Both are read here and nowhere else, and
# hold for the versions setup.py pins (tf-keras 2.21.0, tensorflow-model-optimization 0.8.1);
# the tests that use them (slots zeroed with the mask, BatchNormalization left unwrapped) fail
# first when an upgrade changes them.

def optimizer_slot_index(optimizer, variable) -> int:
  """The position of `variable` in a tf_keras optimizer's per-variable slot lists."""
  return optimizer._index_dict[optimizer._var_key(variable)]  # pylint: disable=protected-access


def prune_registry_weights(layer_class):
  """What tfmot's prune registry lists as the prunable weights of a built-in layer class (an
  empty list for supported layers without any, such as BatchNormalization; None if unlisted).
  tfmot's `prune_registry` and `pruning_wrapper` modules (imported above) are internal too."""
  return prune_registry.PruneRegistry._LAYERS_WEIGHTS_MAP.get(layer_class)  # pylint: disable=protected-access


# ---- private names of tf_keras's layer graph --------------------------------------------------
# Layer naming and traversal (`lth_tf.pruning.structure`) need four facts tf_keras keeps private:
# a layer's direct sub-layers, its name (set once at construction), and a functional model's
# output layers and a layer's inbound layers. They are read and written here and nowhere else;
# `rename_layers` also rewrites the node keys (layer name + node index) functional models keep.

def sublayers(layer):
  """The direct sub-layers of `layer` (a model's layers, an RNN's cell, attention's projections)."""
  return list(layer._flatten_layers(include_self=False, recursive=False))  # pylint: disable=protected-access


def rename_layers(root, names) -> None:
  """Renames built layers of the model `root` (`names`: (layer, new name) pairs), keeping every
  functional model in it consistent: such a model keys its graph's nodes by layer name."""
  old = {id(layer): layer.name for layer, _ in names}
  for layer, name in names:
    layer._name = name  # pylint: disable=protected-access
  for model in [root] + list(root._flatten_layers(include_self=False)):  # pylint: disable=protected-access
    nodes = getattr(model, "_network_nodes", None)
    if not nodes:
      continue
    renamed = {old[id(layer)]: layer.name for layer in model.layers if id(layer) in old}
    if not renamed:
      continue

    def rekey(key, renamed=renamed):
      name, _, index = key.rpartition("_ib-")
      return f"{renamed.get(name, name)}_ib-{index}"

    model._network_nodes = {rekey(key) for key in nodes}  # pylint: disable=protected-access


def output_layers(model):
  """The layers whose outputs a functional or Sequential model returns ([] for a subclassed one)."""
  return list(getattr(model, "_output_layers", None) or [])


def inbound_layers(layer):
  """The layers that feed `layer` in the model it was first called in ([] for an input)."""
  nodes = getattr(layer, "_inbound_nodes", None) or []
  if not nodes:
    return []
  inbound = nodes[0].inbound_layers
  return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


__all__ = ["tf", "keras", "tfmot", "quiet_native_stderr", "optimizer_slot_index",
           "prune_registry", "prune_registry_weights", "pruning_wrapper", "sublayers",
           "rename_layers", "output_layers", "inbound_layers"]
