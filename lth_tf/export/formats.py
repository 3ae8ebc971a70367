"""Export formats (SavedModel, TFLite with sparse weights), TFLite quantisation modes and sparse
weight encodings, as registries."""
from __future__ import annotations

import os
from typing import Callable, Dict, Iterable, List

import numpy as np

from lth_tf import io, mechanism
from lth_tf.compat import keras, tf
from lth_tf.export import tflite_sparse
from lth_tf.models import heads
from lth_tf.pruning import structure
from lth_tf.registry import Registry

FORMATS: Registry[Callable] = Registry("export format")
QUANTIZATIONS: Registry[Callable] = Registry("quantization")
ENCODINGS: Registry[Callable[[bytes], bytes]] = Registry("TFLite sparse encoding")
ENCODINGS.register("compact")(tflite_sparse.compact)


@ENCODINGS.register("converter")
def _converter_encoding(model_bytes: bytes) -> bytes:
  """The converter's own choice: 1x4 blocks where the sparse FULLY_CONNECTED kernel reads them."""
  return model_bytes


@QUANTIZATIONS.register("none")
def _none(converter, representative: np.ndarray) -> None:
  converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]


@QUANTIZATIONS.register("float16")
def _float16(converter, representative: np.ndarray) -> None:
  converter.optimizations = [tf.lite.Optimize.DEFAULT, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
  converter.target_spec.supported_types = [tf.float16]


@QUANTIZATIONS.register("int8")
def _int8(converter, representative: np.ndarray) -> None:
  converter.optimizations = [tf.lite.Optimize.DEFAULT, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]

  def examples():
    for image in representative:
      yield [image[None].astype(np.int32 if image.dtype.kind in "ui" else np.float32)]
  converter.representative_dataset = examples


@QUANTIZATIONS.register("dense_float")
def _dense_float(converter, representative: np.ndarray) -> None:
  """The reference: no sparse encoding, no quantisation."""
  converter.optimizations = []


def static_batch(model: keras.Model) -> bool:
  """Whether the TFLite converter needs a static batch of one for `model`: its recurrent layers
  run a while loop over tensor lists, which TFLite's built-in ops lower only at static shapes
  (the converter's alternative, Select TF ops, needs TensorFlow's kernels in the interpreter)."""
  return any(isinstance(layer, mechanism.of(layer).keras.layers.RNN)
             for layer in structure.descendants(model))


def input_spec(model, batch=None) -> tf.TensorSpec:
  """The spec of a functional model's one input (its shape with batch `batch`, its dtype)."""
  (inputs,) = structure.graph_inputs(model)
  return tf.TensorSpec((batch, *inputs.shape[1:]), inputs.dtype)


def tflite_bytes(model: keras.Model, quantize: str, representative: np.ndarray,
                 encoding: str = "compact") -> bytes:
  """The TFLite model of `model`, quantised and encoded; a model with recurrent layers is
  converted at batch size one (`static_batch`), a Keras 3 model from its traced call."""
  if static_batch(model) or mechanism.of(model).name != "tf_keras":
    # The graph of one traced call, frozen: saving the whole Keras model first (what
    # `from_keras_model` does) traces every recurrent layer's functions again, ten times slower.
    spec = input_spec(model, 1 if static_batch(model) else None)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
  else:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
  QUANTIZATIONS.get(quantize)(converter, representative)
  return ENCODINGS.get(encoding)(converter.convert())


@FORMATS.register("tflite")
def _tflite(model: keras.Model, out_dir: str, quantize: str, representative: np.ndarray,
            encoding: str) -> str:
  path = os.path.join(out_dir, f"model_{quantize}.tflite")
  blob = tflite_bytes(model, quantize, representative, encoding)
  with io.atomic_path(path) as tmp:
    with open(tmp, "wb") as handle:
      handle.write(blob)
  return path


@FORMATS.register("saved_model")
def _saved_model(model: keras.Model, out_dir: str, quantize: str, representative: np.ndarray,
                 encoding: str) -> str:
  path = os.path.join(out_dir, "saved_model")
  tmp = os.path.join(out_dir, io.TEMP_PREFIX + "saved_model")

  # The input keeps the model's name and dtype (`pixels`, `tokens` or `features`); a model that
  # returns logits serves logits and their softmax, one with a head (`lth_tf.models.heads`)
  # serves what it returns.
  name = structure.graph_inputs(model)[0].name.split(":")[0]
  head = model.layers[-1].name
  spec = input_spec(model)

  @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name=name)])
  def serve(inputs):
    outputs = model(inputs, training=False)
    if head in heads.SERVING_OUTPUTS:
      return {heads.SERVING_OUTPUTS[head]: outputs}
    return {"logits": outputs, "probabilities": tf.nn.softmax(outputs)}

  tf.saved_model.save(model, tmp, signatures={"serving_default": serve})
  if os.path.exists(path):
    import shutil  # pylint: disable=import-outside-toplevel
    shutil.rmtree(path)
  os.replace(tmp, path)
  return path


def export(model: keras.Model, out_dir: str, formats: Iterable[str], quantize: str,
           representative: np.ndarray, encoding: str = "compact") -> Dict[str, str]:
  """Writes each format; returns {format: path}."""
  for name in formats:
    FORMATS.get(name)
  QUANTIZATIONS.get(quantize)
  ENCODINGS.get(encoding)
  os.makedirs(out_dir, exist_ok=True)
  return {name: FORMATS.get(name)(model, out_dir, quantize, representative, encoding)
          for name in formats}


def parse_list(text: str) -> List[str]:
  return [part.strip() for part in text.split(",") if part.strip()]
