"""The default step engine: chosen per model, strategy and machine; a directory keeps its own."""
import dataclasses
import json
import os
import subprocess
import sys

import pytest

import launcher
from lth_tf.config import (DatasetConfig, ExperimentConfig, ModelConfig, PruningConfig, RuntimeConfig, TrainingConfig)
from lth_tf.validation import validate
from lth_tf.errors import ConfigError
from lth_tf.lottery import LotteryExperiment
from lth_tf.training import engines

FC, CONV = engines.Facts(cores=2, convolutional=False), engines.Facts(cores=2, convolutional=True)


def _config(tmp_path=".", optimizer="adam", model="lenet300_100", dataset="synthetic", **runtime):
  return ExperimentConfig(
      dataset=DatasetConfig(name=dataset, validation_size=500),
      model=ModelConfig(name=model),
      training=TrainingConfig(iterations=40, eval_every=20, batch_size=50, optimizer=optimizer),
      pruning=PruningConfig(levels=1, fc_rate=0.5, output_rate=0.2),
      runtime=RuntimeConfig(root_dir=str(tmp_path), data_dir=str(tmp_path), progress=False,
                            **runtime))


def _choose(config, machine=FC, refuse=()):
  """`engines.choose` without a model: `refuse` names the candidates the engine check refuses."""
  def check(runtime):
    name = ("dense_shards" if runtime.dense_shards > 1 else
            "fused" if runtime.fused_optimizer else "plain")
    if name in refuse:
      raise ConfigError(f"{name} refused")
  probed = []
  runtime, line = engines.choose(config, lambda: probed.append(1) or (None, False), machine=machine,
                                 check=check)
  return runtime, line, probed


@pytest.mark.parametrize("machine, refuse, expected", [
    (FC, (), "dense_shards"),                                   # a fully connected net, 2 cores
    (engines.Facts(cores=1, convolutional=False), (), "fused"),  # one core: nothing to share
    (CONV, (), "fused"),                    # convolutions keep their intra-op threads
    (FC, ("dense_shards",), "fused"),       # a model the shards cannot split
    (FC, ("dense_shards", "fused"), "plain"),  # e.g. RMSprop, or loss scaling
])
def test_the_first_candidate_whose_rules_hold_is_chosen(machine, refuse, expected):
  runtime, line, probed = _choose(_config(), machine, refuse)
  assert (runtime.dense_shards, runtime.fused_optimizer) == {
      "dense_shards": (2, False), "fused": (1, True), "plain": (1, False)}[expected]
  assert probed and line.startswith("engine: ") and "auto" in line and "\n" not in line


@pytest.mark.parametrize("runtime, why", [
    ({"engine": "manual"}, "--engine=manual"),
    ({"fused_optimizer": True}, "given by --fused_optimizer"),
    ({"intra_op_threads": 1}, "given by --intra_op_threads"),
    ({"strategy": "mirrored"}, "--strategy=mirrored"),
])
def test_a_given_engine_or_strategy_is_kept_as_given(runtime, why):
  config = _config(**runtime)
  chosen, line, probed = _choose(config)
  assert chosen == config.runtime and why in line and not probed


def test_a_recorded_engine_is_continued_and_an_old_directory_keeps_the_plain_engine(tmp_path):
  config = _config(tmp_path)
  for record, expected in [({"dense_shards": 2, "fused_optimizer": True}, (2, False)),
                           ({"dense_shards": 1, "fused_optimizer": True}, (1, True)),
                           # a record from before 2026-12-02, with the retired keys off
                           ({"dense_shards": 1, "fused_optimizer": False, "batch_variants": False,
                             "variant_groups": 1}, (1, False))]:
    runtime, line = engines.choose(config, lambda: pytest.fail("no probe"), record)
    assert (runtime.dense_shards, runtime.fused_optimizer) == expected
    assert "recorded in the experiment directory" in line
  engine_file, config_file = tmp_path / "engine.json", tmp_path / "config.json"
  assert engines.read_record(str(engine_file), trained_before=False) is None
  config_file.write_text("{}")
  assert not engines.trained_before_record(str(config_file))  # a config and nothing trained
  (tmp_path / "replicate_0").mkdir()
  assert engines.trained_before_record(str(config_file))
  old = engines.read_record(str(engine_file), trained_before=True)
  assert engines.from_record(config.runtime, old) == config.runtime  # one op at a time


