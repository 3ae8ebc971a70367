"""Export: SavedModel and sparse TFLite agree with Keras in a fresh process; zeros match the mask."""
import os

import numpy as np
import pytest

from lth_tf import tickets
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig,
                           TrainingConfig)
from lth_tf.errors import ConfigError, UserError
from lth_tf.export import ship
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
  results = ship.ship(ticket_path, ["saved_model", "tflite"], "none", str(out), str(tmp_path),
                      latency_runs=20)
  assert results["failures"] == []
  models = results["models"]
  assert set(models) == {"saved_model", "model_none.tflite", "model_dense_float.tflite"}
  for name, model in models.items():
    assert model["agreement_with_keras"] >= ship.FLOAT_AGREEMENT, name
  ticket = tickets.read(ticket_path)
  assert results["exported_nonzero_kernel_weights"] == ticket.mask.num_remaining()
  assert models["model_none.tflite"]["bytes"] < models["model_dense_float.tflite"]["bytes"] / 5
  assert models["model_none.tflite"]["latency_ms_1_threads"] > 0
  assert (out / "size_latency.md").read_text().startswith("| model |")
  assert not os.path.exists(str(out) + ".partial")
  assert not (out / "reference.npz").exists()


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


def test_bad_export_requests(ticket_path, tmp_path):
  with pytest.raises(ConfigError, match="unknown export format"):
    ship.ship(ticket_path, ["onnx"], "none", str(tmp_path / "a"), str(tmp_path))
  with pytest.raises(ConfigError, match="unknown quantization"):
    ship.ship(ticket_path, ["tflite"], "int4", str(tmp_path / "a"), str(tmp_path))
  (tmp_path / "full").mkdir()
  (tmp_path / "full" / "keep.txt").write_text("mine")
  with pytest.raises(UserError, match="not empty"):
    ship.ship(ticket_path, ["tflite"], "none", str(tmp_path / "full"), str(tmp_path))
  assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
