"""Export of MobileNet-like models: which layers XNNPACK's sparse inference reads sparse and
why not (`lth_tf.export.xnnpack`), interleaved latency, and a tiny MobileNet ticket end to end."""
import os

import numpy as np
import pytest

from lth_tf import tickets
from lth_tf.compat import keras, tf
from lth_tf.config import (DatasetConfig, ExperimentConfig, ModelConfig, PruningConfig,
                           RuntimeConfig, TrainingConfig)
from lth_tf.export import latency, ship, xnnpack
from lth_tf.lottery import LotteryExperiment

SPARSE_HERE = (True, "test: sparse kernels")
DENSE_HERE = (False, "runtime: test CPU without sparse kernels")


def small_net(stem_same=False, blocks=2, head="mean"):
  """stem 3x3/2 on 3 channels, `blocks` x (3x3 depthwise, 1x1 conv), mean or flatten, dense."""
  inputs = keras.Input((16, 16, 3))
  if stem_same:
    x = keras.layers.Conv2D(8, 3, 2, "same", activation="relu")(inputs)
  else:
    x = keras.layers.ZeroPadding2D(1)(inputs)
    x = keras.layers.Conv2D(8, 3, 2, "valid", activation="relu")(x)
  for _ in range(blocks):
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(48, 1, activation="relu")(x)
  x = (keras.layers.GlobalAveragePooling2D() if head == "mean" else keras.layers.Flatten())(x)
  return keras.Model(inputs, keras.layers.Dense(10)(x))


def prune_pointwise(model, density, seed=0):
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if type(layer) is keras.layers.Conv2D and layer.kernel_size == (1, 1):  # pylint: disable=unidiomatic-typecheck
      kernel, bias = layer.get_weights()
      layer.set_weights([kernel * (rng.random(kernel.shape) < density), bias])
  return model


def convert(model, sparse=True, int8=False):
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if sparse else []
  if int8:
    converter.optimizations = [tf.lite.Optimize.DEFAULT] + converter.optimizations
    images = np.random.default_rng(0).random((8, 16, 16, 3), np.float32)
    converter.representative_dataset = lambda: ([image[None]] for image in images)
  return converter.convert()


def rows_by_op(blob):
  rows = xnnpack.analyse(blob)
  return {op: [row for row in rows if row.op == op]
          for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}


@pytest.fixture(scope="module")
def sparse_blob():
  return convert(prune_pointwise(small_net(), 0.1))


def pointwise(rows):
  return [row for row in rows["CONV_2D"] if row.kernel.startswith("1x1")]


def test_eligible_graph_runs_its_1x1_convolutions_sparse(sparse_blob, monkeypatch):
  monkeypatch.setattr(xnnpack, "sparse_kernels_here", lambda: SPARSE_HERE)
  rows = rows_by_op(sparse_blob)
  assert len(pointwise(rows)) == 2
  for row in pointwise(rows):
    assert row.eligible and row.runs_here == "sparse", row
    assert row.reason.startswith("1x1 convolution in a sparse subgraph")
    assert row.density < 0.2
  (stem,) = [row for row in rows["CONV_2D"] if row.kernel.startswith("3x3")]
  assert not stem.eligible and "entry" in stem.reason
  assert all("layer type: depthwise" in row.reason for row in rows["DEPTHWISE_CONV_2D"])
  assert "layer type" in rows["FULLY_CONNECTED"][0].reason


def test_a_cpu_without_sparse_kernels_runs_them_dense_and_says_so(sparse_blob, monkeypatch):
  monkeypatch.setattr(xnnpack, "sparse_kernels_here", lambda: DENSE_HERE)
  for row in pointwise(rows_by_op(sparse_blob)):
    assert row.eligible and row.runs_here == "dense"
    assert row.reason.startswith("runtime: test CPU") and "would run sparse" in row.reason


def test_this_cpu_is_judged_by_xnnpack_rule():
  """XNNPACK's rule: no sparse kernels on an x86 CPU with AVX, sparse kernels elsewhere."""
  import platform  # pylint: disable=import-outside-toplevel
  from numpy._core._multiarray_umath import __cpu_features__  # pylint: disable=import-outside-toplevel
  x86_avx = (platform.machine().lower() in ("x86_64", "amd64")
             and __cpu_features__.get("AVX", False))
  runs, why = xnnpack.sparse_kernels_here()
  assert runs == (not x86_avx)
  assert why.startswith("runtime:") == x86_avx


@pytest.mark.parametrize("density, reason", [(0.5, "density too high"), (0.3, "1x1 convolution")])
def test_the_two_thirds_zeros_rule(density, reason, monkeypatch):
  monkeypatch.setattr(xnnpack, "sparse_kernels_here", lambda: SPARSE_HERE)
  rows = pointwise(rows_by_op(convert(prune_pointwise(small_net(), density))))
  assert all(row.reason.startswith(reason) for row in rows), rows


