"""`lth transfer` on synthetic data: adapters, head replacement, branch starts, FLOPs, errors."""
import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import launcher
from lth_tf import compute, io, models, pruning, tickets
from lth_tf.config import (DatasetConfig, ExperimentConfig, ModelConfig, PruningConfig, RuntimeConfig, TrainingConfig)
from lth_tf.settings import TransferConfig
from lth_tf.data import RawData
from lth_tf.errors import DataError, TicketError, UserError
from lth_tf.lottery import BranchFiles, LotteryExperiment, derive_seed
from lth_tf.lottery.replicate import ReplicateModel
from lth_tf.pruning import Mask
from lth_tf.transfer import TransferExperiment, adapt_raw, adapt_ticket, choose, target_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET = dict(log=lambda line: None)


# ---- adapters ---------------------------------------------------------------------------------

def test_adapter_rule_is_chosen_from_the_shapes():
  assert choose((32, 32, 3), (28, 28, 1)).steps == ("rgb_to_grey", "resize")
  assert choose((28, 28, 1), (32, 32, 3)).steps == ("grey_to_rgb", "resize")
  assert choose((28, 28, 3), (28, 28, 1)).steps == ("rgb_to_grey",)
  assert choose((28, 28, 1), (32, 32, 1)).steps == ("resize",)
  assert choose((32, 32, 3), (32, 32, 3)).steps == ()
  with pytest.raises(TicketError, match="4-channel"):
    choose((32, 32, 4), (28, 28, 1))
  with pytest.raises(TicketError, match="must be images"):
    choose((784,), (28, 28, 1))


def test_rgb_to_grey_and_resize_values():
  rgb = np.zeros((2, 32, 32, 3), np.uint8)
  rgb[0] = (200, 100, 50)       # constant colour: luma 0.299*200 + 0.587*100 + 0.114*50 = 124.2
  rgb[1, :, 16:] = 255          # left half black, right half white
  out = choose((32, 32, 3), (28, 28, 1))(rgb)
  assert out.shape == (2, 28, 28, 1) and out.dtype == np.uint8
  assert (out[0] == 124).all()
  assert (out[1, :, :13] == 0).all() and (out[1, :, 15:] == 255).all()
  assert 0 < out[1, 0, 13:15].astype(int).mean() < 255  # the edge is interpolated


def test_grey_to_rgb_repeats_the_channel_and_adapts_a_whole_dataset():
  grey = np.arange(4 * 28 * 28, dtype=np.int64).reshape(4, 28, 28) % 256
  raw = RawData(grey.astype(np.uint8), np.arange(4), grey[:2].astype(np.uint8), np.arange(2), 4)
  adapted = adapt_raw(raw, choose((28, 28, 1), (32, 32, 3)))
  assert adapted.x_train.shape == (4, 32, 32, 3) and adapted.x_test.shape == (2, 32, 32, 3)
  assert (adapted.x_train[..., 0] == adapted.x_train[..., 2]).all()
  np.testing.assert_array_equal(adapted.y_train, raw.y_train)
  same = choose((28, 28, 1), (28, 28, 3))(grey[..., None].astype(np.uint8))
  np.testing.assert_array_equal(same[..., 1], grey)


# ---- FLOPs ------------------------------------------------------------------------------------

def test_flops_fall_with_density_by_the_expected_ratio():
  model = pruning.wrap_model(models.build(ModelConfig("lenet300_100"), (28, 28, 1), 10, seed=0))
  weights = pruning.prunable_weights(model)
  dense = Mask.ones_like(weights)
  rng = np.random.default_rng(0)
  quarter = Mask.from_dict({n: rng.random(w.shape) < 0.25 for n, w in weights.items()})
  full = compute.branch_compute(model, dense, 60, 100, 1.0)
  sparse = compute.branch_compute(model, quarter, 60, 100, 1.0)
  assert full["forward_macs_per_example"] == 784 * 300 + 300 * 100 + 100 * 10
  assert full["train_flops"] == 6 * full["forward_macs_per_example"] * 60 * 100
  assert sparse["train_flops"] / full["train_flops"] == pytest.approx(
      quarter.weights_remaining(), rel=1e-12)
  conv = pruning.wrap_model(models.build(ModelConfig("conv2"), (32, 32, 3), 10, seed=0))
  positions = compute.output_positions(conv)
  assert positions["conv1"] == 32 * 32 and positions["fc1"] == 1
  half = {"conv1/kernel": 3 * 3 * 3 * 64 / 2}
  assert compute.forward_macs(positions, half) == 3 * 3 * 3 * 32 * 32 * 32


