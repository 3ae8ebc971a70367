"""`lth export`: a ticket's trained model to SavedModel/TFLite, checked in a fresh process, with a size table."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, List, Optional

import numpy as np

from lth_tf import data as data_lib
from lth_tf import io, mechanism, pruning, tickets, user_code
from lth_tf.data import export_sample
from lth_tf.pruning import structure
from lth_tf.compat import tf
from lth_tf.data.modality import MODALITIES, raw_inputs
from lth_tf.errors import TicketError, UserError
from lth_tf.export.formats import (ENCODINGS, FORMATS, QUANTIZATIONS, export, static_batch,
                                   tflite_bytes)
from lth_tf.export import xnnpack
from lth_tf.export.inference import inference_model

FLOAT_AGREEMENT = 0.999
# Starts the check's fresh interpreter (`subprocess.run`'s signature). The test suite starts it
# as a fork of an interpreter that has imported TensorFlow and nothing of the export
# (tests/launcher.py), which saves TensorFlow's import in every export test.
run_check = subprocess.run
INT8_ACCURACY_POINTS = 0.5


def raw_test_pixels(splits: data_lib.Splits) -> np.ndarray:
  """The test inputs as a client feeds them: images back in raw pixel scale [0, 255], features
  in their own units, token ids as they are."""
  return raw_inputs(MODALITIES.get(splits.modality), splits.x_test, splits.mean, splits.std)


def export_data(ticket: tickets.Ticket, data_dir: str) -> export_sample.ExportData:
  """The examples the export reads (`lth_tf.data.export_sample`): from the ticket's dataset
  where reading it runs no code the user did not name (a registered dataset, or user code named
  with `--trust_code`), otherwise from the examples the ticket carries; a ticket of untrusted
  dataset code that carries none is refused in one line before anything is imported."""
  if tickets.reads_carried_examples(ticket):
    return ticket.export_data
  user_code.check_consent(ticket.config, "the ticket", parts=("dataset",))
  splits = data_lib.load(ticket.config.dataset, data_dir)
  if tuple(splits.input_shape) != tuple(ticket.input_shape):
    raise TicketError(f"the ticket expects inputs {ticket.input_shape}, the data has "
                      f"{splits.input_shape}")
  if splits.modality != ticket.modality:
    raise TicketError(f"the ticket was found on {ticket.modality} inputs, the data is "
                      f"{splits.modality}")
  return export_sample.from_splits(splits, f"the test split of {ticket.config.dataset.name}")


def ship(ticket_ref: str, formats: List[str], quantize: str, out_dir: str, data_dir: str,
         latency_runs: int = 200, encoding: str = "compact") -> Dict:
  """Exports, checks parity, measures size and latency; returns the check results."""
  for name in formats:
    FORMATS.get(name)
  QUANTIZATIONS.get(quantize)
  ENCODINGS.get(encoding)
  if os.path.exists(out_dir) and os.listdir(out_dir):
    raise UserError(f"--out {out_dir} exists and is not empty")
  path = tickets.resolve(ticket_ref)
  ticket = tickets.read(path, consent=False)
  user_code.check_consent(ticket.config, f"the ticket {path}", parts=("model",))
  if not ticket.trained_weights:
    raise TicketError(f"{ticket_ref} holds no trained weights to export")
  data = export_data(ticket, data_dir)
  model = tickets.build_model(ticket, trained=True)
  client_model = inference_model(model, ticket.mean, ticket.std, ticket.modality,
                                 ticket.input_shape)
  nonzero = sum(int(np.count_nonzero(w)) for _, w, _ in pruning.mask_pairs(model))
  if nonzero > ticket.mask.num_remaining():
    raise TicketError("the trained weights are not sparse under the ticket's mask")
  logits = client_model.predict(data.test_inputs, batch_size=2000, verbose=0)
  # Written into a staging directory of this call's own (never a name the user may hold) and
  # moved into place whole (`io.published_directory`): a failure leaves `--out` as it was, and
  # what a killed export leaves is removed by the next export to the same `--out`.
  with io.published_directory(out_dir) as staging:
    results = _export_into(staging, client_model, model, ticket, data, logits, formats,
                           quantize, encoding, latency_runs)
  return results


def _export_into(staging, client_model, model, ticket, data, logits, formats, quantize, encoding,
                 latency_runs):
  """Writes every format, the reference outputs and the check's results into `staging`."""
  representative = data.calibration
  export(client_model, staging, formats, quantize, representative, encoding)
  dense_path = os.path.join(staging, "model_dense_float.tflite")
  with io.atomic_path(dense_path) as tmp:
    with open(tmp, "wb") as handle:
      handle.write(tflite_bytes(client_model, "dense_float", representative))
  io.write_arrays(os.path.join(staging, "reference.npz"),
                  {"images": data.test_inputs, "labels": data.test_labels, "logits": logits})
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  run_check([sys.executable, "-m", "lth_tf.export.check", f"--dir={staging}",
             f"--runs={latency_runs}", f"--caller={os.getpid()}"], check=True, env=env)
  results = io.read_json(os.path.join(staging, "check.json"))
  results["mask_nonzero_weights"] = ticket.mask.num_remaining()
  results["unmasked_kernel_nonzero_weights"] = _unmasked_kernel_nonzeros(model)
  results["exported_nonzero_kernel_weights"] = _saved_model_nonzero(staging, ticket)
  results["weights_remaining"] = ticket.mask.weights_remaining()
  results["tflite_kernels_checked"] = _tflite_kernels_checkable(model)
  results["tflite_static_batch"] = static_batch(client_model)
  results["tflite_encoding"] = encoding
  results["examples_from"] = data.source
  results["failures"] = _failures(results, quantize)
  io.write_json(os.path.join(staging, "check.json"), results)
  io.write_text(os.path.join(staging, "size_latency.md"), table(results))
  os.remove(os.path.join(staging, "reference.npz"))
  return results


