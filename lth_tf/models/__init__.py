"""The model zoo: the `MODELS` registry, `build`, and one self-registering module per family."""
from __future__ import annotations

import sys
from typing import Tuple

from lth_tf import mechanism, precision, user_code
from lth_tf.compat import keras
from lth_tf.config import ModelConfig
from lth_tf.errors import ConfigError
from lth_tf.mechanism import keras3
from lth_tf.models.base import MODELS, ModelBuilder, count_weights
from lth_tf.models.user import build_user_model
from lth_tf.pruning import structure

from lth_tf.registry import import_modules

# Every module of this package is imported: a family module registers its models, so a new
# family is one new file.
import_modules(__name__, __path__)

__all__ = ["MODELS", "build", "builder", "check", "count_weights"]


def builder(config: ModelConfig) -> ModelBuilder:
  """The builder of `config.name`: a registered model, or the user's `package.module:function`."""
  if user_code.is_spec(config.name):
    return build_user_model
  return MODELS.get(config.name)


def check_dropout(config: ModelConfig) -> None:
  """The dropout rate every model family takes: in [0, 1); checked once here, for a config
  being validated and for a model built from a ticket's."""
  if not 0.0 <= config.dropout < 1.0:
    raise ConfigError(f"dropout must be in [0, 1); got {config.dropout}")


def check(config: ModelConfig) -> None:
  """Raises `ConfigError` now, before anything runs, for a model that cannot be built: an
  unknown name, or a user function whose module is missing, fails to import or has changed."""
  builder(config)
  if user_code.is_spec(config.name):
    user_code.check_pin("model", config.name, config.source_sha256)
    user_code.load(config.name, "model")


def build(config: ModelConfig, input_shape: Tuple[int, ...], num_classes: int,
          seed: int) -> keras.Model:
  """Builds the registered model `config.name`, or the user's `package.module:function`.

  Kernels are Glorot-normal with per-layer seeds derived from `seed`, biases are zero, so
  building twice with the same arguments gives identical `get_weights()`. Convolution layers
  are named `conv...`, hidden Dense layers `fc...`, batch norms `bn...` and the classifier
  `output`; the model returns logits.

  Args:
    config: which model, and its dropout rate.
    input_shape: shape of one example, without the batch dimension.
    num_classes: number of output logits.
    seed: weight-initialisation seed.

  Returns:
    A functional model named `config.name`, in the Keras of `config.framework` (a user's
    function: the Keras it returns).

  Raises:
    ConfigError: unknown model name, or an argument the model cannot take.
  """
  build_model = builder(config)
  input_shape = tuple(int(d) for d in input_shape)
  if not input_shape or any(d <= 0 for d in input_shape):
    raise ConfigError(f"input_shape must be non-empty and positive; got {input_shape}")
  if int(num_classes) < 1:
    raise ConfigError(f"num_classes must be >= 1; got {num_classes}")
  check_dropout(config)
  on_jax = keras3.on_jax()
  if on_jax and not user_code.is_spec(config.name) and config.framework != "keras3":
    raise ConfigError(f"model {config.name!r}: KERAS_BACKEND=jax trains Keras 3 models; add "
                      "--framework=keras3 (or unset KERAS_BACKEND for tf_keras)")
  model = build_model(config, input_shape, int(num_classes), int(seed))
  built = mechanism.of(model).name
  if on_jax and built != "keras3":
    raise ConfigError(f"model {config.name!r} is a {built} model: KERAS_BACKEND=jax trains "
                      "Keras 3 models (unset KERAS_BACKEND for tf_keras)")
  refusal = mechanism.of(model).refusal(model)
  if refusal:
    raise ConfigError(f"model {config.name!r}: {refusal}")
  if config.framework and built != config.framework:
    raise ConfigError(f"model {config.name!r} is a {built} model, and --framework="
                      f"{config.framework} names another Keras: a model function is built in "
                      "the Keras it returns (drop --framework)")
  graph = bool(structure.graph_inputs(model))
  # (tf_keras's global policy: float32 unless tf_keras is imported and a policy set.)
  mixed = ("tf_keras" in sys.modules
           and keras.mixed_precision.global_policy().compute_dtype != "float32")
  if mixed and not mechanism.of(model).mixed_precision:
    raise ConfigError(f"model {config.name!r} is a {mechanism.of(model).name} model: lth_tf's "
                      "--mixed_precision builds tf_keras models only; train it in float32")
  if not graph and mixed:
    raise ConfigError(f"model {config.name!r} is subclassed: under --mixed_precision its logits "
                      "would stay in reduced precision (lth_tf casts a functional model's "
                      "outputs to float32 with a layer it adds); return a functional model")
  # Under a mixed-precision policy the logits are cast back to float32 (a no-op otherwise).
  # (Keras 3 models are refused under a mixed-precision policy above.)
  logits = precision.float32_logits(model) if graph and mechanism.of(model).mixed_precision else model
  structure.copy_head(model, logits)
  return logits
