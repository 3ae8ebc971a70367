"""The `lth` command: bad input is one line and exit code 2 before anything is written; `lth train` works."""
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys

import pytest

import launcher
from lth_tf import cli, commands
from lth_tf import config_codec
from lth_tf import flags as lth_flags
from lth_tf.config import ExperimentConfig
from lth_tf.tickets.format import metadata_digest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
FAST = ["--dataset=synthetic", "--validation_size=500", "--iterations=40", "--eval_every=20",
        "--progress=false"]


def lth(*args, cwd=ROOT, env=ENV):
  return launcher.run([sys.executable, "-m", "lth_tf.cli", *args], capture_output=True,
                      text=True, env=env, cwd=cwd)


_BAD_INPUT = [
    (["train", "--model=lenet5000"], "unknown model 'lenet5000'"),
    (["train", "--dataset=imagenet_offline"], "unknown dataset"),
    (["train", "--iterations=0"], "iterations must be > 0"),
    (["train", "--batch_size=0"], "batch_size must be > 0"),
    (["train", "--batch_size=-5"], "batch_size must be > 0"),
    (["find", "--fc_rate=1.0"], "fc_rate must be in [0, 1)"),
    (["find", "--conv_rate=-0.2"], "conv_rate must be in [0, 1)"),
    (["find", "--levels=-1"], "levels must be >= 0"),
    (["find", "--intra_op_threads=-1"], "intra_op_threads must be >= 0"),
    (["find", "--batch_variants"], "--batch_variants is retired: it never trained faster"),
    (["find", "--variant_groups=2"], "--variant_groups is retired"),
    (["find", "--replicate_processes=2"],
     "--replicate_processes is retired: replicates train at the same time under --executor=ray"),
    (["find", "--executor=slurm"], "executor must be one of local, ray; got 'slurm'"),
    (["find", "--dense_shards=0"], "dense_shards must be >= 1"),
    (["find", "--dense_shards=2", "--strategy=mirrored"], "--dense_shards splits one device"),
    # Refused by the engine's own rules, in the preflight (before config.json is written).
    (["find", "--dataset=synthetic", "--validation_size=500", "--model=resnet20", "--dense_shards=2"],
     "needs a model that is a chain of layers"),
    (["find", "--dataset=synthetic", "--validation_size=500", "--fused_optimizer",
      "--mixed_precision=mixed_float16"],
     "--fused_optimizer and --dense_shards run on one device without loss scaling"),
    (["find", "--branches=nope"], "'nope' is not a branch --branches can add"),
    (["find", "--rewind_iteration=100", "--iterations=50"], "rewind_iteration"),
    (["find", "--levels=1", "--rewind_iteration=0,100,0"], "rewind_iteration names a k twice"),
    (["train", "--rewind_iteration=0,100"], "--rewind_iteration takes one integer here"),
    (["find", "--strategy=warp_drive"], "unknown distribution strategy"),
    (["find", "--pruning_strategy=snip2"], "unknown pruning strategy"),
    (["train", "--flagfile=does/not/exist.flags"], "exist.flags"),
    (["train", "--no_such_flag=1"], "no_such_flag"),
    (["train", "--iterations=many"], "iterations"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["train", "--dataset=npz:missing/file.npz"], "does not exist"),
    (["train", *FAST, "--seeds=-1"], "seeds must be in [0, 2147483647]; got -1"),
    (["train", *FAST, "--learning_rate=inf"], "learning_rate must be a finite number; got inf"),
    (["export", "--ticket=t", "--out=o", "--latency_runs=0"], "latency_runs must be >= 1"),
    # A flag of another command is refused, not ignored.
    (["find", "--level=2", "--formats=onnx"], "--formats is a flag of export, which lth find "
                                              "does not read (nor --level)"),
    (["export", "--ticket=t", "--out=o", "--levels=3"], "--levels is a flag of pruning, which "
                                                        "lth export does not read"),
]


@pytest.mark.parametrize("args,message", _BAD_INPUT)
def test_bad_input_is_one_line_and_exit_2(bad_input_runs, args, message):
  code, stderr, root = bad_input_runs[" ".join(args)]
  assert code == 2, stderr
  lines = [line for line in stderr.strip().splitlines() if line.strip()]
  assert len(lines) == 1, stderr
  assert message in lines[0]
  assert "Traceback" not in stderr
  assert not os.path.exists(root)


