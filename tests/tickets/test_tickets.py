"""Saved tickets: every field of ticket.json is checksummed, `tickets save` writes whole tickets into
new or ticket directories only, and a damaged experiment directory is one line."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import launcher
from lth_tf import io, pruning, tickets
from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig,
                           TrainingConfig)
from lth_tf.errors import CorruptFileError, TicketError, UserError
from lth_tf.export import check, formats, inference, ship, tflite_sparse, xnnpack
from lth_tf.lottery import LotteryExperiment
from lth_tf.tickets import format as ticket_format

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
# The checksums of the shipped tickets' arrays, as `--ticket_sha256` pins them.
SHIPPED_SHA256 = {
    "lenet300_fashion_mnist_level7": "5865d312413b90aa3fc4ce2e912808ef3c735f2ebaac56a1758f741c01b0d701",
    "lenet300_fashion_mnist_level12": "500c9e3ebbad25ea5e3a48dab72e8c8cd19101c3d034f1c27a296f72e0316327",
    "lenet300_fashion_mnist_level15": "9216e9cf605c0d4706ea75ec30df0fff91f36277d07fa5760a5b5c0697ba6852",
    "mobilenetv2_035_cifar10_level2": "a96c6b267a3e260deaaeeeae0335841de306f0056f8e39849581c4a4fed9cddc",
}
# (input shape, normalisation channels) of each shipped ticket.
SHIPPED_INPUTS = {name: ((32, 32, 3), 3) if name.startswith("mobilenet") else ((28, 28, 1), 1)
                  for name in SHIPPED_SHA256}


def lth(*args):
  return launcher.run([sys.executable, "-m", "lth_tf.cli", *args], capture_output=True,
                      text=True, env=ENV, cwd=ROOT)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A tiny finished experiment (levels 0 and 1) and a ticket saved from level 1."""
  root = tmp_path_factory.mktemp("tickets")
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=40, eval_every=20),
      pruning=PruningConfig(levels=1, fc_rate=0.5),
      runtime=RuntimeConfig(root_dir=str(root / "runs"), data_dir=str(root), progress=False))
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  return root, experiment.layout.directory, tickets.save(experiment.layout.directory, 0, 1,
                                                         str(root / "ticket"))


def _copy(source, target):
  shutil.copytree(source, target)
  return str(target)


def _edit(ticket, change):
  path = os.path.join(ticket, "ticket.json")
  meta = json.loads(open(path).read())
  change(meta)
  with open(path, "w") as handle:
    json.dump(meta, handle, indent=2, sort_keys=True)


EDITS = {
    "normalization": lambda m: m["normalization"]["mean"].__setitem__(0, 25.0),
    "accuracy": lambda m: m["metrics"].__setitem__("early_stop_test_accuracy", 0.999),
    "learning_rate": lambda m: m["config"]["training"].__setitem__("learning_rate", 0.5),
    "input_shape": lambda m: m.__setitem__("input_shape", [14, 56, 1]),
    "provenance": lambda m: m["provenance"].__setitem__("experiment_hash", "0123456789ab"),
    "num_classes": lambda m: m.__setitem__("num_classes", 11),
    "weights_remaining": lambda m: m.__setitem__("weights_remaining", 0.01),
    "added_field": lambda m: m.__setitem__("search_compute", {"train_flops": 1.0}),
}


@pytest.mark.parametrize("field", sorted(EDITS))
def test_an_edited_ticket_json_is_refused(finished, tmp_path, field):
  _, _, ticket = finished
  copy = _copy(ticket, tmp_path / "t")
  _edit(copy, EDITS[field])
  with pytest.raises(TicketError, match="ticket.json was modified") as error:
    tickets.read(copy)
  assert "\n" not in str(error.value)


