"""Export: SavedModel and sparse TFLite agree with Keras in a fresh process; zeros match the mask."""
import os

import numpy as np
import pytest

from lth_tf import io, tickets
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig,
                           TrainingConfig)
from lth_tf.errors import ConfigError, UserError
from lth_tf.export import check, ship
from lth_tf.lottery import LotteryExperiment


@pytest.fixture(scope="module")
def ticket_path(tmp_path_factory):
  root = tmp_path_factory.mktemp("export")
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=200, eval_every=100),
      pruning=PruningConfig(levels=3, fc_rate=0.7, output_rate=0.3),
      runtime=RuntimeConfig(root_dir=str(root / "runs"), data_dir=str(root), progress=False))
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  return tickets.save(experiment.layout.directory, 0, 3, str(root / "ticket"))


def test_float_export_parity_zeros_and_sizes(ticket_path, tmp_path):
  out = tmp_path / "float"
  # A directory of the user's that happens to be named like a staging directory is not touched.
  (tmp_path / "float.partial").mkdir()
  (tmp_path / "float.partial" / "mine.txt").write_text("keep me")
  results = ship.ship(ticket_path, ["saved_model", "tflite"], "none", str(out), str(tmp_path),
                      latency_runs=20)
  assert results["failures"] == []
  models = results["models"]
  assert set(models) == {"saved_model", "model_none.tflite", "model_dense_float.tflite"}
  for name, model in models.items():
    assert model["agreement_with_keras"] >= ship.FLOAT_AGREEMENT, name
  ticket = tickets.read(ticket_path)
  assert results["exported_nonzero_kernel_weights"] == ticket.mask.num_remaining()
  for name in ("model_none.tflite", "model_dense_float.tflite"):  # decoded from the files
    assert models[name]["nonzero_kernel_weights"] == ticket.mask.num_remaining()
  assert models["model_none.tflite"]["runs_with_default_delegates"]
  assert models["model_none.tflite"]["bytes"] < models["model_dense_float.tflite"]["bytes"] / 5
  assert models["model_none.tflite"]["latency_ms_1_threads"] > 0
  assert (out / "size_latency.md").read_text().startswith("| model |")
  assert (tmp_path / "float.partial" / "mine.txt").read_text() == "keep me"
  assert sorted(os.listdir(tmp_path)) == ["float", "float.partial"]  # no staging left behind
  assert oct(os.stat(out).st_mode & 0o777) == oct(0o777 & ~_umask())
  assert not (out / "reference.npz").exists()


def _umask():
  mask = os.umask(0)
  os.umask(mask)
  return mask


def test_saved_model_takes_raw_pixels(ticket_path, tmp_path):
  from lth_tf import data as data_lib
  from lth_tf.compat import tf
  out = tmp_path / "sm"
  ship.ship(ticket_path, ["saved_model"], "none", str(out), str(tmp_path), latency_runs=5)
  ticket = tickets.read(ticket_path)
  splits = data_lib.load(ticket.config.dataset, str(tmp_path))
  model = tickets.build_model(ticket, trained=True)
  expected = model(splits.x_test[:50], training=False).numpy()
  serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
  raw = ship.raw_test_pixels(splits)[:50]
  got = serve(pixels=tf.constant(raw))["logits"].numpy()
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_int8_export_accuracy_within_half_a_point(ticket_path, tmp_path):
  results = ship.ship(ticket_path, ["tflite"], "int8", str(tmp_path / "int8"), str(tmp_path),
                      latency_runs=5)
  assert results["failures"] == []
  int8 = results["models"]["model_int8.tflite"]
  assert abs(int8["accuracy"] - results["keras_accuracy"]) <= 0.005
  assert int8["bytes"] < results["models"]["model_dense_float.tflite"]["bytes"] / 10


def test_a_tflite_only_export_reports_no_savedmodel_count(ticket_path, tmp_path):
  out = tmp_path / "tflite"
  results = ship.ship(ticket_path, ["tflite"], "none", str(out), str(tmp_path), latency_runs=2)
  assert results["failures"] == []
  assert results["exported_nonzero_kernel_weights"] is None  # no SavedModel to read back
  kept = tickets.read(ticket_path).mask.num_remaining()
  assert results["models"]["model_none.tflite"]["nonzero_kernel_weights"] == kept
  text = ship.table(results)
  last = text.split("\n")[-1]
  assert "-1 non-zero" not in text and "kernels hold" not in last, last
  assert f"mask keeps {kept:,} prunable weights; Keras accuracy" in last
  assert (out / "size_latency.md").read_text() == text
  assert io.read_json(str(out / "check.json"))["exported_nonzero_kernel_weights"] is None


