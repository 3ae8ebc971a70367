"""Mixed precision: the tf_keras policy models are built under, float32 logits, loss scaling.

Under `mixed_float16` or `mixed_bfloat16` layers compute in 16 bits while their variables
(and therefore the pruning masks, which have the dtype of their weight) stay float32, so a
mask is exact: the training loop's zeroing and masked gradients (`lth_tf.training.loop`) keep
pruned weights exactly zero. The model's
logits are cast back to float32 and `mixed_float16` trains with a `LossScaleOptimizer`.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

from lth_tf import mechanism
from lth_tf.compat import keras, tf

NONE = "none"

# Where Linux lists the CPU's features ("flags" on x86, "Features" on Arm), and the features
# that give it bfloat16 arithmetic (AVX512-BF16, AMX, Arm BF16). Without one, TensorFlow
# emulates bfloat16 on the CPU, many times slower than float32 (benchmarks/README.md, speed
# run 7).
CPUINFO = "/proc/cpuinfo"
BFLOAT16_CPU_FEATURES = frozenset({"avx512_bf16", "amx_bf16", "bf16"})

# The layer that returns float32 logits from a mixed-precision model (it has no weights).
LOGITS_LAYER = "logits_float32"


@contextlib.contextmanager
def policy(name: str) -> Iterator[None]:
  """Sets the global tf_keras dtype policy `name` for the models built inside; restores it."""
  if name == NONE:
    yield
    return
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(previous)


def float32_logits(model: keras.Model) -> keras.Model:
  """`model` with its outputs cast to float32 (unchanged if they already are)."""
  if model.output.dtype == "float32":
    return model
  logits = keras.layers.Activation("linear", dtype="float32", name=LOGITS_LAYER)(model.output)
  return keras.Model(model.inputs, logits, name=model.name)


def cpu_has_bfloat16() -> Optional[bool]:
  """Whether the CPU has bfloat16 arithmetic; None where the system does not list its features."""
  try:
    with open(CPUINFO, encoding="utf-8", errors="replace") as handle:
      lines = handle.read().splitlines()
  except OSError:
    return None
  features = set()
  for line in lines:
    key, _, value = line.partition(":")
    if key.strip() in ("flags", "Features"):
      features.update(value.split())
  return bool(features & BFLOAT16_CPU_FEATURES) if features else None


def accelerators() -> list:
  """The GPUs and TPUs TensorFlow sees."""
  return tf.config.list_logical_devices("GPU") + tf.config.list_logical_devices("TPU")


def emulation_warning(name: str) -> Optional[str]:
  """A warning for training under policy `name` on a CPU that emulates its 16-bit arithmetic
  (no GPU or TPU in sight); None when there is nothing to warn of."""
  if name != "mixed_bfloat16" or cpu_has_bfloat16() is not False or accelerators():
    return None
  return ("--mixed_precision=mixed_bfloat16 on a CPU without bfloat16 arithmetic (AVX512-BF16, "
          "AMX or Arm BF16) and no GPU or TPU: TensorFlow emulates it, which can be many times "
          "slower than float32")


def needs_loss_scaling(name: str) -> bool:
  return name == "mixed_float16"


def wrap_optimizer(optimizer, name: str):
  """`optimizer` with dynamic loss scaling for float16 (`Mechanism.loss_scaling`: a
  `LossScaleOptimizer` for tf_keras); `optimizer` itself otherwise."""
  if needs_loss_scaling(name):
    return mechanism.of(optimizer).loss_scaling(optimizer)
  return optimizer


def inner_optimizer(optimizer):
  """The optimizer that owns the slots (`Mechanism.inner_optimizer`)."""
  return mechanism.of(optimizer).inner_optimizer(optimizer)
