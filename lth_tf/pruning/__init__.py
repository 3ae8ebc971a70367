"""Pruning: the Mask type, the strategies, and the tfmot mask-freeze wrapper.

The Mask type, the strategies and the policy are numpy; the Keras side (`masked_model`,
`wrapper`) loads TensorFlow and is imported on first use, so that reading masks (`lth masks
compare`) does not start it.
"""
from lth_tf.pruning.mask import Mask
from lth_tf.pruning.strategies import STRATEGIES, PruneRequest, random_mask_like, remaining_after
from lth_tf.pruning.policy import (check_config, check_inputs, check_model, first_idle_level,
                                   global_layers,
                                   has_scores, layer_rates, level_limit, next_mask,
                                   score_steps, scored_weights, scores)

# The Keras side: name → the module that defines it.
_KERAS = {
    **{name: "masked_model" for name in ("LAYER_KINDS", "apply_mask", "get_mask", "layer_kinds",
                                         "mask_pairs", "prunable_shapes", "prunable_weights",
                                         "pruning_table", "set_mask", "zero_pruned")},
    **{name: "wrapper" for name in ("MaskFreezeWrapper", "is_prunable", "masked_layers",
                                    "wrap_model")},
}
# Submodules that load TensorFlow, imported on first use.
_KERAS_MODULES = ("masked_model", "structure", "wrapper")


def __getattr__(name: str):
  if name in _KERAS_MODULES:
    import importlib  # pylint: disable=import-outside-toplevel
    return importlib.import_module(f"{__name__}.{name}")
  if name not in _KERAS:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  from lth_tf.pruning import masked_model, wrapper  # pylint: disable=import-outside-toplevel
  return getattr({"masked_model": masked_model, "wrapper": wrapper}[_KERAS[name]], name)


__all__ = [
    "Mask", "LAYER_KINDS", "apply_mask", "get_mask", "layer_kinds", "mask_pairs", "prunable_shapes",
    "prunable_weights", "pruning_table", "set_mask", "STRATEGIES", "PruneRequest", "random_mask_like",
    "remaining_after", "MaskFreezeWrapper", "is_prunable", "masked_layers", "wrap_model",
    "global_layers", "layer_rates", "next_mask", "check_inputs", "has_scores", "score_steps",
    "scored_weights",
    "scores", "check_config", "check_model", "level_limit", "first_idle_level", "zero_pruned",
]