# ---- a ticket and its transfers ----------------------------------------------------------------

def _fast(root, **dataset):
  return ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500, **dataset),
      training=TrainingConfig(iterations=40, eval_every=20, batch_size=50),
      pruning=PruningConfig(levels=1, fc_rate=0.5, output_rate=0.2),
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False))


@pytest.fixture(scope="module")
def ticket(tmp_path_factory):
  """A level-1 ticket (LeNet, 28x28x1, 10 classes) found on synthetic data."""
  root = tmp_path_factory.mktemp("source")
  experiment = LotteryExperiment(_fast(root), **QUIET)
  experiment.run()
  path = tickets.save(experiment.layout.directory, 0, 1, str(root / "ticket"), str(root))
  return path, tickets.read(path), experiment


def _transfer(ticket, root, transfer: TransferConfig, explicit=None, learning_rate=None,
              **dataset):
  path, loaded, _ = ticket
  base = _fast(root, **dataset)
  base = base.replace(runtime=dataclasses.replace(base.runtime, ticket=path))
  if learning_rate is not None:  # the value of --learning_rate (used only where explicit)
    base = base.replace(training=dataclasses.replace(base.training, learning_rate=learning_rate))
  return TransferExperiment(target_config(loaded, base, transfer, explicit or {}), transfer, **QUIET)


@pytest.fixture(scope="module")
def across(ticket, tmp_path_factory):
  """The ticket transferred to 3 classes of 32x32x3 data (adapter and a new head)."""
  experiment = _transfer(ticket, tmp_path_factory.mktemp("across"),
                         TransferConfig(target_dataset="synthetic_cifar", target_classes=(0, 1, 2)))
  return experiment, experiment.run()


def _branch(experiment, branch, name):
  return io.read_arrays(getattr(BranchFiles(experiment.layout.branch_dir(0, 0, branch)), name))


def test_ticket_records_its_search_compute(ticket):
  _, loaded, experiment = ticket
  compute_file = io.read_json(experiment.layout.compute_file)
  assert loaded.search_compute["levels_trained"] == 2
  assert loaded.search_compute["iterations_trained"] == 80
  assert compute_file["total"]["train_flops"] == pytest.approx(loaded.search_compute["train_flops"])


def test_transfer_trains_every_branch_with_an_adapted_head(ticket, across):
  _, loaded, _ = ticket
  experiment, rows = across
  assert [r["branch"] for r in rows] == ["ticket", "dense", "reinit", "random_prune"]
  described = io.read_json(experiment.layout.config_file)["transfer"]
  assert described["adapter"] == ["rgb_to_grey", "resize"] and described["head_replaced"]
  mask = Mask.from_dict(_branch(experiment, "ticket", "mask"))
  assert mask["output/kernel"].shape == (100, 3)
  assert mask["output/kernel"].sum() == round(loaded.mask["output/kernel"].mean() * 300)
  start = _branch(experiment, "ticket", "start_weights")
  for name in ("fc1/kernel", "fc2/kernel", "fc1/bias"):
    expected = loaded.rewind_weights[name] * (loaded.mask[name] if name in loaded.mask else 1)
    np.testing.assert_array_equal(start[name], expected)
  # The new head starts from freshly initialised weights of the target model under its own
  # mask, not from the ticket's θk head.
  replicate = ReplicateModel(experiment.config, experiment.data, 0, experiment.strategy)
  fresh = replicate.fresh_weights(derive_seed(0, "transfer_head"))
  for name in ("output/kernel", "output/bias"):
    head_mask = mask[name] if name in mask else 1
    np.testing.assert_array_equal(start[name], fresh[name] * head_mask)
  kept = mask["output/kernel"]
  assert not np.allclose(start["output/kernel"][kept],
                         loaded.rewind_weights["output/kernel"][:, :3][kept])
  assert (Mask.from_dict(_branch(experiment, "dense", "mask")).weights_remaining() == 1.0)
  assert Mask.from_dict(_branch(experiment, "reinit", "mask")) == mask
  assert not np.array_equal(_branch(experiment, "reinit", "start_weights")["fc1/kernel"],
                            start["fc1/kernel"])
  random = Mask.from_dict(_branch(experiment, "random_prune", "mask"))
  assert random != mask and random.layer_counts() == mask.layer_counts()
  by_branch = {r["branch"]: r for r in rows}
  assert by_branch["ticket"]["train_flops"] / by_branch["dense"]["train_flops"] == pytest.approx(
      mask.weights_remaining(), rel=1e-9)


