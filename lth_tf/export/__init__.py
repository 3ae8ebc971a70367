"""Shipping tickets: a raw-pixel inference model, SavedModel and TFLite export, parity, size and latency."""
from lth_tf.export.formats import ENCODINGS, FORMATS, QUANTIZATIONS, export
from lth_tf.export.inference import inference_model

__all__ = ["ENCODINGS", "FORMATS", "QUANTIZATIONS", "export", "inference_model"]