def test_a_run_cut_before_its_engine_record_chooses_the_engine_afresh(tmp_path, monkeypatch):
  """Killed (here: a full disk) after `config.json` and before `engine.json`: the rerun is a
  new experiment's, with the engine a new run chooses and the same results, not the engine of
  the directories that predate the record."""
  from lth_tf import io  # pylint: disable=import-outside-toplevel
  from lth_tf.errors import WriteError  # pylint: disable=import-outside-toplevel
  cut, whole = _config(tmp_path / "cut"), _config(tmp_path / "whole")
  monkeypatch.setattr(io, "_fault_hits", {})
  monkeypatch.setenv("LTH_FAULT_ENOSPC_AT", "write:data.json@1")
  with pytest.raises(WriteError):
    LotteryExperiment(cut, log=lambda line: None).run()
  monkeypatch.delenv("LTH_FAULT_ENOSPC_AT")
  layout = LotteryExperiment(cut, log=lambda line: None).layout
  assert os.path.exists(layout.config_file) and not os.path.exists(layout.engine_file)
  lines = []
  rerun = LotteryExperiment(cut, log=lines.append)
  rerun.run()
  uninterrupted = LotteryExperiment(whole, log=lambda line: None)
  uninterrupted.run()
  assert not any("recorded in the experiment directory" in line for line in lines)
  assert io.read_json(layout.engine_file) == io.read_json(uninterrupted.layout.engine_file)
  assert (io.read_json(layout.summary_file) ==
          io.read_json(uninterrupted.layout.summary_file))


def test_the_probe_sees_convolutions_and_the_engine_check_refuses_rmsprop():
  """The real probe and check: Conv-4 is convolutional, LeNet is not; RMSprop has no fused
  kernels, so it trains one operation at a time."""
  seen = {}
  for model, optimizer in [("lenet300_100", "adam"), ("conv4", "adam"), ("lenet300_100", "rmsprop")]:
    config = _config(model=model, optimizer=optimizer,
                     dataset="synthetic_cifar" if model == "conv4" else "synthetic")
    shape = (32, 32, 3) if model == "conv4" else (28, 28, 1)
    lines = []
    resolved = engines.resolve(validate(config), shape, 10, "/nonexistent/engine.json",
                               "/nonexistent/config.json", lines.append)
    seen[(model, optimizer)] = (resolved.runtime.dense_shards, resolved.runtime.fused_optimizer,
                                lines[0])
  cores = engines.cores()
  assert seen[("conv4", "adam")][:2] == (1, True) and "convolutional conv4" in seen[("conv4", "adam")][2]
  assert seen[("lenet300_100", "adam")][:2] == ((2, False) if cores >= 2 else (1, True))
  assert seen[("lenet300_100", "rmsprop")][:2] == (1, False)


def test_lth_find_records_the_chosen_engine_and_a_rerun_continues_it(tmp_path, monkeypatch):
  monkeypatch.setattr(engines, "cores", lambda: 2)
  lines = []
  experiment = LotteryExperiment(_config(tmp_path), log=lines.append)
  experiment.run()
  assert lines[0].startswith("engine: 2 dense shards")
  recorded = json.load(open(experiment.layout.engine_file))
  assert (recorded["dense_shards"], recorded["fused_optimizer"]) == (2, True)
  # On a one-core machine `auto` would choose the fused kernels, but the directory keeps its own.
  monkeypatch.setattr(engines, "cores", lambda: 1)
  lines.clear()
  again = LotteryExperiment(_config(tmp_path), log=lines.append)
  assert again.config.runtime.dense_shards == 2 and "recorded" in lines[0]
  assert len(again.run()) == 2


def test_the_chosen_threads_are_set_before_tensorflow_starts(tmp_path):
  """In a fresh process (as `lth find` starts), the default engine's one thread per operation
  is in force once the experiment is set up: the choice is made before TensorFlow starts."""
  if engines.cores() < 2:
    pytest.skip("dense shards are chosen on two or more cores")
  probe = ("from lth_tf.config import *; from lth_tf.lottery import LotteryExperiment; "
           "from lth_tf.compat import tf; "
           f"c = ExperimentConfig(dataset=DatasetConfig(name='synthetic', validation_size=500), "
           f"runtime=RuntimeConfig(root_dir={str(tmp_path)!r}, data_dir={str(tmp_path)!r})); "
           "e = LotteryExperiment(c, log=print); "
           "print(e.config.runtime.dense_shards, tf.config.threading.get_intra_op_parallelism_threads())")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  out = launcher.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                     cwd=root, check=False)
  assert out.returncode == 0, out.stderr
  lines = out.stdout.strip().splitlines()
  assert lines[0].startswith("engine: 2 dense shards") and lines[-1].split() == ["2", "1"]