def test_same_padded_stride_2_stem_leaves_no_sparse_subgraph(monkeypatch):
  monkeypatch.setattr(xnnpack, "sparse_kernels_here", lambda: SPARSE_HERE)
  rows = rows_by_op(convert(prune_pointwise(small_net(stem_same=True), 0.1)))
  stem = next(row for row in rows["CONV_2D"] if row.kernel.startswith("3x3"))
  assert "'same' padding" in stem.reason
  assert all(not row.eligible and "no sparse subgraph" in row.reason for row in pointwise(rows))


def test_subgraph_must_end_at_a_mean(monkeypatch):
  monkeypatch.setattr(xnnpack, "sparse_kernels_here", lambda: SPARSE_HERE)
  rows = pointwise(rows_by_op(convert(prune_pointwise(small_net(head="flatten"), 0.1))))
  assert all(not row.eligible and row.reason.startswith("graph shape: RESHAPE is not allowed")
             for row in rows), rows


def test_weights_stored_dense_ask_for_no_sparse_inference(monkeypatch):
  monkeypatch.setattr(xnnpack, "sparse_kernels_here", lambda: SPARSE_HERE)
  rows = pointwise(rows_by_op(convert(prune_pointwise(small_net(), 0.1), sparse=False)))
  assert all(row.reason.startswith("storage") for row in rows), rows


def test_int8_never_runs_sparse(monkeypatch):
  monkeypatch.setattr(xnnpack, "sparse_kernels_here", lambda: SPARSE_HERE)
  rows = xnnpack.analyse(convert(prune_pointwise(small_net(), 0.1), int8=True))
  assert rows and all(not row.eligible and row.reason.startswith("quantised") for row in rows)


# tf_keras's MobileNetV2 stem ('same' padding: not a sparse entry) is checked on the shipped
# MobileNetV2 ticket's TFLite file (tests/tickets/test_tickets.py), which converts that model.


def test_interleaved_latency_times_every_model_and_skips_refused(sparse_blob, tmp_path):
  good = tmp_path / "good.tflite"
  good.write_bytes(sparse_blob)
  bad = tmp_path / "bad.tflite"
  bad.write_bytes(b"not a model")
  image = np.zeros((16, 16, 3), np.float32)
  medians = latency.interleaved([str(good), str(bad)], image, threads=1, runs=5, warmup=1)
  assert medians[str(bad)] is None and medians[str(good)] > 0


@pytest.fixture(scope="module")
def mobile_ticket(tmp_path_factory):
  root = tmp_path_factory.mktemp("mobile")
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic_cifar", validation_size=500),
      model=ModelConfig(name="mobilenetv1_025"),
      training=TrainingConfig(iterations=20, eval_every=10, batch_size=16),
      pruning=PruningConfig(levels=1, scope="global", global_layers="pointwise",
                            global_rate=0.9, rewind_iteration=5),
      runtime=RuntimeConfig(root_dir=str(root / "runs"), data_dir=str(root), progress=False))
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  return tickets.save(experiment.layout.directory, 0, 1, str(root / "ticket")), root


def test_mobile_ticket_export_parity_and_per_layer_table(mobile_ticket, tmp_path):
  path, root = mobile_ticket
  out = tmp_path / "out"
  results = ship.ship(path, ["tflite"], "none", str(out), str(root), latency_runs=3)
  assert results["failures"] == []
  # The depthwise kernels stay dense (tfmot's registry lists none of their weights prunable).
  assert results["unmasked_kernel_nonzero_weights"] > 0
  model = results["models"]["model_none.tflite"]
  assert model["nonzero_kernel_weights"] == (results["mask_nonzero_weights"]
                                             + results["unmasked_kernel_nonzero_weights"])
  assert model["agreement_with_keras"] >= ship.FLOAT_AGREEMENT
  assert model["xnnpack_latency_ms_1_threads"] > 0
  assert results["models"]["model_dense_float.tflite"]["xnnpack_latency_ms_2_threads"] > 0
  layers = model["layers"]
  pointwise_rows = [row for row in layers if row["kernel"].startswith("1x1")]
  assert len(pointwise_rows) == 13
  runs, why = xnnpack.sparse_kernels_here()
  for row in pointwise_rows:
    assert row["eligible"], row
    assert row["runs_here"] == ("sparse" if runs else "dense")
    assert runs or row["reason"].startswith(why)
  text = (out / "size_latency.md").read_text()
  assert "per layer (XNNPACK sparse inference" in text and "XNNPACK vs dense" in text
  assert os.path.exists(out / "check.json")