# Runs `lth`'s entry point once per argument list in one process, which shares one TensorFlow
# start-up (flags are reset to their defaults between runs): what each run printed on stderr
# and its exit code. Real `lth` processes are started by the tests below this table.
_IN_ONE_PROCESS = """
import contextlib, io, json, sys, traceback
from absl import flags
from lth_tf import cli
results = []
for argv in json.load(sys.stdin):
  flags.FLAGS.unparse_flags()
  sys.argv = ["lth", *argv]
  stderr, code = io.StringIO(), 0
  with contextlib.redirect_stderr(stderr):
    try:
      cli.main()
    except SystemExit as exited:
      code = exited.code
    except Exception:  # what a real process would die of: a traceback and exit code 1
      traceback.print_exc()
      code = 1
  results.append([code, stderr.getvalue()])
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory):
  """Every case of the table above, run through `lth`'s entry point: (exit code, stderr, root)."""
  cases = [args for args, _ in _BAD_INPUT]
  runs = []
  for index, args in enumerate(cases):
    directory = tmp_path_factory.mktemp(f"bad{index}")
    root = [] if args[0] == "export" else [f"--root_dir={directory / 'runs'}"]  # not read there
    runs.append((" ".join(args), str(directory / "runs"),
                 [*args, *root, f"--data_dir={directory}"]))
  outcomes = lth_in_one_process([argv for _, _, argv in runs])
  return {key: (code, stderr, root) for (key, root, _), (code, stderr) in zip(runs, outcomes)}


def lth_in_one_process(argvs):
  """(exit code, stderr) of `lth` run with each argument list, all in one process."""
  result = launcher.run([sys.executable, "-c", _IN_ONE_PROCESS], capture_output=True,
                        text=True, env=ENV, cwd=ROOT, input=json.dumps(argvs))
  assert result.returncode == 0, result.stderr
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_malformed_flagfile(tmp_path):
  flagfile = tmp_path / "bad.flags"
  flagfile.write_text("--iterations=ten\n")
  result = lth("train", f"--flagfile={flagfile}", f"--root_dir={tmp_path / 'runs'}")
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1


def test_corrupt_npz_dataset(tmp_path):
  bad = tmp_path / "bad.npz"
  bad.write_bytes(b"PK\x03\x04 not really a zip")
  result = lth("train", f"--dataset=npz:{bad}", f"--root_dir={tmp_path / 'runs'}")
  assert result.returncode == 2 and "corrupt" in result.stderr
  assert not (tmp_path / "runs").exists()


def test_train_end_to_end_with_flagfile_overrides(tmp_path):
  flagfile = tmp_path / "preset.flags"
  flagfile.write_text("--iterations=1000\n--learning_rate=0.002\n")
  root = tmp_path / "runs"
  # The command-line flag wins over the flagfile even when given first.
  result = lth("train", "--iterations=40", f"--flagfile={flagfile}", *FAST[:2], *FAST[3:],
               f"--root_dir={root}", f"--data_dir={tmp_path}")
  assert result.returncode == 0, result.stderr
  assert "level" in result.stdout and "remaining" in result.stdout
  (experiment,) = list(root.iterdir())
  config = json.loads((experiment / "config.json").read_text())
  assert config["training"]["iterations"] == 40
  assert config["training"]["learning_rate"] == 0.002
  summary = json.loads((experiment / "summary.json").read_text())
  assert len(summary) == 1 and summary[0]["level"] == 0
  assert (experiment / "accuracy_vs_weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert "--iterations=40" in (experiment / "flags.txt").read_text()
  curve = (experiment / "replicate_0" / "level_0" / "ticket" / "curve.csv").read_text()
  assert curve.splitlines()[0].startswith("iteration,")
  assert list((experiment / "replicate_0" / "level_0" / "ticket" / "tensorboard").iterdir())


def test_every_preset_parses_to_a_valid_config():
  from lth_tf import config as config_lib
  for name in sorted(os.listdir(os.path.join(ROOT, "flags"))):
    code = ("import sys; from lth_tf import flags as f; f.define_flags(); "
            f"f.FLAGS(['x', '--flagfile=flags/{name}']); "
            "from lth_tf.validation import validate; c = validate(f.config_from_flags()); "
            "print(c.model.name, c.dataset.name, c.training.iterations)")
    result = launcher.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=ENV, cwd=ROOT)
    assert result.returncode == 0, (name, result.stderr)
  assert config_lib  # imported for its side-effect free validation above