def _unmasked_kernel_nonzeros(model) -> int:
  """Non-zero weights of the convolution kernels a TFLite file holds that the mask does not
  cover: depthwise kernels (of depthwise and separable convolutions, nested ones included),
  which tfmot's prune registry leaves dense."""
  def depthwise(layer):
    layers = mechanism.of(layer).keras.layers
    return isinstance(layer, (layers.DepthwiseConv2D, layers.SeparableConv2D))
  def kernel(layer):  # Keras 3 calls a DepthwiseConv2D's kernel `kernel`
    kernel = getattr(layer, "depthwise_kernel", None)
    return layer.kernel if kernel is None else kernel
  return int(sum(np.count_nonzero(np.asarray(kernel(layer)))
                 for layer in structure.descendants(model) if depthwise(layer)))


# Families whose pruned weights a TFLite file holds as the constant kernel of a matrix or
# convolution op, one tensor per weight; an embedding table is read by GATHER, recurrent
# kernels are split per gate into fused LSTM/RNN ops, and attention projections are reshaped
# into batch matrix products, so their non-zeros are counted in the SavedModel only.
_TFLITE_KERNEL_FAMILIES = frozenset({"conv", "fc", "custom", "depthwise"})


def _undecoded(layer) -> bool:
  """Convolutions whose TFLite ops (TRANSPOSE_CONV, CONV_3D) this check does not decode."""
  layers = mechanism.of(layer).keras.layers
  return isinstance(layer, (layers.Conv2DTranspose, layers.Conv3D))


def _tflite_kernels_checkable(model) -> bool:
  """Whether every pruned weight is the kernel of a TFLite matrix or convolution op that
  `tflite_sparse.kernel_nonzeros` decodes."""
  return all(entry.family in _TFLITE_KERNEL_FAMILIES and not _undecoded(entry.layer)
             for entry in structure.masked(model))


def _saved_model_nonzero(directory: str, ticket: tickets.Ticket) -> Optional[int]:
  """Non-zero entries of the exported prunable kernels, read back from the SavedModel; None
  without one (a TFLite model's are counted per model, from its file)."""
  path = os.path.join(directory, "saved_model")
  if not os.path.isdir(path):
    return None
  loaded = tf.saved_model.load(path)
  shapes = {tuple(ticket.mask[name].shape) for name in ticket.mask}
  # A Keras 3 model is saved as a plain trackable: its variables are the serving function's.
  variables = getattr(loaded, "variables", None) or loaded.signatures["serving_default"].variables
  return int(sum(np.count_nonzero(v.numpy()) for v in variables
                 if ("kernel" in v.name or "embeddings" in v.name) and tuple(v.shape) in shapes))


def _failures(results: Dict, quantize: str) -> List[str]:
  """Parity and sparsity failures: float agreement, int8 accuracy, and kernels' non-zeros.

  Float kernels must hold exactly the mask's non-zeros; int8 kernels at most that many (a
  kept weight far below its channel's scale rounds to zero; a pruned one never comes back).
  """
  out = []
  kept = results["mask_nonzero_weights"]
  unmasked = results.get("unmasked_kernel_nonzero_weights", 0)
  for name, model in results["models"].items():
    int8 = quantize == "int8" and "int8" in name
    if int8:
      gap = 100 * abs(model["accuracy"] - results["keras_accuracy"])
      if gap > INT8_ACCURACY_POINTS:
        out.append(f"{name}: accuracy {gap:.2f} points from Keras")
    elif model["agreement_with_keras"] < FLOAT_AGREEMENT:
      out.append(f"{name}: top-1 agreement {100 * model['agreement_with_keras']:.2f}%")
    nonzero = model.get("nonzero_kernel_weights")
    if not results.get("tflite_kernels_checked", True):
      nonzero = None  # counted in the SavedModel only (see _TFLITE_KERNEL_FAMILIES)
    if nonzero is not None:
      nonzero -= unmasked  # the dense depthwise kernels (int8: at most that many)
    if nonzero is not None and (nonzero > kept or (nonzero != kept and not int8)):
      out.append(f"{name}: kernels hold {nonzero} non-zero weights, the mask keeps {kept}")
  exported = results["exported_nonzero_kernel_weights"]
  if exported is not None and exported != kept:
    out.append(f"exported kernels hold {exported} non-zero weights, the mask keeps {kept}")
  return out