def test_an_edited_normalisation_is_refused_by_show_and_export(finished, tmp_path):
  _, _, ticket = finished
  copy = _copy(ticket, tmp_path / "t")
  _edit(copy, EDITS["normalization"])
  shown = lth("tickets", "show", copy)
  assert shown.returncode == 2 and "Traceback" not in shown.stderr, shown.stderr
  assert len(shown.stderr.strip().splitlines()) == 1 and "ticket.json was modified" in shown.stderr
  with pytest.raises(TicketError, match="ticket.json was modified"):
    ship.ship(copy, ["tflite"], "none", str(tmp_path / "out"), str(tmp_path))
  assert not (tmp_path / "out").exists()


def test_untouched_and_shipped_tickets_load_with_their_pinned_checksums(finished):
  _, _, ticket = finished
  assert tickets.read(ticket).mask.num_remaining() > 0
  shipped = dict(tickets.shipped())
  assert {name: t.sha256 for name, t in shipped.items()} == SHIPPED_SHA256
  for name, t in shipped.items():
    shape, channels = SHIPPED_INPUTS[name]
    assert t.input_shape == shape and t.num_classes == 10 and len(t.mean) == channels, name


@pytest.mark.parametrize("name", sorted(SHIPPED_SHA256))
def test_a_shipped_ticket_fits_its_model_ready_to_train_and_exports(name, monkeypatch):
  t = tickets.read(tickets.resolve(name))
  model = tickets.build_model(t)  # the ticket to re-train: θk ⊙ m (refused if it does not fit)
  for weight_name, weight, mask in pruning.mask_pairs(model):
    assert not np.any(weight.numpy()[mask.numpy() == 0]), weight_name
  tickets.apply(t, model, trained=True)  # the trained sparse network, in the same model
  client = inference.inference_model(model, t.mean, t.std)
  images = np.random.default_rng(0).uniform(0, 255, size=(4, *t.input_shape)).astype(np.float32)
  blob = formats.tflite_bytes(client, "none", images)
  # Exactly the mask's weights, and the depthwise kernels tfmot's registry leaves dense.
  assert (sum(tflite_sparse.kernel_nonzeros(blob).values())
          == t.mask.num_remaining() + ship._unmasked_kernel_nonzeros(model))  # pylint: disable=protected-access
  logits = check.tflite_logits(blob, images, threads=None, default_delegates=True)
  np.testing.assert_allclose(logits, client.predict(images, verbose=0), rtol=1e-3, atol=1e-3)
  if name.startswith("mobilenetv2"):
    # tf_keras's MobileNetV2 pads its stride-2 stem 'same' (0 before, 1 after), so no sparse
    # subgraph starts there and XNNPACK runs none of its 1x1 convolutions sparse.
    monkeypatch.setattr(xnnpack, "sparse_kernels_here", lambda: (True, "test: sparse kernels"))
    convolutions = [row for row in xnnpack.analyse(blob) if row.op == "CONV_2D"]
    assert convolutions[0].kernel == "3x3, 3->16" and "'same' padding" in convolutions[0].reason
    pointwise = [row for row in convolutions if row.kernel.startswith("1x1")]
    assert len(pointwise) == 34 and all("no sparse subgraph" in row.reason for row in pointwise)


def test_a_ticket_without_the_metadata_checksum_is_refused_until_signed(finished, tmp_path):
  _, _, ticket = finished
  copy = _copy(ticket, tmp_path / "t")
  _edit(copy, lambda m: m.pop("metadata_sha256"))
  with pytest.raises(TicketError, match="no metadata_sha256.*lth tickets save.*lth tickets sign"):
    tickets.read(copy)
  tickets.sign(copy)
  assert tickets.read(copy).sha256 == tickets.read(ticket).sha256
  with pytest.raises(TicketError, match="signed once"):
    tickets.sign(copy)
  _edit(copy, EDITS["accuracy"])
  with pytest.raises(TicketError, match="signed once"):  # an edited signed ticket stays refused
    tickets.sign(copy)
  with pytest.raises(TicketError, match="modified"):
    tickets.read(copy)


