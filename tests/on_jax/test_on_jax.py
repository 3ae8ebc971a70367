"""Keras 3 on the JAX backend: `lth find` on a user's Keras 3 models where TensorFlow cannot be
imported, the same numbers as the TensorFlow backend, and masks and optimizer slots exactly zero.

The JAX runs are subprocesses of `without_tensorflow.py` (KERAS_BACKEND=jax, every import of
TensorFlow, tf_keras or tfmot refused and recorded, exit status 3 if lth_tf tried one). The
TensorFlow side runs in this process (Keras 3 on its TensorFlow backend).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import user_modules
from lth_tf import api, compat, distribute, user_code
from lth_tf.config import ModelConfig, RuntimeConfig, TrainingConfig
from lth_tf.errors import ConfigError, UserError
from lth_tf.rundir import check_model_record, record_model

pytest.importorskip("jax")

HERE = os.path.dirname(os.path.abspath(__file__))
WITHOUT_TENSORFLOW = os.path.join(HERE, "without_tensorflow.py")
DATA = "py:jax_models:images"
# Two levels with re-init, 60 iterations a level (three evaluations), weight decay.
SETTINGS = {"validation_size": 60, "iterations": 60, "eval_every": 20, "batch_size": 30,
            "levels": 2, "reinit": True, "weight_decay": 1e-4}


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
  monkeypatch.delenv("KERAS_BACKEND", raising=False)
  return user_modules(tmp_path, monkeypatch, HERE, ("jax_models.py",))


def _on_jax(cwd, *args, timeout=240):
  """Runs `without_tensorflow.py ARGS` in `cwd`; returns the completed process."""
  env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
  result = subprocess.run([sys.executable, WITHOUT_TENSORFLOW, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
  assert result.stderr.strip().splitlines()[-1] == "lth_tf tried to import: []", result.stderr[-3000:]
  return result


def _find_on_jax(cwd, model, root, **extra):
  flags = [f"--{key}={value}" for key, value in {**SETTINGS, **extra}.items()
           if not isinstance(value, bool)]
  flags += [f"--{key}" for key, value in {**SETTINGS, **extra}.items() if value is True]
  result = _on_jax(cwd, "find", f"--model=jax_models:{model}", f"--dataset={DATA}",
                   f"--root_dir={root}", f"--trust_code=jax_models:{model},{DATA}", *flags)
  assert result.returncode == 0, result.stderr[-3000:]
  (directory,) = [os.path.join(root, name) for name in os.listdir(root)
                  if os.path.isdir(os.path.join(root, name)) and name != "datasets"]
  return directory


def _branches(directory):
  return [f"replicate_0/level_{level}/{branch}" for level in range(3)
          for branch in (("ticket",) if level == 0 else ("ticket", "reinit"))]


def _arrays(directory, branch, name):
  with np.load(os.path.join(directory, branch, name)) as arrays:
    return {key: arrays[key] for key in arrays.files}


def _assert_pruned_weights_are_zero(directory):
  for branch in _branches(directory):
    mask = _arrays(directory, branch, "mask.npz")
    final = _arrays(directory, branch, "final_weights.npz")
    for name, keep in mask.items():
      assert not np.any(final[name][~keep.astype(bool)]), (branch, name)


def test_masks_and_optimizer_slots_stay_exactly_zero_on_jax(tmp_path):
  """Adam, SGD with momentum and RMSprop with momentum (weight decay, warm-up and a step decay):
  after every chunk the pruned weights and all their slots are exactly zero, the unpruned ones
  moved, and the masks are those set."""
  result = _on_jax(tmp_path, "--script", os.path.join(HERE, "masks_on_jax.py"),
                   "adam", "sgd", "rmsprop")
  assert result.returncode == 0, result.stderr[-3000:]
  checks = json.loads(result.stdout.strip().splitlines()[-1])
  for optimizer, check in checks.items():
    assert check["pruned_weight"] == 0.0 and check["pruned_slot"] == 0.0, (optimizer, check)
    assert check["unpruned_moved"] > 0.9 and check["masks_kept"], (optimizer, check)
    assert check["iterations"] == 12
  assert [checks[name]["slots_per_weight"] for name in ("adam", "sgd", "rmsprop")] == [2, 1, 2]


def test_ticket_search_keeps_pruned_weights_and_slots_at_zero_in_model_fit_on_jax(user_dir,
                                                                                   monkeypatch):
  """`TicketSearch` around the user's own `model.fit` on JAX, with Adam, SGD with momentum and
  RMSprop: θk captured at k = 5, two rounds of prune, rewind and fit, the pruned weights and
  every slot exactly zero after every step (read by a callback after the search's), the
  network learning, and the ticket saved where TensorFlow cannot be imported, then exported to
  TFLite here with the mask's zeros."""
  result = _on_jax(user_dir, "--script", os.path.join(HERE, "fit_on_jax.py"),
                   str(user_dir / "tickets"), "adam", "sgd", "rmsprop")
  assert result.returncode == 0, result.stderr[-3000:]
  checks = json.loads(result.stdout.strip().splitlines()[-1])
  for optimizer, check in checks.items():
    assert check["captured_at_5"] and check["steps_checked"] == 40, (optimizer, check)
    assert check["pruned_weight"] == 0.0 and check["pruned_slot"] == 0.0, (optimizer, check)
    assert check["iterations"] == 25 and 0.2 < check["weights_remaining"] < 0.3
    assert max(check["accuracies"]) > 0.6, (optimizer, check)  # chance: 1/3
    assert check["slots_per_weight"] == {"adam": 2, "sgd": 1, "rmsprop": 2}[optimizer]
    ticket = user_dir / "tickets" / optimizer
    assert json.load(open(ticket / "ticket.json"))["framework"] == "keras3"
  _exports_with_the_mask_s_zeros(str(user_dir / "tickets" / "adam"), monkeypatch)


def _exports_with_the_mask_s_zeros(path, monkeypatch):
  """A ticket found on JAX, exported through the TensorFlow path (here, Keras 3 on TensorFlow):
  its TFLite file holds exactly the mask's non-zero weights."""
  from lth_tf import tickets  # pylint: disable=import-outside-toplevel
  from lth_tf.export import formats, inference, tflite_sparse  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(user_code, "_trusted", {"jax_models:sequential_mlp", DATA})
  ticket = tickets.read(path)
  model = tickets.build_model(ticket, trained=True)
  images = np.random.default_rng(0).uniform(0, 255, (8, 8, 8, 1)).astype(np.float32)
  blob = formats.tflite_bytes(inference.inference_model(model, ticket.mean, ticket.std), "none",
                              images)
  assert sum(tflite_sparse.kernel_nonzeros(blob).values()) == ticket.mask.num_remaining()


def test_lth_find_on_jax_without_tensorflow_gives_the_tensorflow_backend_s_numbers(user_dir,
                                                                                    monkeypatch):
  """The user's functional CNN (batch norm, softmax head), whose initial weights are drawn by
  NumPy: `lth find` on JAX where TensorFlow cannot be imported, and the same experiment on
  Keras 3's TensorFlow backend here. Every branch starts from the same weights, has the same
  mask, and trains to the same numbers within float rounding (Adam amplifies rounding where a
  gradient is near zero: the weights agree to 2e-3 after 60 steps, measured 6e-4; the losses to
  1e-4, measured 1.2e-5)."""
  on_jax = _find_on_jax(user_dir, "functional_cnn", str(user_dir / "jax"))
  monkeypatch.setattr(user_code, "_trusted", {"jax_models:functional_cnn", DATA})
  on_tf = api.find("jax_models:functional_cnn", DATA, log=lambda line: None,
                   root_dir=str(user_dir / "tf"), **SETTINGS).directory
  assert os.path.basename(on_jax) == os.path.basename(on_tf)  # the same experiment
  assert json.load(open(os.path.join(on_jax, "model.json"))) == {"framework": "keras3",
                                                                  "backend": "jax"}
  assert json.load(open(os.path.join(on_tf, "model.json"))) == {"framework": "keras3"}
  assert not os.path.exists(os.path.join(on_jax, "replicate_0", "level_0", "ticket",
                                         "tensorboard"))
  for branch in _branches(on_jax):
    for name in ("start_weights.npz", "mask.npz"):
      jax_arrays, tf_arrays = _arrays(on_jax, branch, name), _arrays(on_tf, branch, name)
      assert sorted(jax_arrays) == sorted(tf_arrays)
      for key in jax_arrays:
        np.testing.assert_array_equal(jax_arrays[key], tf_arrays[key], err_msg=f"{branch} {key}")
    jax_final, tf_final = (_arrays(on_jax, branch, "final_weights.npz"),
                           _arrays(on_tf, branch, "final_weights.npz"))
    for key in jax_final:
      np.testing.assert_allclose(jax_final[key], tf_final[key], rtol=0, atol=2e-3,
                                 err_msg=f"{branch} {key}")
    jax_curve = json.load(open(os.path.join(on_jax, branch, "curve.json")))
    tf_curve = json.load(open(os.path.join(on_tf, branch, "curve.json")))
    assert [row["iteration"] for row in jax_curve] == [row["iteration"] for row in tf_curve]
    for jax_row, tf_row in zip(jax_curve, tf_curve):
      for key in ("validation_loss", "test_loss"):
        assert abs(jax_row[key] - tf_row[key]) < 1e-4, (branch, jax_row, tf_row)
      assert abs(jax_row["test_accuracy"] - tf_row["test_accuracy"]) <= 1 / 120 + 1e-9
      assert jax_row["learning_rate"] == pytest.approx(tf_row["learning_rate"], rel=1e-6)
  _assert_pruned_weights_are_zero(on_jax)


@pytest.mark.parametrize("model", ["sequential_mlp", "subclassed"])
def test_a_sequential_and_a_subclassed_keras3_model_find_tickets_on_jax(user_dir, model):
  """Two levels with re-init from the command line on JAX: every branch trained, the summary
  written, the pruned weights exactly zero, the masks nested level to level."""
  directory = _find_on_jax(user_dir, model, str(user_dir / "runs"))
  rows = json.load(open(os.path.join(directory, "summary.json")))
  assert {(row["level"], row["branch"]) for row in rows} == {
      (0, "ticket"), (1, "ticket"), (1, "reinit"), (2, "ticket"), (2, "reinit")}
  _assert_pruned_weights_are_zero(directory)
  level_1 = _arrays(directory, "replicate_0/level_1/ticket", "mask.npz")
  level_2 = _arrays(directory, "replicate_0/level_2/ticket", "mask.npz")
  for name in level_2:
    assert not np.any(level_2[name] & ~level_1[name].astype(bool))
  remaining = [sum(m.sum() for m in masks.values()) / sum(m.size for m in masks.values())
               for masks in (level_1, level_2)]
  assert 0.5 < remaining[1] < remaining[0] < 0.9, remaining


def test_a_run_killed_on_jax_resumes_to_the_uninterrupted_run_s_numbers_dropout_included(
    user_dir):
  """Killed mid-training of level 1 (SIGKILL at its first chunk), then run again: every branch's
  final weights equal an uninterrupted run's bit for bit, though dropout's generator state is
  no weight a checkpoint holds (the JAX trainer draws it from the seed and the iteration)."""
  settings = {"levels": 1, "reinit": False, "weight_decay": 0.0, "iterations": 40}
  whole = _find_on_jax(user_dir, "mlp_dropout", str(user_dir / "whole"), **settings)
  env = dict(os.environ, LTH_FAULT_KILL_AT="train@3")  # level 0 trains in two chunks
  flags = [f"--{k}={v}" for k, v in {**SETTINGS, **settings}.items() if not isinstance(v, bool)]
  killed = subprocess.run(
      [sys.executable, WITHOUT_TENSORFLOW, "find", "--model=jax_models:mlp_dropout",
       f"--dataset={DATA}", f"--root_dir={user_dir / 'resumed'}",
       f"--trust_code=jax_models:mlp_dropout,{DATA}", *flags],
      cwd=user_dir, env=env, capture_output=True, text=True, timeout=240)
  assert killed.returncode == -9, killed.stderr[-2000:]
  resumed = _find_on_jax(user_dir, "mlp_dropout", str(user_dir / "resumed"), **settings)
  for branch in ("replicate_0/level_0/ticket", "replicate_0/level_1/ticket"):
    expected = _arrays(whole, branch, "final_weights.npz")
    got = _arrays(resumed, branch, "final_weights.npz")
    for key in expected:
      np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{branch} {key}")


def test_what_jax_does_not_run_is_refused_in_one_line(monkeypatch, tmp_path):
  """As on JAX (`compat.on_jax`): a registered model without --framework=keras3, a strategy,
  augmentation, loss scaling or fused updates, a pruning strategy that scores with gradients,
  and a directory trained on the other backend."""
  monkeypatch.setattr(compat, "on_jax", lambda: True)
  from lth_tf import models  # pylint: disable=import-outside-toplevel
  from lth_tf.training import jax_trainer  # pylint: disable=import-outside-toplevel
  with pytest.raises(ConfigError, match="KERAS_BACKEND=jax trains Keras 3 models; add "
                                        "--framework=keras3"):
    models.build(ModelConfig(name="lenet300_100"), (28, 28, 1), 10, 0)
  with pytest.raises(ConfigError, match="Keras 3 on JAX trains on JAX's default device"):
    distribute.make_strategy(RuntimeConfig(strategy="mirrored"))
  assert distribute.make_strategy(RuntimeConfig()) is distribute.JAX_DEVICE
  with pytest.raises(ConfigError, match=r"without data augmentation \(flip_crop\), "
                                        r"--mixed_precision=mixed_float16, --fused_optimizer"):
    jax_trainer.check(TrainingConfig(mixed_precision="mixed_float16"),
                      RuntimeConfig(fused_optimizer=True), "flip_crop")
  from lth_tf.config import ExperimentConfig, PruningConfig  # pylint: disable=import-outside-toplevel
  from lth_tf.lottery import preflight  # pylint: disable=import-outside-toplevel
  with pytest.raises(ConfigError, match="pruning strategy 'snip' needs .* which lth find on JAX "
                                        r"\(its scores take TensorFlow's gradients\)"):
    preflight.check_strategy(ExperimentConfig(pruning=PruningConfig(strategy="snip")), ())
  preflight.check_strategy(ExperimentConfig(), ())  # magnitude pruning needs no gradients
  path, directory = str(tmp_path / "model.json"), str(tmp_path)
  record_model(path, "keras3", directory, backend="tensorflow")
  with pytest.raises(UserError, match="trained on Keras 3's tensorflow backend .* it now runs on "
                                      "jax"):
    check_model_record(path, "keras3", directory, backend="jax")


def test_the_conv2_accelerator_script_runs_on_cpu_without_tensorflow(tmp_path):
  """benchmarks/jax_conv2.py, the script for a machine whose accelerator runs JAX and not
  TensorFlow, at smoke settings: Conv-2 built in Keras 3 on JAX, its steady-state speed and one
  round of IMP with the re-init control, with TensorFlow unimportable."""
  out = tmp_path / "conv2.json"
  result = _on_jax(tmp_path, "--script", os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                      "benchmarks", "jax_conv2.py"),
                   "--dataset=synthetic_cifar", "--iterations=4", "--eval_every=4", "--levels=1",
                   "--timed_steps=2", "--repeats=1", "--validation_size=60",
                   f"--root_dir={tmp_path / 'runs'}", f"--out={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  record = json.load(open(out))
  assert record["steady_steps_per_second"] > 0 and not record["tensorflow_imported"]
  assert [(b["level"], b["branch"]) for b in record["branches"]] == [
      (0, "ticket"), (1, "ticket"), (1, "reinit")]
  assert abs(record["branches"][1]["weights_remaining"] - 0.801) < 0.001  # conv 10%, fc 20%
  assert all(0.0 <= b["final_test_accuracy"] <= 1.0 and b["steps_per_second"] > 0
             for b in record["branches"])
  assert "steps/s" in result.stdout and "cpu" in result.stdout.lower()