def _ms(model: Dict, key: str) -> str:
  return f"{model[key]:.4f}" if model.get(key) is not None else "-"


def _ratio(dense: Dict, model: Dict, key: str) -> str:
  """Dense median over this model's median, both from the same interleaved run."""
  if dense.get(key) is None or model.get(key) is None:
    return "-"
  return f"{dense[key] / model[key]:.2f}x"


def table(results: Dict) -> str:
  """Markdown: one row per exported model (size, parity, latency on the built-in kernels and
  with the default XNNPACK delegate, each against the dense float model timed interleaved),
  then, per sparse TFLite model, one row per layer saying whether it runs sparse and why."""
  lines = ["| model | bytes | gzip bytes | size vs dense float | non-zero kernel weights | "
           "top-1 agreement | accuracy | latency 1 thread (ms) | latency 2 threads (ms) | "
           "speed-up vs dense (1 thread) | XNNPACK 1 thread (ms) | XNNPACK 2 threads (ms) | "
           "XNNPACK vs dense (1 / 2 threads) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  dense = results["models"].get("model_dense_float.tflite", {})
  slower = []
  for name, m in sorted(results["models"].items()):
    ratio = f"1/{dense['bytes'] / m['bytes']:.1f}" if dense else "-"
    speedup = _ratio(dense, m, "latency_ms_1_threads")
    if (speedup != "-" and dense["latency_ms_1_threads"] <= m["latency_ms_1_threads"]
        and name != "model_dense_float.tflite"):
      slower.append(name)
    xnn = (f"{_ratio(dense, m, 'xnnpack_latency_ms_1_threads')} / "
           f"{_ratio(dense, m, 'xnnpack_latency_ms_2_threads')}")
    nonzero = f"{m['nonzero_kernel_weights']:,}" if "nonzero_kernel_weights" in m else "-"
    lines.append(f"| {name} | {m['bytes']:,} | {m['gzip_bytes']:,} | {ratio} | {nonzero} | "
                 f"{100 * m['agreement_with_keras']:.2f}% | {100 * m['accuracy']:.2f}% | "
                 f"{_ms(m, 'latency_ms_1_threads')} | {_ms(m, 'latency_ms_2_threads')} | "
                 f"{speedup} | {_ms(m, 'xnnpack_latency_ms_1_threads')} | "
                 f"{_ms(m, 'xnnpack_latency_ms_2_threads')} | {xnn} |")
  refused = [name for name, m in sorted(results["models"].items())
             if m.get("runs_with_default_delegates") is False]
  if refused:
    lines.append(f"\nThe interpreter's default XNNPACK delegate refuses {', '.join(refused)}: run it "
                 "with the built-in kernels only (LiteRT: experimental_op_resolver_type="
                 "BUILTIN_WITHOUT_DEFAULT_DELEGATES), as the built-in timings above do.")
  if slower:
    lines.append(f"\nNo speed-up from sparsity for {', '.join(slower)}: it is no faster than the "
                 "dense float model on the interpreter's CPU kernels.")
  exported = results["exported_nonzero_kernel_weights"]
  held = (f", the SavedModel's kernels hold {exported:,} non-zero"
          if exported is not None and exported >= 0 else "")
  for name, m in sorted(results["models"].items()):
    if m.get("layers") and name != "model_dense_float.tflite":
      sparse = sum(row["runs_here"] == "sparse" for row in m["layers"])
      eligible = sum(row["eligible"] for row in m["layers"])
      lines.append(f"\n{name}, per layer (XNNPACK sparse inference: {sparse} of "
                   f"{len(m['layers'])} layers run sparse here, {eligible} would where XNNPACK "
                   f"has sparse kernels; {results.get('runtime_sparse_kernels', '')}):\n")
      lines.append(xnnpack.table([xnnpack.LayerRow(**row) for row in m["layers"]]))
  if results.get("tflite_static_batch"):
    lines.append("\nThe TFLite models take a batch of one: the converter lowers the recurrent "
                 "layers' loops to TFLite's built-in ops only at a static shape (without this, it "
                 "needs Select TF ops: `converter.target_spec.supported_ops = [TFLITE_BUILTINS, "
                 "SELECT_TF_OPS]` and TensorFlow's kernels in the app); they were checked one "
                 "example at a time.")
  if not results.get("tflite_kernels_checked", True):
    lines.append("\nThe TFLite files' non-zero kernel weights are not compared with the mask: "
                 "embedding tables, recurrent kernels and attention projections are gathered, "
                 "split per gate or reshaped by the converter; the SavedModel's are compared.")
  lines.append(f"\nTFLite sparse encoding: {results.get('tflite_encoding', 'compact')}; weights remaining "
               f"{100 * results['weights_remaining']:.2f}%; mask keeps "
               f"{results['mask_nonzero_weights']:,} prunable weights{held}; Keras accuracy "
               f"{100 * results['keras_accuracy']:.2f}% on {results['examples']:,} test examples"
               f"{' (' + results['examples_from'] + ')' if results.get('examples_from') else ''}.")
  return "\n".join(lines)