@pytest.fixture(scope="module")
def ticket_dir(tmp_path_factory):
  """A real ticket saved from a tiny finished experiment."""
  from lth_tf import tickets
  from lth_tf.config import (DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig,
                             TrainingConfig)
  from lth_tf.lottery import LotteryExperiment
  root = tmp_path_factory.mktemp("ticket")
  config = ExperimentConfig(
      dataset=DatasetConfig(name="synthetic", validation_size=500),
      training=TrainingConfig(iterations=40, eval_every=20),
      pruning=PruningConfig(levels=1, fc_rate=0.5),
      runtime=RuntimeConfig(root_dir=str(root / "runs"), data_dir=str(root), progress=False))
  experiment = LotteryExperiment(config, log=lambda line: None)
  experiment.run()
  return tickets.save(experiment.layout.directory, 0, 1, str(root / "ticket"))


def _copy_ticket(source, target):
  import shutil
  shutil.copytree(source, target)
  return target


def _truncate(path):
  path.write_bytes(path.read_bytes()[:-50])


def _tamper(path):
  blob = bytearray(path.read_bytes())
  blob[len(blob) // 2] ^= 0xFF
  path.write_bytes(bytes(blob))


def _pickle_payload(ticket):
  import hashlib
  arrays = ticket / "ticket.npz"
  np_module = __import__("numpy")
  np_module.savez(arrays, rewind=np_module.array([{"evil": 1}], dtype=object))
  meta = json.loads((ticket / "ticket.json").read_text())
  meta["sha256"] = hashlib.sha256(arrays.read_bytes()).hexdigest()
  meta["metadata_sha256"] = metadata_digest(meta)  # so that the npz itself is what is refused
  (ticket / "ticket.json").write_text(json.dumps(meta))


def _resign(ticket, arrays=None, **meta_changes):
  """Rewrites the ticket's arrays and metadata and signs them again: a forger's ticket."""
  import hashlib
  np_module = __import__("numpy")
  path = ticket / "ticket.npz"
  if arrays is not None:
    with np_module.load(path) as data:
      current = {key: data[key] for key in data.files}
    current.update(arrays)
    np_module.savez(path, **current)
  meta = json.loads((ticket / "ticket.json").read_text())
  meta.update(meta_changes)
  meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
  meta["metadata_sha256"] = metadata_digest(meta)
  (ticket / "ticket.json").write_text(json.dumps(meta))


def _mask_shape(ticket, shape):
  np_module = __import__("numpy")
  with np_module.load(ticket / "ticket.npz") as data:
    key = next(k for k in data.files if k.startswith("mask_shape/"))
  _resign(ticket, {key: np_module.array(shape, np_module.int64)})


def _malformed_json(ticket):
  (ticket / "ticket.json").write_text("{not json")


_DAMAGES = [
    (lambda t: _truncate(t / "ticket.npz"), "checksum"),
    (lambda t: _tamper(t / "ticket.npz"), "checksum"),
    (_pickle_payload, "refused|not a readable|corrupt"),
    (_malformed_json, "not valid JSON"),
    (lambda t: (t / "ticket.npz").unlink(), "ticket.npz is missing"),
    # Signed again after the edit: shapes that would allocate exabytes, or that say nothing.
    (lambda t: _mask_shape(t, [4294967296, 4294967296]), "mask .* declares shape"),
    (lambda t: _mask_shape(t, [-1, -1]), "mask .* declares shape"),
    (lambda t: _resign(t, input_shape=[4294967296, 4294967296, 1]), "input shape"),
    (lambda t: _resign(t, input_shape=[-1, -1]), "input shape"),
    (lambda t: _resign(t, num_classes=10 ** 12), "class count"),
]


@pytest.fixture(scope="module")
def damaged_shows(ticket_dir, tmp_path_factory):
  """`lth tickets show` of a healthy copy of the ticket, then of each damaged copy."""
  from lth_tf import tickets  # pylint: disable=import-outside-toplevel
  copies = []
  for damage, _ in _DAMAGES:
    ticket = _copy_ticket(ticket_dir, tmp_path_factory.mktemp("copy") / "ticket")
    assert "weights remaining" in tickets.describe(tickets.read(str(ticket)), str(ticket))
    damage(ticket)
    copies.append(str(ticket))
  healthy = lth("tickets", "show", ticket_dir)
  assert healthy.returncode == 0 and "weights remaining" in healthy.stdout
  return lth_in_one_process([["tickets", "show", copy] for copy in copies])


@pytest.mark.parametrize("case", range(len(_DAMAGES)))
def test_damaged_tickets_are_refused(damaged_shows, case):
  import re
  code, stderr = damaged_shows[case]
  assert code == 2 and "Traceback" not in stderr, stderr
  assert len(stderr.strip().splitlines()) == 1, stderr
  assert re.search(_DAMAGES[case][1], stderr), stderr


def test_unknown_ticket_name(tmp_path):
  result = lth("tickets", "show", "no_such_ticket")
  assert result.returncode == 2 and "no ticket named" in result.stderr


@pytest.mark.parametrize("layout,message", [
    ("file_as_root", "not a directory"),
    ("file_in_path", "not a directory"),
])
def test_output_directory_problems(tmp_path, layout, message):
  blocker = tmp_path / "blocker"
  blocker.write_text("a file, not a directory")
  root = blocker if layout == "file_as_root" else blocker / "runs"
  result = lth("train", *FAST, f"--root_dir={root}", f"--data_dir={tmp_path}")
  assert result.returncode == 2 and message in result.stderr, result.stderr
  assert blocker.read_text() == "a file, not a directory"


def test_bad_input_leaves_existing_results_untouched(tmp_path):
  root = tmp_path / "runs"
  assert lth("train", *FAST, f"--root_dir={root}", f"--data_dir={tmp_path}").returncode == 0
  before = {p: p.stat().st_mtime_ns for p in root.glob("**/*")}
  result = lth("train", *FAST, "--batch_size=0", f"--root_dir={root}", f"--data_dir={tmp_path}")
  assert result.returncode == 2
  result = lth("train", *FAST, "--batch_size=100000", f"--root_dir={root}", f"--data_dir={tmp_path}")
  assert result.returncode == 2 and "exceeds" in result.stderr
  assert {p: p.stat().st_mtime_ns for p in root.glob("**/*")} == before


@pytest.mark.parametrize("flags,message", [
    (["--model=conv2"], "does not fit the model"),             # wrong model
    (["--dataset=synthetic_cifar"], "the model needs"),         # wrong shapes
])
def test_a_ticket_that_does_not_fit_is_refused_before_training(tmp_path, ticket_dir, flags, message):
  root = tmp_path / "runs"
  result = lth("train", *FAST, f"--ticket={ticket_dir}", *flags, f"--root_dir={root}",
               f"--data_dir={tmp_path}")
  assert result.returncode == 2 and message in result.stderr, result.stderr
  assert len(result.stderr.strip().splitlines()) == 1
  assert not root.exists()


def test_training_a_saved_ticket(tmp_path, ticket_dir):
  from lth_tf import tickets
  root = tmp_path / "runs"
  result = lth("train", *FAST, f"--ticket={ticket_dir}", f"--root_dir={root}",
               f"--data_dir={tmp_path}")
  assert result.returncode == 0, result.stderr
  (experiment,) = list(root.iterdir())
  summary = json.loads((experiment / "summary.json").read_text())
  ticket = tickets.read(str(ticket_dir))
  assert summary[0]["weights_remaining"] == pytest.approx(ticket.mask.weights_remaining())
  config = json.loads((experiment / "config.json").read_text())
  assert config["pruning"]["ticket_sha256"] == ticket.sha256


def test_a_root_dir_that_cannot_be_created_is_one_line(tmp_path):
  result = lth("train", *FAST, "--root_dir=/proc/lth-no-such/runs", f"--data_dir={tmp_path}")
  assert result.returncode == 2, result.stderr
  assert result.stderr.strip().splitlines() == [
      "lth: error: root_dir /proc/lth-no-such/runs cannot be created in /proc: "
      + result.stderr.split("cannot be created in /proc: ")[-1].strip()], result.stderr


# Long enough that a signal sent once level 0 is reported arrives during training.
RESUMABLE = [*FAST[:2], "--iterations=160", "--eval_every=20", "--progress=false", "--levels=2"]
UNBUFFERED = dict(ENV, PYTHONUNBUFFERED="1")


def _leftovers(root):
  return [str(p) for p in root.rglob("*") if p.name == ".lock" or p.name.startswith(".tmp-")]


def _summary(root):
  (experiment,) = list(root.iterdir())
  return json.loads((experiment / "summary.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted_find(tmp_path_factory):
  root = tmp_path_factory.mktemp("whole") / "runs"
  result = lth("find", *RESUMABLE, f"--root_dir={root}", f"--data_dir={root.parent}")
  assert result.returncode == 0, result.stderr
  return _summary(root)


@pytest.mark.parametrize("signum,message", [
    (signal.SIGINT, "interrupted"),
    (signal.SIGTERM, "terminated"),
])
def test_a_signal_stops_a_run_with_one_line_and_a_rerun_resumes(tmp_path, uninterrupted_find,
                                                                 signum, message):
  root = tmp_path / "runs"
  args = [sys.executable, "-m", "lth_tf.cli", "find", *RESUMABLE, f"--root_dir={root}",
          f"--data_dir={tmp_path}"]
  run = launcher.start(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=UNBUFFERED, cwd=ROOT)
  first = run.stdout.readline()  # the engine the run chose, then level 0's line
  assert first.startswith("engine: "), first
  first = run.stdout.readline()  # what is pruned (a new experiment), then level 0's line
  while first and "level  0" not in first:
    first = run.stdout.readline()
  assert "level  0" in first, first  # level 0 is trained: the run is training level 1
  run.send_signal(signum)
  _, stderr = run.communicate(timeout=120)
  assert run.returncode == 128 + signum, stderr
  lines = [line for line in stderr.strip().splitlines() if line.strip()]
  assert len(lines) == 1, stderr
  assert re.fullmatch(f"lth: {message} (during replicate 0 level [12]|after replicate 0 level "
                      "[01] branch ticket|during replicate 0 level [12] branch ticket); "
                      "rerun the same command to resume", lines[0]), lines[0]
  assert not _leftovers(root)
  resumed = lth("find", *RESUMABLE, f"--root_dir={root}", f"--data_dir={tmp_path}")
  assert resumed.returncode == 0, resumed.stderr
  assert _summary(root) == uninterrupted_find


def test_a_full_disk_is_one_line_and_a_rerun_after_it_resumes(tmp_path, uninterrupted_find):
  root = tmp_path / "runs"
  full = lth("find", *RESUMABLE, f"--root_dir={root}", f"--data_dir={tmp_path}",
             env=dict(ENV, LTH_FAULT_ENOSPC_AT="write:metrics.json@2"))
  assert full.returncode == 2, full.stderr
  lines = [line for line in full.stderr.strip().splitlines() if line.strip()]
  (experiment,) = list(root.iterdir())
  metrics = experiment / "replicate_0" / "level_1" / "ticket" / "metrics.json"
  assert lines == [f"lth: error: no space left on device while writing {metrics}; the files "
                   "written so far are intact: free space and rerun to resume"], full.stderr
  assert not metrics.exists() and not _leftovers(root)
  for path in root.rglob("*.json"):  # what is there is whole
    json.loads(path.read_text())
  resumed = lth("find", *RESUMABLE, f"--root_dir={root}", f"--data_dir={tmp_path}")
  assert resumed.returncode == 0, resumed.stderr
  assert _summary(root) == uninterrupted_find


# ---- help --------------------------------------------------------------------------------------

def _help(capsys, *argv):
  with pytest.raises(SystemExit) as exited:
    cli._help_requested(["lth", *argv])
  return exited.value.code, capsys.readouterr().out


def test_lth_help_lists_every_command_with_one_line(capsys):
  for argv in (["--help"], ["-h"], ["help"]):
    code, out = _help(capsys, *argv)
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert listed == cli.COMMANDS.names()
    assert "--helpfull" not in listed and "alsologtostderr" not in out


@pytest.mark.parametrize("command", cli.COMMANDS.names())
def test_a_commands_help_lists_its_own_flags_grouped_with_defaults(capsys, command):
  code, out = _help(capsys, command, "--help")
  assert code == 0 and out.startswith(f"lth {command}: ")
  assert "alsologtostderr" not in out and "only_check_args" not in out  # absl's own
  record = cli.COMMANDS.get(command)
  lth_flags.define_command_flags(commands.records())
  read = lth_flags.reads(record)
  assert read, command
  for name in read:
    assert f"  --{name}" in out, (command, name)
  for spec in record.flags:  # under its heading
    heading = f"\n{spec.group or record.own_heading}:\n"
    assert heading in out and f"\n  --{spec.name}" in out[out.index(heading):], (command, spec)
  if "pruning" in record.groups:
    assert "\npruning:\n" in out and "--fc_rate (default: 0.2)" in out
    assert "flags/lenet300_fashion_mnist.flags" in out


def test_every_config_flag_is_in_the_help_of_lth_find(capsys):
  _, out = _help(capsys, "find", "--help")
  for part in ("dataset", "model", "training", "pruning", "runtime"):
    for field in dataclasses.fields(type(getattr(ExperimentConfig(), part))):
      if field.name != config_codec.OPTIONS_FIELD:
        assert f"  --{config_codec.field_name(part, field.name)}" in out, field.name
  assert "  --nm (default: 2:4)" in out  # a strategy's option, declared by the strategy

def test_help_requests_exit_0_from_the_command_line():
  for argv in (["--help"], ["find", "--help"], ["find", "--helpfull"]):
    result = lth(*argv)
    assert result.returncode == 0, (argv, result.stderr)
  assert "--[no]reinit" in lth("find", "--helpfull").stdout


# ---- a forged ticket runs nothing the user did not name ----------------------------------------

ZEN = "Beautiful is better than ugly"


def _forge(ticket_dir, target, model=None, dataset=None):
  """A copy of the ticket naming other code, signed again (its checksums recomputed)."""
  ticket = _copy_ticket(ticket_dir, target)
  meta = json.loads((ticket / "ticket.json").read_text())
  if model:
    meta["config"]["model"]["name"] = model
  if dataset:
    meta["config"]["dataset"]["name"] = dataset
  _resign(ticket, config=meta["config"])
  return ticket


def test_a_forged_ticket_runs_no_code_the_user_did_not_name(ticket_dir, tmp_path):
  data_dir = os.path.dirname(ticket_dir)
  zen = _forge(ticket_dir, tmp_path / "zen", model="this:x")
  abort = _forge(ticket_dir, tmp_path / "abort", dataset="py:os:abort")
  runs = {
      "export": ["export", f"--ticket={zen}", f"--out={tmp_path / 'out'}", f"--data_dir={data_dir}"],
      "transfer": ["transfer", f"--ticket={zen}", "--target_dataset=synthetic",
                   f"--root_dir={tmp_path / 'runs'}", f"--data_dir={data_dir}"],
      "train": ["train", f"--ticket={zen}", f"--root_dir={tmp_path / 'runs'}",
                f"--data_dir={data_dir}"],
      "export a dataset": ["export", f"--ticket={abort}", f"--out={tmp_path / 'out'}",
                           f"--data_dir={data_dir}"],
  }
  for what, args in runs.items():
    result = lth(*args)
    assert result.returncode == 2, (what, result.returncode, result.stderr)
    assert "names code that would run" in result.stderr and "--trust_code=" in result.stderr
    assert ZEN not in result.stdout + result.stderr, what
  assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "runs")
  shown = lth("tickets", "show", str(zen))  # data only: says what it would run
  assert shown.returncode == 0 and "runs code: this:x (only with --trust_code=this:x)" in shown.stdout
  assert ZEN not in shown.stdout
  # Named by the user, the code runs: consent is the only gate.
  trusted = lth(*runs["export"], "--trust_code=this:x")
  assert ZEN in trusted.stdout + trusted.stderr


def test_a_ticket_carrying_its_examples_exports_without_running_its_dataset(ticket_dir, tmp_path,
                                                                            monkeypatch):
  """A forged ticket naming `py:os:abort` as its dataset, carrying the examples export reads:
  `lth export` without --trust_code exports it from those examples and never calls the
  dataset; `lth tickets show` says so. Carried examples that do not fit the model are refused."""
  from lth_tf import data as data_lib  # pylint: disable=import-outside-toplevel
  from lth_tf.config import DatasetConfig  # pylint: disable=import-outside-toplevel
  from lth_tf.data import export_sample  # pylint: disable=import-outside-toplevel
  data_dir = os.path.dirname(ticket_dir)
  splits = data_lib.load(DatasetConfig(name="synthetic", validation_size=500), data_dir)
  carried = export_sample.from_splits(splits, "", 300).arrays()
  ticket = _forge(ticket_dir, tmp_path / "carrier", dataset="py:os:abort")
  _resign(ticket, carried)
  shown = lth("tickets", "show", str(ticket))
  assert "export reads: the 300 test examples the ticket carries" in shown.stdout, shown.stdout
  # The export in this process (what `lth export` calls; its check in a forked interpreter),
  # with nothing trusted: a call of the dataset would abort the test's process.
  from lth_tf import user_code  # pylint: disable=import-outside-toplevel
  from lth_tf.export import ship  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(user_code, "_trusted", set())
  out = tmp_path / "out"
  results = ship.ship(str(ticket), ["tflite"], "none", str(out), str(tmp_path / "nowhere"),
                      latency_runs=2)
  check = json.loads((out / "check.json").read_text())
  assert check["examples"] == 300 and check["examples_from"].endswith("the ticket carries")
  assert not results["failures"]
  assert "300 test examples (the 300 test examples the ticket carries)" in ship.table(results)
  bad = _copy_ticket(ticket, tmp_path / "bad")
  _resign(bad, {"export/test_inputs": carried["export/test_inputs"][:, :5]})
  refused = lth("export", f"--ticket={bad}", f"--out={tmp_path / 'out2'}", f"--data_dir={data_dir}")
  assert refused.returncode == 2 and "export sample's test_inputs has shape" in refused.stderr


def test_a_module_inside_a_ticket_and_a_symlinked_ticket_file_are_not_followed(ticket_dir,
                                                                              tmp_path):
  data_dir = os.path.dirname(ticket_dir)
  ticket = _forge(ticket_dir, tmp_path / "carrier", model="evil:model")
  marker = tmp_path / "ran"
  (ticket / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                  "def model(*args):\n  raise SystemExit(0)\n")
  elsewhere = tmp_path / "cwd"
  elsewhere.mkdir()
  args = ["export", f"--ticket={ticket}", f"--out={tmp_path / 'out'}", f"--data_dir={data_dir}"]
  refused = lth(*args, cwd=str(elsewhere))
  assert refused.returncode == 2 and "names code that would run: evil:model" in refused.stderr
  # Even trusted, a module is looked for where the user's own modules are (the current
  # directory, PYTHONPATH), never in the ticket.
  trusted = lth(*args, "--trust_code=evil:model", cwd=str(elsewhere))
  assert trusted.returncode == 2 and "no module named 'evil'" in trusted.stderr
  assert not marker.exists()
  linked = _copy_ticket(ticket_dir, tmp_path / "linked")
  (tmp_path / "outside.json").write_text((linked / "ticket.json").read_text())
  (linked / "ticket.json").unlink()
  (linked / "ticket.json").symlink_to(tmp_path / "outside.json")
  for command in (["tickets", "show", str(linked)], args[:1] + [f"--ticket={linked}"] + args[2:]):
    result = lth(*command)
    assert result.returncode == 2 and "ticket.json is a symbolic link" in result.stderr


def test_an_error_after_tensorflow_starts_is_still_one_line():
  """TensorFlow's native start-up lines (CUDA stubs, the CPU feature guard) are not printed
  around lth's one-line error, with no TF_CPP_MIN_LOG_LEVEL set by the user."""
  env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
  result = subprocess.run([sys.executable, "-m", "lth_tf.cli", "export", "--ticket=/nowhere",
                           "--out=/nowhere/out"], capture_output=True, text=True, env=env,
                          cwd=ROOT)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == ["lth: error: no ticket named or at '/nowhere'"]
