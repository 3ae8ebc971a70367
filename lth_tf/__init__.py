"""lth_tf: find, study, transfer and ship lottery tickets with Keras and TensorFlow."""
__version__ = "0.1.0"

