"""`lth masks compare`: its CSV, heat map and markdown, and the command end to end on real
experiment directories (the measures themselves: tests/analysis/test_overlap.py)."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import launcher
from mask_samples import labelled, random_mask
from lth_tf import io
from lth_tf.analysis import masks as masks_lib
from lth_tf.config import DatasetConfig, ExperimentConfig, PruningConfig, RuntimeConfig, TrainingConfig
from lth_tf.errors import UserError
from lth_tf.pruning.mask import Mask
from lth_tf.report import masks as masks_report
from lth_tf.rundir import BranchFiles, ExperimentLayout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _source_and_target():
  """A source ticket and a target whose input layer and head have other shapes."""
  rng = np.random.default_rng(3)
  hidden = random_mask(rng, (30, 20), 120)
  source = {"fc1/kernel": random_mask(rng, (784, 30), 4000), "fc2/kernel": hidden,
            "output/kernel": random_mask(rng, (20, 10), 100)}
  target = {"fc1/kernel": random_mask(rng, (1024, 30), 5000), "fc2/kernel": hidden,
            "output/kernel": random_mask(rng, (20, 4), 40), "extra/kernel": np.ones(3, bool)}
  return [labelled("s", source, experiment="x"), labelled("t", target, experiment="y")]


def test_skipped_layers_are_named_in_the_csv_and_the_markdown():
  masks = _source_and_target()
  pairs = masks_lib.compare(masks)
  text = masks_report.markdown(masks, pairs)
  assert "- fc1/kernel: shape (784, 30) in A, (1024, 30) in B (pairs 0-1)" in text
  assert "- extra/kernel: only in B (pairs 0-1)" in text
  rows = list(csv.DictReader(masks_report.csv_text(masks, pairs).splitlines()))
  assert {r["layer"]: r["skipped"] for r in rows} == {
      "fc2/kernel": "", "fc1/kernel": "shape (784, 30) in A, (1024, 30) in B",
      "output/kernel": "shape (20, 10) in A, (20, 4) in B", "extra/kernel": "only in B",
      "overall": ""}
  assert [r["jaccard"] for r in rows if r["layer"] == "overall"] == ["1.0"]


def test_the_heat_map_holds_every_pairs_overall_jaccard_and_its_ratio_to_random(tmp_path):
  rng = np.random.default_rng(4)
  masks = [labelled(str(i), {"w": rng.random((50, 40)) < density}, level=i)
           for i, density in enumerate((0.9, 0.5, 0.2))]
  masks.append(labelled("other", {"v": np.ones(5, bool)}, level=3))  # matches no layer
  pairs = masks_lib.compare(masks)
  jaccard, ratio = masks_report.matrices(len(masks), pairs)
  for pair in pairs:
    for i, j in ((pair.a, pair.b), (pair.b, pair.a)):
      if pair.overall is None:
        assert np.isnan(jaccard[i, j]) and np.isnan(ratio[i, j])
      else:
        assert jaccard[i, j] == pair.overall.jaccard
        assert ratio[i, j] == pair.overall.jaccard / pair.overall.expected_jaccard
  assert (np.diag(jaccard) == 1.0).all()
  path = masks_report.figure(masks, pairs, str(tmp_path / "masks.png"))
  with open(path, "rb") as handle:
    assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


# ---- reading experiment directories -------------------------------------------------------------

def _config(root, seeds, dataset="synthetic", levels=2):
  return ExperimentConfig(
      dataset=DatasetConfig(name=dataset, validation_size=500),
      training=TrainingConfig(iterations=20, eval_every=20, batch_size=50),
      pruning=PruningConfig(levels=levels, fc_rate=0.5, output_rate=0.2),
      runtime=RuntimeConfig(root_dir=str(root), data_dir=str(root), progress=False, seeds=seeds))


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
  """Two real experiment directories: LeNet on 28x28 data (seeds 0 and 1, 2 levels) and on
  32x32x3 data (seed 0, 1 level): the second's input layer has another shape."""
  from lth_tf import api  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("masks")
  first = api.run(_config(root, (0, 1)), log=lambda line: None).directory
  second = api.run(_config(root, (0,), "synthetic_cifar", 1), log=lambda line: None).directory
  return first, second


def _mask(directory, seed, level):
  layout = ExperimentLayout(os.path.dirname(directory), os.path.basename(directory))
  return Mask.from_dict(io.read_arrays(BranchFiles(layout.branch_dir(seed, level, "ticket")).mask))