def test_head_mask_is_seeded(ticket):
  _, loaded, _ = ticket
  shapes = {n: np.shape(v) for n, v in loaded.rewind_weights.items()}
  shapes.update({"output/kernel": (100, 4), "output/bias": (4,)})
  kinds = {"fc1/kernel": "fc", "fc2/kernel": "fc", "output/kernel": "output"}
  head = {"output/kernel": np.ones((100, 4), np.float32), "output/bias": np.zeros(4, np.float32)}
  first = adapt_ticket(loaded, shapes, kinds, 4, head, seed=1)
  assert first[2] and first[1]["output/kernel"].shape == (100, 4)
  assert first[0] == adapt_ticket(loaded, shapes, kinds, 4, head, seed=1)[0]
  assert first[0] != adapt_ticket(loaded, shapes, kinds, 4, head, seed=2)[0]
  kept = adapt_ticket(loaded, {n: np.shape(v) for n, v in loaded.rewind_weights.items()}, kinds,
                      10, head, seed=1)
  assert not kept[2] and kept[0] == loaded.mask


def test_optimizer_transfer_with_a_target_ticket_and_the_report(ticket, tmp_path):
  path, loaded, _ = ticket
  experiment = _transfer(ticket, tmp_path, TransferConfig(
      target_dataset="synthetic", target_optimizer="sgd", target_ticket=path),
      explicit={"training": ("learning_rate",)}, learning_rate=0.0042,
      train_examples_per_class=20)
  assert experiment.config.training.optimizer == "sgd"
  # An explicit --learning_rate wins over the ticket's; without it the ticket's rate holds.
  assert loaded.config.training.learning_rate != 0.0042
  assert experiment.config.training.learning_rate == 0.0042
  implicit = _transfer(ticket, tmp_path / "implicit", TransferConfig(target_dataset="synthetic"),
                       learning_rate=0.0042)
  assert implicit.config.training.learning_rate == loaded.config.training.learning_rate
  assert experiment.adapter.steps == ()
  rows = experiment.run()
  assert [r["branch"] for r in rows][-1] == "target_ticket"
  assert len(experiment.data.y_train) == 200
  from lth_tf.report import report
  written = report.build([experiment.layout.directory], str(tmp_path / "report"))
  text = open(written["report.md"]).read()
  assert "## Cost against benefit" in text and "| 20 |" in text
  assert os.path.getsize(written["transfer.png"]) > 10_000


@pytest.mark.parametrize("transfer,dataset,error,message", [
    (TransferConfig(target_dataset="imagenet_offline"), {}, UserError, "unknown dataset"),
    (TransferConfig(target_dataset=""), {}, UserError, "needs --target_dataset"),
    (TransferConfig(target_dataset="synthetic"), {"train_examples_per_class": 10_000}, DataError,
     "train_examples_per_class=10000"),
    (TransferConfig(target_dataset="synthetic_cifar", target_ticket="SELF"), {}, TicketError,
     "was found on synthetic"),
    (TransferConfig(target_dataset="synthetic"), {"train_examples_per_class": -3}, UserError,
     "train_examples_per_class must be >= 0"),
    (TransferConfig(target_dataset="synthetic", target_optimizer="lbfgs"), {}, UserError,
     "optimizer must be one of"),
])
def test_bad_input_fails_before_anything_is_written(ticket, tmp_path, transfer, dataset, error,
                                                     message):
  if transfer.target_ticket == "SELF":
    transfer = dataclasses.replace(transfer, target_ticket=ticket[0])
  with pytest.raises(error, match=message):
    _transfer(ticket, tmp_path / "runs", transfer, **dataset)
  assert not (tmp_path / "runs").exists()


def test_the_model_is_the_tickets_and_the_target_is_named_by_target_flags(ticket, tmp_path):
  with pytest.raises(UserError, match="--model cannot change it"):
    _transfer(ticket, tmp_path, TransferConfig(target_dataset="synthetic"),
              explicit={"model": ("name",)})
  with pytest.raises(UserError, match="not --dataset, --classes"):
    _transfer(ticket, tmp_path, TransferConfig(target_dataset="synthetic"),
              explicit={"dataset": ("name", "classes")})


