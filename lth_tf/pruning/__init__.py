"""Pruning: the Mask type, the strategies, and the tfmot mask-freeze wrapper."""
from lth_tf.pruning.mask import Mask
from lth_tf.pruning.masked_model import (
    LAYER_KINDS, apply_mask, get_mask, layer_kinds, mask_pairs, prunable_shapes, prunable_weights,
    set_mask)
from lth_tf.pruning.strategies import STRATEGIES, PruneRequest, random_mask_like, remaining_after
from lth_tf.pruning.policy import (check_inputs, global_layers, has_scores, layer_rates, next_mask,
                                   scored_weights, scores)
from lth_tf.pruning.wrapper import MaskFreezeWrapper, is_prunable, masked_layers, wrap_model

__all__ = [
    "Mask", "LAYER_KINDS", "apply_mask", "get_mask", "layer_kinds", "mask_pairs", "prunable_shapes",
    "prunable_weights", "set_mask", "STRATEGIES", "PruneRequest", "random_mask_like",
    "remaining_after", "MaskFreezeWrapper", "is_prunable", "masked_layers", "wrap_model",
    "global_layers", "layer_rates", "next_mask", "check_inputs", "has_scores", "scored_weights",
    "scores",
]
