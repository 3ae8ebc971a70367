"""The zoo: networks written as users write them (tests/zoo/zoo_models.py: unnamed layers, softmax
and sigmoid heads, nested and subclassed models, attention, recurrent and text layers) on data
that is not always images (tests/zoo/zoo_data.py), each through `lth find` (two levels with the
re-init control), `lth tickets save` and `lth export` with its parity checks. A new model is one
entry of `zoo_models.ZOO`."""
import csv
import json
import os

import pytest

from lth_tf import api, io, pruning, tickets
from lth_tf.export import ship
from lth_tf.report import report
from lth_tf.lottery import BranchFiles

HERE = os.path.dirname(os.path.abspath(__file__))

from zoo import zoo_keras3, zoo_models  # noqa: E402

# Every model of the zoo: (its module, its name) -> the data it is built for.
ZOO = {**{("zoo_models", name): data for name, data in zoo_models.ZOO.items()},
       **{("zoo_keras3", name): data for name, data in zoo_keras3.ZOO.items()}}


def _find(model: str, data: str, root: str, module: str = "zoo_models", **settings):
  fields = dict(levels=2, reinit=True, iterations=60, eval_every=30, batch_size=32,
                validation_size=40, fc_rate=0.5, conv_rate=0.5, output_rate=0.25,
                progress=False, root_dir=root, data_dir=root)
  fields.update(settings)
  return api.find(f"{module}:{model}", f"py:zoo_data:{data}", log=lambda line: None, **fields)


@pytest.mark.parametrize("module,model", sorted(ZOO))
def test_the_zoo_finds_saves_and_exports(module, model, user_dir):
  """tf_keras models (`zoo_models`) and Keras 3 models (`zoo_keras3`: functional, Sequential,
  subclassed, attention over text, a user's layer declaring its prunable weight)."""
  data = ZOO[module, model]
  result = _find(model, data, str(user_dir / "runs"), module)
  assert [(r["level"], r["branch"]) for r in result.rows] == [
      (0, "ticket"), (1, "ticket"), (1, "reinit"), (2, "ticket"), (2, "reinit")]
  mask = pruning.Mask.from_dict(io.read_arrays(
      BranchFiles(os.path.join(result.directory, "replicate_0", "level_2", "ticket")).mask))
  assert 0.0 < mask.weights_remaining() < 0.6
  if module == "zoo_keras3":  # the report reads the directory as it reads a tf_keras model's
    report.build([result.directory], str(user_dir / "report"))
    assert "ticket" in (user_dir / "report" / "report.md").read_text()
  out = str(user_dir / "ticket")
  tickets.save(result.directory, 0, 2, out, data_dir=str(user_dir / "runs"))
  exported = str(user_dir / "export")
  # TFLite for every model; the SavedModel too for the Keras 3 ones (their export traces the
  # model's call; a tf_keras model's SavedModel is tests/export/test_export.py's and
  # tests/test_user_code.py's): a recurrent model's SavedModel doubles the export's time.
  formats = ["saved_model", "tflite"] if module == "zoo_keras3" else ["tflite"]
  results = ship.ship(out, formats, "none", exported, str(user_dir / "runs"), latency_runs=2)
  assert results["failures"] == [], results["failures"]
  for name, row in results["models"].items():
    assert row["agreement_with_keras"] >= ship.FLOAT_AGREEMENT, name
  # The exported model on raw inputs (its preprocessing and head inside) is the trained ticket:
  # its accuracy is the one the experiment measured on the pipeline's normalised inputs.
  measured = tickets.read(out).metrics["final_test_accuracy"]
  assert results["keras_accuracy"] == pytest.approx(measured, abs=1.5 / results["examples"])


def _lth(cwd, *args):
  import sys  # pylint: disable=import-outside-toplevel
  import launcher  # pylint: disable=import-outside-toplevel
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  root = os.path.dirname(os.path.dirname(HERE))
  env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
  result = launcher.run([sys.executable, "-m", "lth_tf.cli", *args], capture_output=True,
                        text=True, env=env, cwd=str(cwd))
  assert result.returncode == 0, result.stderr
  return result


def test_every_other_command_on_an_attention_model_with_unnamed_layers(user_dir):
  """Resume, report, masks compare, stability, transfer and TicketSearch on a model whose
  attention projections are pruned at their variables."""
  common = ["--model=zoo_models:attention", "--dataset=py:zoo_data:images", "--reinit",
            "--iterations=40", "--eval_every=20", "--batch_size=32", "--validation_size=40",
            "--fc_rate=0.5", "--output_rate=0.25", "--root_dir=runs", "--data_dir=.",
            "--progress=false"]
  found = _lth(user_dir, "find", "--levels=2", *common)
  assert "| EinsumDense | kernel | pruned: attention (fc_rate) |" in found.stdout
  rerun = _lth(user_dir, "find", "--levels=2", *common)  # finished: trains and prints nothing new
  assert "what is pruned" not in rerun.stdout
  (directory,) = [p for p in (user_dir / "runs").iterdir() if p.name != "datasets"]
  summary = json.load(open(directory / "summary.json"))
  assert [(r["level"], r["branch"]) for r in summary] == [
      (0, "ticket"), (1, "ticket"), (1, "reinit"), (2, "ticket"), (2, "reinit")]
  _lth(user_dir, "report", f"--experiment_dir={directory}", "--out=report")
  assert "attention/query/kernel" in (user_dir / "report" / "report.md").read_text()
  _lth(user_dir, "masks", "compare", f"--experiment_dir={directory}", "--mask_levels=1,2",
       "--out=masks")
  rows = list(csv.DictReader(open(user_dir / "masks" / "masks.csv")))
  assert {"multi_head_attention/query/kernel", "dense_1/kernel"} <= {r["layer"] for r in rows}
  _stability_ticket_transfer(user_dir, directory, "zoo_models:attention")
  assert list((user_dir / "transfer").glob("*/summary.json"))