def test_cli_error_is_one_line_and_exit_2(ticket, tmp_path):
  result = launcher.run(
      [sys.executable, "-m", "lth_tf.cli", "transfer", f"--ticket={ticket[0]}",
       "--target_dataset=imagenet_offline", f"--root_dir={tmp_path / 'runs'}",
       f"--data_dir={tmp_path}"],
      capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
  assert result.returncode == 2 and len(lines) == 1, result.stderr
  assert "unknown dataset 'imagenet_offline'" in lines[0]
  assert not (tmp_path / "runs").exists()


def test_a_transfer_resumed_on_other_target_data_is_refused(ticket, tmp_path):
  from lth_tf import data as data_lib
  from lth_tf.data import synthetic
  target = tmp_path / "target.npz"

  def write_target(seed):
    raw = synthetic.make((28, 28, 1), num_classes=10, train=700, test=100, seed=seed)
    np.savez(target, x_train=raw.x_train, y_train=raw.y_train, x_test=raw.x_test,
             y_test=raw.y_test)
    data_lib.load.cache_clear()

  write_target(1)
  transfer = TransferConfig(target_dataset=f"npz:{target}")
  experiment = _transfer(ticket, tmp_path / "runs", transfer)
  experiment.run()
  files = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("**/*")}
  write_target(2)
  with pytest.raises(UserError, match="other data than dataset npz:.*another --root_dir"):
    _transfer(ticket, tmp_path / "runs", transfer)
  assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("**/*")} == files
  record = io.read_json(experiment.layout.data_file)
  assert record["sha256"] == experiment.data.digest and record["train"] == 200


def test_a_transfer_resumed_with_another_engine_is_refused(ticket, tmp_path):
  transfer = TransferConfig(target_dataset="synthetic")
  experiment = _transfer(ticket, tmp_path / "runs", transfer)
  experiment.run()
  files = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("**/*")}
  # The default engine (fused kernels, or dense shards on two cores) against the plain step.
  plain = experiment.config.replace(runtime=dataclasses.replace(
      experiment.config.runtime, engine="manual", fused_optimizer=False, dense_shards=1))
  with pytest.raises(UserError, match="an experiment keeps one engine"):
    TransferExperiment(plain, transfer, **QUIET)
  assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("**/*")} == files
  assert io.read_json(experiment.layout.engine_file)["fused_optimizer"] is True


@pytest.mark.parametrize("damage", ["edited", "truncated"])
def test_a_damaged_ticket_is_refused_before_anything_is_written(ticket, tmp_path, damage):
  path, loaded, experiment = ticket
  copy = tmp_path / "ticket"
  shutil.copytree(path, copy)
  meta = copy / "ticket.json"
  if damage == "edited":
    meta.write_text(meta.read_text().replace('"optimizer": "adam"', '"optimizer": "sgd"', 1))
  else:
    meta.write_text(meta.read_text()[:100])
  with pytest.raises(TicketError, match="ticket.json") as error:
    _transfer((str(copy), loaded, experiment), tmp_path / "runs",
              TransferConfig(target_dataset="synthetic"))
  assert "\n" not in str(error.value)
  assert not (tmp_path / "runs").exists()


def test_a_damaged_finished_branch_of_a_transfer_is_one_line_before_training(ticket, across,
                                                                             tmp_path):
  experiment, _ = across
  directory = tmp_path / "runs" / experiment.layout.experiment_hash
  shutil.copytree(experiment.layout.directory, directory)
  shutil.rmtree(directory / "replicate_0" / "level_0" / "random_prune")
  metrics = directory / "replicate_0" / "level_0" / "dense" / "metrics.json"
  metrics.write_text("{}")
  before = {str(p): p.stat().st_mtime_ns for p in directory.glob("**/*")}
  with pytest.raises(UserError, match="dense/metrics.json: not a finished branch's metrics"):
    _transfer(ticket, tmp_path / "runs",
              TransferConfig(target_dataset="synthetic_cifar", target_classes=(0, 1, 2))).run()
  assert {str(p): p.stat().st_mtime_ns for p in directory.glob("**/*")} == before
