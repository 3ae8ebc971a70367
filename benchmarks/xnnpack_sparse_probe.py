"""Does the LiteRT interpreter's default XNNPACK delegate run a sparse MobileNet-like graph sparse?

Builds MobileNet-like graphs at 96x96 (a 3x3 stride-2 first convolution on 3 channels, then
`--blocks` x (3x3 depthwise, 1x1 convolution to `--width` channels), global average pooling,
a dense classifier) in four shapes: first convolution padded 1 on each side (ZeroPadding2D +
'valid', the shape XNNPACK's sparse subgraph starts from) or TensorFlow 'same', and stride-1
depthwise 'same' or ZeroPadding2D + 'valid'. For each shape it converts the dense network and
the same network with `--density` of its 1x1 weights kept (random mask), stored sparse
(`EXPERIMENTAL_SPARSITY`: CSR behind DENSIFY) and stored dense, times the three interleaved
(`lth_tf.export.latency.interleaved`: default delegate, batch 1, `--runs` rounds after 20
warm-up runs) and prints the ratio of medians with `lth_tf.export.xnnpack`'s verdict.

  python benchmarks/xnnpack_sparse_probe.py --threads=1
"""
import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lth_tf.compat import keras, tf  # noqa: E402
from lth_tf.export import latency, xnnpack  # noqa: E402


def graph(symmetric_stem: bool, padded_depthwise: bool, blocks: int, width: int, size: int):
  inputs = keras.Input((size, size, 3))
  if symmetric_stem:
    x = keras.layers.ZeroPadding2D(1)(inputs)
    x = keras.layers.Conv2D(32, 3, 2, "valid", activation="relu")(x)
  else:
    x = keras.layers.Conv2D(32, 3, 2, "same", activation="relu")(inputs)
  for _ in range(blocks):
    if padded_depthwise:
      x = keras.layers.ZeroPadding2D(1)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="valid" if padded_depthwise else "same",
                                     activation="relu")(x)
    x = keras.layers.Conv2D(width, 1, activation="relu")(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(10)(x))


def convert(model, sparse: bool) -> bytes:
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if sparse else []
  return converter.convert()


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--density", type=float, default=0.1)
  parser.add_argument("--blocks", type=int, default=6)
  parser.add_argument("--width", type=int, default=128)
  parser.add_argument("--size", type=int, default=96)
  parser.add_argument("--threads", type=int, default=1)
  parser.add_argument("--runs", type=int, default=200)
  args = parser.parse_args(argv)
  rng = np.random.default_rng(0)
  print(f"{xnnpack.sparse_kernels_here()[1]}")
  print("| first conv | depthwise | dense (ms) | sparse, CSR+DENSIFY (ms) | zeros stored dense (ms) "
        "| dense / sparse | verdict on the 1x1 layers |")
  print("|---|---|---|---|---|---|---|")
  with tempfile.TemporaryDirectory() as tmp:
    for symmetric in (True, False):
      for padded in (True, False):
        model = graph(symmetric, padded, args.blocks, args.width, args.size)
        blobs = {"dense": convert(model, False)}
        for layer in model.layers:
          if type(layer) is keras.layers.Conv2D and layer.kernel_size == (1, 1):  # pylint: disable=unidiomatic-typecheck
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * (rng.random(kernel.shape) < args.density), bias])
        blobs["sparse"] = convert(model, True)
        blobs["zeros"] = convert(model, False)
        paths = {}
        for name, blob in blobs.items():
          paths[name] = os.path.join(tmp, f"{name}.tflite")
          with open(paths[name], "wb") as handle:
            handle.write(blob)
        image = np.random.default_rng(1).random((args.size, args.size, 3), np.float32)
        ms = latency.interleaved(list(paths.values()), image, args.threads, args.runs)
        dense, sparse, zeros = (ms[paths[k]] for k in ("dense", "sparse", "zeros"))
        verdicts = {row.reason.split(":")[0] for row in xnnpack.analyse(blobs["sparse"])
                    if row.kernel.startswith("1x1")}
        print(f"| {'pad 1 each side' if symmetric else 'same'} | "
              f"{'pad + valid' if padded else 'same'} | {dense:.3f} | {sparse:.3f} | {zeros:.3f} "
              f"| {dense / sparse:.2f}x | {', '.join(sorted(verdicts))} |", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