def test_bad_export_requests(ticket_path, tmp_path):
  with pytest.raises(ConfigError, match="unknown export format"):
    ship.ship(ticket_path, ["onnx"], "none", str(tmp_path / "a"), str(tmp_path))
  with pytest.raises(ConfigError, match="unknown quantization"):
    ship.ship(ticket_path, ["tflite"], "int4", str(tmp_path / "a"), str(tmp_path))
  with pytest.raises(ConfigError, match="unknown TFLite sparse encoding"):
    ship.ship(ticket_path, ["tflite"], "none", str(tmp_path / "a"), str(tmp_path), encoding="csc")
  assert not (tmp_path / "a").exists()
  (tmp_path / "full").mkdir()
  (tmp_path / "full" / "keep.txt").write_text("mine")
  with pytest.raises(UserError, match="not empty"):
    ship.ship(ticket_path, ["tflite"], "none", str(tmp_path / "full"), str(tmp_path))
  assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def _sparse_dense_model(block_aligned: bool, seed: int = 0):
  """600 -> 40 -> 10 dense layers at ~5% density; kept weights in aligned 1x4 input blocks or scattered."""
  from lth_tf.compat import keras
  rng = np.random.default_rng(seed)
  model = keras.Sequential([keras.Input((600,)), keras.layers.Dense(40, activation="relu"),
                            keras.layers.Dense(10)])
  for layer in model.layers:
    kernel, bias = layer.get_weights()
    if block_aligned:  # whole groups of 4 consecutive inputs kept or pruned together
      keep = np.repeat(rng.random((kernel.shape[0] // 4, kernel.shape[1])) < 0.05, 4, axis=0)
    else:
      keep = rng.random(kernel.shape) < 0.05
    layer.set_weights([kernel * keep, bias])
  return model


def _tflite(model, quantize):
  from lth_tf.export import formats
  rng = np.random.default_rng(1)
  return formats.tflite_bytes(model, quantize, rng.normal(size=(20, 600)).astype(np.float32),
                              encoding="converter")


def _invoke(blob, x):
  return check.tflite_logits(blob, x, threads=None)


@pytest.mark.parametrize("block_aligned", [True, False])
def test_compact_encoding_keeps_exact_weights_and_outputs(block_aligned):
  from tensorflow.lite.tools import flatbuffer_utils
  from lth_tf.export import tflite_sparse
  model = _sparse_dense_model(block_aligned)
  original = _tflite(model, "none")
  tensors = flatbuffer_utils.convert_bytearray_to_object(bytearray(original)).subgraphs[0].tensors
  block_encoded = [t for t in tensors if t.sparsity is not None and len(t.sparsity.blockMap)]
  # The converter reads aligned blocks as 1x4 blocks (the case compact must rewrite).
  assert bool(block_encoded) == block_aligned
  compact = tflite_sparse.compact(original)
  kept = sum(int(np.count_nonzero(layer.get_weights()[0])) for layer in model.layers)
  assert sum(tflite_sparse.kernel_nonzeros(original).values()) == kept
  assert sum(tflite_sparse.kernel_nonzeros(compact).values()) == kept
  parsed = flatbuffer_utils.convert_bytearray_to_object(bytearray(compact))
  decoded = {}
  for tensor in parsed.subgraphs[0].tensors:
    if tensor.sparsity is not None:
      assert len(tensor.sparsity.blockMap) == (1 if block_aligned else 0)
      decoded[tuple(tensor.shape)] = tflite_sparse.decode(parsed, tensor)
  for layer in model.layers:  # TFLite stores dense kernels as [out, in]
    kernel = layer.get_weights()[0].T
    np.testing.assert_array_equal(decoded[kernel.shape], kernel)
  x = np.random.default_rng(2).normal(size=(16, 600)).astype(np.float32)
  np.testing.assert_allclose(_invoke(compact, x), model(x).numpy(), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(_invoke(compact, x), _invoke(original, x), rtol=1e-6, atol=1e-6)
  # Never larger: aligned blocks stay blocks, scattered float weights are already element-wise.
  assert len(compact) <= len(original)


def test_compact_int8_uses_one_byte_indices_and_keeps_zeros():
  from tensorflow.lite.python import schema_py_generated as schema
  from tensorflow.lite.tools import flatbuffer_utils
  from lth_tf.export import tflite_sparse
  model = _sparse_dense_model(block_aligned=False, seed=3)
  original = _tflite(model, "int8")
  compact = tflite_sparse.compact(original)
  parsed = flatbuffer_utils.convert_bytearray_to_object(bytearray(compact))
  sparse = [t for t in parsed.subgraphs[0].tensors if t.sparsity is not None]
  assert sparse
  for tensor in sparse:
    assert tensor.type == schema.TensorType.INT8
    assert tensor.sparsity.dimMetadata[1].arrayIndicesType == schema.SparseIndexVector.Uint8Vector
  kept = sum(int(np.count_nonzero(layer.get_weights()[0])) for layer in model.layers)
  before = sum(tflite_sparse.kernel_nonzeros(original).values())
  assert before == sum(tflite_sparse.kernel_nonzeros(compact).values()) <= kept
  x = np.random.default_rng(4).normal(size=(16, 600)).astype(np.float32)
  np.testing.assert_array_equal(_invoke(compact, x), _invoke(original, x))
  assert len(compact) < 0.85 * len(original)