def test_the_command_writes_the_csv_and_figure_of_real_experiments(experiments, tmp_path):
  first, second = experiments
  out = tmp_path / "out"
  result = launcher.run(
      [sys.executable, "-m", "lth_tf.cli", "masks", "compare", f"--experiment_dir={first}",
       f"--experiment_dir={second}", "--mask_levels=1,2", f"--out={out}"],
      capture_output=True, text=True, env=ENV, cwd=ROOT)
  assert result.returncode == 0, result.stderr
  with open(out / "masks.png", "rb") as handle:
    assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
  rows = list(csv.DictReader(open(out / "masks.csv")))
  a, b = os.path.basename(first), os.path.basename(second)
  # Levels 1, 2 of seeds 0, 1 of the first and level 1 of the second: 5 masks, 10 pairs.
  assert len({(r["mask_a"], r["mask_b"]) for r in rows}) == 10
  by_key = {(r["mask_a"], r["mask_b"], r["layer"]): r for r in rows}
  # Levels of one run: masks only shrink, so all of level 2 is kept in level 1.
  levels = by_key[(f"{a} r0 L1 ticket", f"{a} r0 L2 ticket", "fc1/kernel")]
  one, two = _mask(first, 0, 1)["fc1/kernel"], _mask(first, 0, 2)["fc1/kernel"]
  assert levels["relation"] == "levels" and float(levels["b_in_a"]) == 1.0
  assert int(levels["both"]) == np.count_nonzero(one & two) == int(two.sum())
  assert float(levels["jaccard"]) == two.sum() / one.sum()
  # Replicates: every number from the mask files themselves.
  seeds = by_key[(f"{a} r0 L2 ticket", f"{a} r1 L2 ticket", "overall")]
  x, y = _mask(first, 0, 2), _mask(first, 1, 2)
  both = sum(np.count_nonzero(x[k] & y[k]) for k in x)
  assert seeds["relation"] == "replicates" and int(seeds["both"]) == both
  assert float(seeds["jaccard"]) == both / (x.num_remaining() + y.num_remaining() - both)
  assert float(seeds["random_both"]) == pytest.approx(
      sum(x[k].sum() * y[k].sum() / x[k].size for k in x))
  # Experiments: the input layer has another shape, skipped and said so.
  cross = [r for r in rows if r["relation"] == "experiments"]
  assert {r["skipped"] for r in cross if r["layer"] == "fc1/kernel"} == {
      "shape (784, 300) in A, (3072, 300) in B"}
  overall = by_key[(f"{a} r0 L1 ticket", f"{b} r0 L1 ticket", "overall")]
  assert int(overall["weights"]) == 300 * 100 + 100 * 10
  assert "fc1/kernel: shape (784, 300) in A, (3072, 300) in B" in result.stdout
  assert "masks.csv: " in result.stdout


def test_a_saved_ticket_is_its_levels_mask(experiments, tmp_path):
  from lth_tf import tickets  # pylint: disable=import-outside-toplevel
  first = experiments[0]
  saved = tickets.save(first, 1, 2, str(tmp_path / "ticket"), os.path.dirname(first))
  written = masks_report.build([first], [saved], str(tmp_path / "out"), [2], ("ticket",))
  rows = [r for r in csv.DictReader(open(written["masks.csv"])) if r["layer"] == "overall"]
  name = os.path.basename(first)
  same = {(r["mask_a"], r["mask_b"]): r for r in rows}[(f"{name} r1 L2 ticket", "ticket ticket")]
  assert same["relation"] == "same" and float(same["jaccard"]) == 1.0
  assert {r["relation"] for r in rows} == {"same", "replicates"}


def test_reading_masks_does_not_start_tensorflow():
  code = ("import sys\n"
          "import lth_tf.report.masks, lth_tf.analysis.masks, lth_tf.cli\n"
          "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras'))\n"
          "assert not loaded, loaded[:5]\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
  assert result.returncode == 0, result.stderr


def _damaged_copy(experiments, tmp_path, damage):
  import shutil  # pylint: disable=import-outside-toplevel
  copy = str(tmp_path / "copy")
  shutil.copytree(experiments[0], copy)
  mask = os.path.join(copy, "replicate_0", "level_1", "ticket", "mask.npz")
  if damage == "no_config":
    os.remove(os.path.join(copy, "config.json"))
  elif damage == "no_summary":
    os.remove(os.path.join(copy, "summary.json"))
  elif damage == "truncated_mask":
    data = open(mask, "rb").read()
    open(mask, "wb").write(data[:len(data) // 2])
  elif damage == "values_mask":
    arrays = io.read_arrays(mask)
    io.write_arrays(mask, dict(arrays, **{"fc1/kernel": arrays["fc1/kernel"].astype(np.int8) * 2}))
  elif damage == "missing_mask":
    os.remove(mask)
  return copy


@pytest.mark.parametrize("damage,message", [
    ("no_config", "is not an experiment directory (no config.json)"),
    ("no_summary", "has no finished branch yet (no summary.json)"),
    ("truncated_mask", "mask.npz: corrupt array file"),
    ("values_mask", "mask.npz: mask 'fc1/kernel' holds values other than 0 and 1"),
    ("missing_mask", "mask.npz: no such file"),
    ("no_level", "has no finished ticket or target_ticket branch at levels 9"),
])
def test_bad_input_is_one_line_before_anything_is_written(experiments, tmp_path, damage, message):
  copy = _damaged_copy(experiments, tmp_path, damage)
  with pytest.raises(UserError) as error:
    masks_report.build([copy, experiments[1]], [], str(tmp_path / "out"),
                       [9] if damage == "no_level" else None)
  assert message in str(error.value) and "\n" not in str(error.value)
  assert copy in str(error.value)
  assert not (tmp_path / "out").exists()


def test_bad_input_from_the_command_line_is_one_line_and_exit_2(experiments, tmp_path):
  copy = _damaged_copy(experiments, tmp_path, "values_mask")
  result = launcher.run([sys.executable, "-m", "lth_tf.cli", "masks", "compare",
                           f"--experiment_dir={copy}", f"--out={tmp_path / 'out'}"],
                        capture_output=True, text=True, env=ENV, cwd=ROOT)
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
  assert result.stderr.strip().splitlines() == [result.stderr.strip()]
  assert "holds values other than 0 and 1" in result.stderr
  assert not (tmp_path / "out").exists()


def test_one_mask_is_not_enough(tmp_path):
  with pytest.raises(UserError, match="only 0 mask"):
    masks_report.build([], [], str(tmp_path / "out"))
  assert not (tmp_path / "out").exists()
