"""The zoo: networks written as users write them (tests/zoo/zoo_models.py: unnamed layers, softmax
and sigmoid heads, nested and subclassed models, attention, recurrent and text layers) on data
that is not always images (tests/zoo/zoo_data.py), each through `lth find` (two levels with the
re-init control), `lth tickets save` and `lth export` with its parity checks. A new model is one
entry of `zoo_models.ZOO`."""
import os
import shutil

import numpy as np
import pytest

from lth_tf import api, io, pruning, tickets
from lth_tf.export import ship
from lth_tf.lottery import BranchFiles

HERE = os.path.dirname(os.path.abspath(__file__))

from zoo import zoo_models  # noqa: E402


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
  """The zoo's modules in the current directory, as a user's own files."""
  for name in ("zoo_models.py", "zoo_data.py"):
    shutil.copy(os.path.join(HERE, name), tmp_path / name)
  monkeypatch.chdir(tmp_path)
  monkeypatch.syspath_prepend(str(tmp_path))
  return tmp_path


def _find(model: str, data: str, root: str, **settings):
  fields = dict(levels=2, reinit=True, iterations=60, eval_every=30, batch_size=32,
                validation_size=40, fc_rate=0.5, conv_rate=0.5, output_rate=0.25,
                progress=False, root_dir=root, data_dir=root)
  fields.update(settings)
  return api.find(f"zoo_models:{model}", f"py:zoo_data:{data}", log=lambda line: None, **fields)


@pytest.mark.parametrize("model", sorted(zoo_models.ZOO))
def test_the_zoo_finds_saves_and_exports(model, user_dir):
  data = zoo_models.ZOO[model]
  result = _find(model, data, str(user_dir / "runs"))
  assert [(r["level"], r["branch"]) for r in result.rows] == [
      (0, "ticket"), (1, "ticket"), (1, "reinit"), (2, "ticket"), (2, "reinit")]
  mask = pruning.Mask.from_dict(io.read_arrays(
      BranchFiles(os.path.join(result.directory, "replicate_0", "level_2", "ticket")).mask))
  assert 0.0 < mask.weights_remaining() < 0.6
  out = str(user_dir / "ticket")
  tickets.save(result.directory, 0, 2, out, data_dir=str(user_dir / "runs"))
  exported = str(user_dir / "export")
  results = ship.ship(out, ["saved_model", "tflite"], "none", exported,
                      str(user_dir / "runs"), latency_runs=2)
  assert results["failures"] == [], results["failures"]
  for name, row in results["models"].items():
    assert row["agreement_with_keras"] >= ship.FLOAT_AGREEMENT, name