def test_signing_refuses_a_ticket_whose_arrays_changed(finished, tmp_path):
  _, _, ticket = finished
  copy = _copy(ticket, tmp_path / "t")
  _edit(copy, lambda m: m.pop("metadata_sha256"))
  arrays = os.path.join(copy, "ticket.npz")
  with open(arrays, "rb+") as handle:
    handle.truncate(os.path.getsize(arrays) - 10)
  with pytest.raises(TicketError, match="ticket.npz was modified"):
    tickets.sign(copy)
  assert "metadata_sha256" not in json.loads(open(os.path.join(copy, "ticket.json")).read())


# ---- tickets save --out ------------------------------------------------------------------------

def test_save_refuses_a_directory_that_is_not_a_ticket(finished, tmp_path):
  _, experiment, _ = finished
  mine = tmp_path / "mine"
  mine.mkdir()
  (mine / "notes.txt").write_text("mine")
  with pytest.raises(TicketError, match="holds files other than a ticket"):
    tickets.save(experiment, 0, 1, str(mine))
  assert os.listdir(mine) == ["notes.txt"] and (mine / "notes.txt").read_text() == "mine"
  other = _copy(experiment, tmp_path / "other_experiment")
  before = sorted(os.listdir(other))
  with pytest.raises(TicketError, match="is an experiment directory"):
    tickets.save(experiment, 0, 1, other)
  assert sorted(os.listdir(other)) == before
  with pytest.raises(TicketError, match="inside the experiment directory"):
    tickets.save(experiment, 0, 1, os.path.join(experiment, "ticket"))
  assert not os.path.exists(os.path.join(experiment, "ticket"))
  blocker = tmp_path / "file"
  blocker.write_text("a file")
  with pytest.raises(TicketError, match="not a directory"):
    tickets.save(experiment, 0, 1, str(blocker))


def test_save_into_an_experiment_directory_on_the_command_line(finished, tmp_path):
  root, experiment, _ = finished
  other = _copy(experiment, tmp_path / "other_experiment")
  before = {p: os.path.getmtime(os.path.join(other, p)) for p in os.listdir(other)}
  result = lth("tickets", "save", f"--experiment_dir={experiment}", "--level=1", f"--out={other}",
               f"--data_dir={root}")
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
  assert len(result.stderr.strip().splitlines()) == 1 and "experiment directory" in result.stderr
  assert {p: os.path.getmtime(os.path.join(other, p)) for p in os.listdir(other)} == before


def test_save_into_an_empty_or_ticket_directory(finished, tmp_path):
  _, experiment, ticket = finished
  empty = tmp_path / "empty"
  empty.mkdir()
  tickets.save(experiment, 0, 1, str(empty))
  assert sorted(os.listdir(empty)) == ["ticket.json", "ticket.npz"]
  again = _copy(ticket, tmp_path / "again")
  _edit(again, EDITS["accuracy"])
  tickets.save(experiment, 0, 0, again)  # a ticket directory is replaced whole
  assert tickets.read(again).provenance["level"] == 0
  assert sorted(os.listdir(tmp_path)) == ["again", "empty"]


def test_a_failed_save_leaves_nothing_behind(finished, tmp_path, monkeypatch):
  _, experiment, ticket = finished
  previous = _copy(ticket, tmp_path / "previous")
  original = open(os.path.join(previous, "ticket.json")).read()

  def full_disk(path, data):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(ticket_format.io, "write_json", full_disk)
  for out in (str(tmp_path / "new"), previous):
    with pytest.raises(OSError):
      tickets.save(experiment, 0, 1, out)
  assert sorted(os.listdir(tmp_path)) == ["previous"]
  assert open(os.path.join(previous, "ticket.json")).read() == original