def _stability_ticket_transfer(user_dir, directory, model):
  """`lth stability` on level 1 of `directory` (a find of `model` on `py:zoo_data:images`), its
  level 2 saved as `ticket`, and that ticket transferred to two of the classes."""
  # The directory and its ticket name the user's code: it runs when the user names it.
  trust = f"--trust_code={model},py:zoo_data:images"
  _lth(user_dir, "stability", f"--experiment_dir={directory}", "--stability_levels=1",
       "--stability_branches=ticket", "--stability_points=3",
       "--stability_train_examples=100", trust)
  assert (directory / "stability.json").exists()
  _lth(user_dir, "tickets", "save", f"--experiment_dir={directory}", "--level=2", "--out=ticket",
       "--data_dir=.", trust)
  _lth(user_dir, "transfer", "--ticket=ticket", "--target_dataset=py:zoo_data:images",
       "--target_classes=0,1", "--iterations=20", "--eval_every=20", "--batch_size=32",
       "--validation_size=20", "--root_dir=transfer", "--data_dir=.", "--progress=false",
       f"--trust_code={model}")


def test_ticket_search_on_a_users_softmax_model_saves_a_ticket_lth_exports(user_dir):
  """A notebook: the user's own compiled model (softmax head, unnamed layers, built after other
  models), `model.fit` with the search's callbacks, then a ticket that exports."""
  from lth_tf.compat import keras  # pylint: disable=import-outside-toplevel
  from lth_tf.keras_fit import TicketSearch  # pylint: disable=import-outside-toplevel
  import zoo_data as user_data  # pylint: disable=import-outside-toplevel
  import zoo_models as user_models  # pylint: disable=import-outside-toplevel
  x, y, xt, yt = user_data.images()
  user_models.cnn_unnamed((8, 8, 1), 3, 0)  # other models first: Keras' counters move on
  model = user_models.mlp_softmax((8, 8, 1), 3, 0)
  model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy())
  search = TicketSearch(model, rewind_iteration=2)
  scaled, scaled_test = x / 255.0, xt / 255.0
  search.model.fit(scaled, y, epochs=1, batch_size=32, verbose=0, callbacks=search.callbacks())
  search.prune(fc_rate=0.5, output_rate=0.25)
  search.rewind()
  search.model.fit(scaled, y, epochs=1, batch_size=32, verbose=0, callbacks=search.callbacks())
  from lth_tf.config import DatasetConfig  # pylint: disable=import-outside-toplevel
  dataset = DatasetConfig(name="py:zoo_data:images", validation_size=40)
  search.save("ticket", "zoo_models:mlp_softmax", dataset, mean=(0.0,),
              std=(1.0,), test_data=(scaled_test, yt))
  results = ship.ship("ticket", ["tflite"], "none", "export", ".", latency_runs=2)
  assert results["failures"] == [], results["failures"]


def test_every_other_command_on_a_keras3_model(user_dir):
  """Report, masks compare, stability, tickets and transfer on a Keras 3 model (its softmax head
  taken off, a user's layer declaring its prunable weight)."""
  common = ["--model=zoo_keras3:functional_cnn", "--dataset=py:zoo_data:images", "--reinit",
            "--iterations=40", "--eval_every=20", "--batch_size=32", "--validation_size=40",
            "--fc_rate=0.5", "--conv_rate=0.5", "--output_rate=0.25", "--root_dir=runs",
            "--data_dir=.", "--progress=false"]
  found = _lth(user_dir, "find", "--levels=2", *common)
  assert "| ScaledDense | kernel | pruned: fc (fc_rate) |" in found.stdout, found.stdout
  (directory,) = [p for p in (user_dir / "runs").iterdir() if p.name != "datasets"]
  assert json.load(open(directory / "model.json")) == {"framework": "keras3"}
  _lth(user_dir, "report", f"--experiment_dir={directory}", "--out=report")
  assert "scaled_dense/kernel" in (user_dir / "report" / "report.md").read_text()
  _lth(user_dir, "masks", "compare", f"--experiment_dir={directory}", "--mask_levels=1,2",
       "--out=masks")
  _stability_ticket_transfer(user_dir, directory, "zoo_keras3:functional_cnn")
  assert "in keras3" in _lth(user_dir, "tickets", "show", "ticket").stdout
  (summary,) = list((user_dir / "transfer").glob("*/summary.json"))
  assert json.load(open(summary.parent / "model.json")) == {"framework": "keras3"}
