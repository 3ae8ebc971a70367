"""Parity, size and latency of exported models, measured in a fresh process (`python -m lth_tf.export.check`).

Reads `reference.npz` (raw test images, labels and the Keras model's logits) from the export
directory and writes `check.json`: for every exported model its top-1 agreement with Keras,
its accuracy, its file size raw and gzipped, and, for TFLite models, the non-zero entries of
its kernels (decoded from the file), its median latency at batch 1 with 1 and 2 threads on the LiteRT
interpreter's built-in kernels and with its default delegate (XNNPACK; every model timed
interleaved with the others, `lth_tf.export.latency`), whether the default delegate accepts it,
and per layer whether XNNPACK's sparse inference reads it sparse, and why not
(`lth_tf.export.xnnpack`).
"""
import argparse
import dataclasses
import glob
import gzip
import os
import sys
import threading
import time
from typing import Optional

import numpy as np


def tflite_logits(model, images: np.ndarray, threads: Optional[int] = 2,
                  default_delegates: bool = False) -> np.ndarray:
  """The interpreter's outputs for `images` (one batch) of a TFLite model given as a path or as
  bytes: on the built-in kernels, or with the interpreter's default delegates (XNNPACK on CPU);
  `threads` None: the interpreter's own default. A model converted with a static batch of one
  (recurrent layers: `lth_tf.export.formats`) is run one example at a time."""
  from ai_edge_litert.interpreter import Interpreter, OpResolverType  # pylint: disable=import-outside-toplevel
  source = {"model_content": model} if isinstance(model, (bytes, bytearray)) else {"model_path": model}
  if not default_delegates:
    source["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
  interpreter = Interpreter(num_threads=threads, **source)
  inp = interpreter.get_input_details()[0]
  out = interpreter.get_output_details()[0]
  batches = [images]
  if int(inp["shape_signature"][0]) == 1:
    batches = [images[i:i + 1] for i in range(len(images))]
  else:
    interpreter.resize_tensor_input(inp["index"], [len(images), *images.shape[1:]])
  interpreter.allocate_tensors()
  outputs = []
  for batch in batches:
    interpreter.set_tensor(inp["index"], batch.astype(inp["dtype"]))
    interpreter.invoke()
    outputs.append(np.array(interpreter.get_tensor(out["index"])))
  return np.concatenate(outputs)


def _runs_with_default_delegates(path: str, image: np.ndarray) -> bool:
  """Whether the interpreter with its default delegates (XNNPACK on CPU) accepts the model."""
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel
  try:
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
    interpreter.invoke()
  except (RuntimeError, ValueError):
    return False
  return True


def _sizes(path: str):
  if os.path.isdir(path):
    files = [f for f in glob.glob(os.path.join(path, "**"), recursive=True) if os.path.isfile(f)]
    blob = b"".join(open(f, "rb").read() for f in sorted(files))
  else:
    blob = open(path, "rb").read()
  return len(blob), len(gzip.compress(blob, 9))


def top1(outputs: np.ndarray) -> np.ndarray:
  """The predicted class of every row of a model's outputs: the largest logit or probability,
  or for one sigmoid column (a binary model) whether it exceeds 1/2."""
  outputs = np.asarray(outputs)
  if outputs.ndim == 2 and outputs.shape[1] == 1:
    return (outputs[:, 0] > 0.5).astype(np.int64)
  return outputs.argmax(1)


def _serve(path: str, images: np.ndarray) -> np.ndarray:
  """The SavedModel's serving outputs (its first output key: logits, or the probabilities of a
  model with a softmax or sigmoid head) for `images`."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  serve = tf.saved_model.load(path).signatures["serving_default"]
  (name, spec), = serve.structured_input_signature[1].items()
  key = sorted(serve.structured_outputs)[0]
  return np.concatenate([serve(**{name: tf.constant(images[i:i + 1000].astype(spec.dtype.as_numpy_dtype))})
                         [key].numpy() for i in range(0, len(images), 1000)])


def check(directory: str, runs: int = 200) -> dict:
  reference = np.load(os.path.join(directory, "reference.npz"), allow_pickle=False)
  images, labels, keras_top1 = reference["images"], reference["labels"], top1(reference["logits"])
  results = {"examples": int(len(labels)),
             "keras_accuracy": float((keras_top1 == labels).mean()), "models": {}}
  from lth_tf.export import latency, xnnpack  # pylint: disable=import-outside-toplevel
  paths = sorted(glob.glob(os.path.join(directory, "*.tflite")))
  timings = {}
  for threads in (1, 2):
    timings[f"latency_ms_{threads}_threads"] = latency.interleaved(
        paths, images[0], threads, runs, builtin_only=True)
    timings[f"xnnpack_latency_ms_{threads}_threads"] = latency.interleaved(
        paths, images[0], threads, runs)
  results["runtime_sparse_kernels"] = xnnpack.sparse_kernels_here()[1]
  if os.path.isdir(os.path.join(directory, "saved_model")):
    paths.append(os.path.join(directory, "saved_model"))
  for path in paths:
    name = os.path.basename(path)
    if name == "saved_model":
      logits = _serve(path, images)
      extra = {}
    else:
      from lth_tf.export import tflite_sparse  # pylint: disable=import-outside-toplevel
      logits = tflite_logits(path, images)
      extra = {key: values[path] for key, values in timings.items()}
      with open(path, "rb") as handle:
        blob = handle.read()
      extra["nonzero_kernel_weights"] = sum(tflite_sparse.kernel_nonzeros(blob).values())
      extra["layers"] = [dataclasses.asdict(row) for row in xnnpack.analyse(blob)]
      extra["runs_with_default_delegates"] = _runs_with_default_delegates(path, images[0])
    predicted = top1(logits)
    raw, zipped = _sizes(path)
    results["models"][name] = {
        "agreement_with_keras": float((predicted == keras_top1).mean()),
        "accuracy": float((predicted == labels).mean()),
        "bytes": raw, "gzip_bytes": zipped, **extra}
  return results


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


# Exit status of a check whose caller died: nothing is written.
CALLER_GONE = 3


def _follow(caller: int) -> None:
  """Ends this process when `caller` (the `lth export` that started it) is gone: at once where
  the kernel can tell (Linux: the parent's death signal, when the caller is the parent), and
  otherwise within a second, so that a killed export's check never writes afterwards."""
  if sys.platform.startswith("linux") and os.getppid() == caller:
    import ctypes  # pylint: disable=import-outside-toplevel
    import signal  # pylint: disable=import-outside-toplevel
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)

  def watch():
    while _alive(caller):
      time.sleep(0.5)
    os._exit(CALLER_GONE)  # pylint: disable=protected-access

  if not _alive(caller):
    os._exit(CALLER_GONE)  # pylint: disable=protected-access
  threading.Thread(target=watch, daemon=True).start()


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--dir", required=True)
  parser.add_argument("--runs", type=int, default=200)
  parser.add_argument("--caller", type=int, default=0,
                      help="the pid of the export that started the check: it ends with it")
  args = parser.parse_args(argv)
  if args.caller:
    _follow(args.caller)
  results = check(args.dir, args.runs)
  if args.caller and not _alive(args.caller):
    return CALLER_GONE
  from lth_tf import io  # pylint: disable=import-outside-toplevel
  io.write_json(os.path.join(args.dir, "check.json"), results)
  return 0


if __name__ == "__main__":
  sys.exit(main())