def test_a_save_killed_between_its_renames_loses_nothing_and_the_next_save_cleans_up(finished,
                                                                                     tmp_path):
  """SIGKILL after the previous ticket was moved aside and before the new one took its place:
  `--out` is missing and two staging directories remain; the next save to `--out` puts the
  previous ticket back first, then replaces it whole, and leaves no staging directory."""
  root, experiment, ticket = finished
  out = _copy(ticket, tmp_path / "out")
  _copy(ticket, tmp_path / "out-2")  # another ticket whose name starts alike: never touched
  killed = launcher.run(
      [sys.executable, "-m", "lth_tf.cli", "tickets", "save", f"--experiment_dir={experiment}",
       "--level=1", f"--out={out}", f"--data_dir={root}"], capture_output=True, text=True,
      env=dict(ENV, LTH_FAULT_KILL_AT="tickets:swap@1"), cwd=ROOT)
  assert killed.returncode == -9, killed.stderr
  left = sorted(os.listdir(tmp_path))
  assert "out" not in left and any(name.endswith(".previous") for name in left)
  tickets.save(experiment, 0, 1, out)  # the next save to --out
  assert sorted(os.listdir(tmp_path)) == ["out", "out-2"]
  assert tickets.read(out).mask == tickets.read(ticket).mask
  assert tickets.read(str(tmp_path / "out-2")).mask == tickets.read(ticket).mask


# ---- a damaged experiment directory ------------------------------------------------------------

def _truncate(path):
  with open(path, "rb+") as handle:
    handle.truncate(max(1, os.path.getsize(path) // 2))


def _write(text):
  def damage(path):
    with open(path, "w") as handle:
      handle.write(text)
  return damage


@pytest.mark.parametrize("name,damage", [
    ("config.json", _truncate),
    ("config.json", _write("[]")),
    ("replicate_0/level_1/ticket/metrics.json", _truncate),
    ("replicate_0/level_1/ticket/metrics.json", _write("{}")),
    ("replicate_0/level_0/ticket/metrics.json", _write("[1]")),  # search compute reads level 0
    ("replicate_0/level_1/ticket/mask.npz", _truncate),
    ("replicate_0/level_1/ticket/final_weights.npz", _truncate),
    ("replicate_0/rewind_point.npz", _truncate),
])
def test_save_from_a_damaged_experiment_is_one_line(finished, tmp_path, name, damage):
  _, experiment, _ = finished
  copy = _copy(experiment, tmp_path / os.path.basename(experiment))
  damage(os.path.join(copy, name))
  with pytest.raises(UserError) as error:
    tickets.save(copy, 0, 1, str(tmp_path / "t"))
  assert os.path.basename(name) in str(error.value) and "\n" not in str(error.value)
  assert not (tmp_path / "t").exists()


def test_save_from_a_damaged_experiment_on_the_command_line(finished, tmp_path):
  root, experiment, _ = finished
  copy = _copy(experiment, tmp_path / os.path.basename(experiment))
  _write("{}")(os.path.join(copy, "replicate_0", "level_1", "ticket", "metrics.json"))
  result = lth("tickets", "save", f"--experiment_dir={copy}", "--level=1",
               f"--out={tmp_path / 't'}", f"--data_dir={root}")
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
  assert len(result.stderr.strip().splitlines()) == 1 and "metrics.json" in result.stderr
  assert not (tmp_path / "t").exists()


def test_read_json_names_the_file(tmp_path):
  for text, message in (("{tru", "not valid JSON"), (b"\xff\xfe{", "not valid JSON")):
    path = tmp_path / "bad.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CorruptFileError, match=f"bad.json: {message}"):
      io.read_json(str(path))
  with pytest.raises(CorruptFileError, match="missing.json: no such file"):
    io.read_json(str(tmp_path / "missing.json"))
  with pytest.raises(CorruptFileError, match="cannot be read"):
    io.read_json(str(tmp_path))


def test_metadata_digest_ignores_layout_but_not_content(finished):
  _, _, ticket = finished
  meta = json.loads(open(os.path.join(ticket, "ticket.json")).read())
  compact = json.loads(json.dumps(meta, separators=(",", ":")))
  assert ticket_format.metadata_digest(compact) == meta["metadata_sha256"]
  meta["metrics"]["level"] = 2
  assert ticket_format.metadata_digest(meta) != meta["metadata_sha256"]
