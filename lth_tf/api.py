"""The Python entry points: the engine of `lth find` and `lth train`, the same experiment directory.

    import lth_tf
    result = lth_tf.find(my_module.build_model, (x_train, y_train, x_test, y_test),
                         levels=5, reinit=True, iterations=3000, root_dir="runs")
    print(result.table())

`model` is a registered name, `package.module:function`, or the function itself (it must be
importable from its module, so that a resumed run, a saved ticket and an export can build it
again). `data` is a dataset name (`fashion_mnist`, `tfds:NAME`, `npz:PATH`,
`py:package.module:function`), the four arrays `x_train, y_train, x_test, y_test` (images in
[0, 255], token ids, tabular features or sequences: `lth_tf.data.modality`), or a pair of
`tf.data` datasets of (example, label) for training and test. Arrays and
datasets are stored once in `<root_dir>/datasets/<digest>.npz`, named by their content, and the
experiment reads them from there. Every other setting is a flag of `lth find`, by its flag name.
"""
import dataclasses
import os
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from lth_tf import branches, io, user_code
from lth_tf.config import ExperimentConfig
from lth_tf.config_codec import with_fields
from lth_tf.validation import validate
from lth_tf.data import npz
from lth_tf.data.base import digest
from lth_tf.errors import ConfigError, DataError, UserError
from lth_tf.lottery import LotteryExperiment
from lth_tf.lottery.sweep import RewindSweep
from lth_tf.report import plots, tables
from lth_tf.rundir import finished


@dataclasses.dataclass(frozen=True)
class Result:
  """A finished experiment: its directory, summary rows (as in `summary.json`) and plot."""
  directory: str
  rows: List[Dict[str, Any]]
  plot: str
  config: ExperimentConfig

  def table(self) -> str:
    """The per-level table `lth find` prints."""
    return tables.level_table(self.rows)


def run(config: ExperimentConfig, flags_text: str = "",
        log: Callable[[str], None] = print) -> Result:
  """Runs (or resumes) the experiment `config` describes and draws its accuracy plot."""
  experiment = LotteryExperiment(config, flags_text=flags_text, log=log)
  rows = experiment.run()
  plot = ""
  if experiment.writes:
    plot = plots.accuracy_vs_weights(  # of every level the directory holds
        experiment.summary_rows, os.path.join(experiment.layout.directory,
                                              "accuracy_vs_weights.png"))
  return Result(experiment.layout.directory, rows, plot, experiment.config)


@dataclasses.dataclass(frozen=True)
class SweepResult:
  """A finished rewind sweep: its directory (the record) and each k's experiment."""
  directory: str
  runs: Dict[int, Result]


def run_sweep(config: ExperimentConfig, rewind_iterations: Sequence[int],
              flags_texts: Optional[Mapping[int, str]] = None,
              log: Callable[[str], None] = print) -> SweepResult:
  """Runs (or resumes) a rewind sweep (`lth_tf.lottery.sweep`): the experiment `config`
  describes once per k, level 0 trained once; draws each k's accuracy plot."""
  sweep = RewindSweep(config, rewind_iterations, flags_texts, log)
  rows = sweep.run()
  runs = {}
  for k, experiment in sweep.experiments.items():
    plot = plots.accuracy_vs_weights(
        rows[k], os.path.join(experiment.layout.directory, "accuracy_vs_weights.png"))
    runs[k] = Result(experiment.layout.directory, rows[k], plot, experiment.config)
  return SweepResult(sweep.layout.directory, runs)


def find(model: Union[str, Callable], data: Any, log: Callable[[str], None] = print,
         **settings: Any) -> Result:
  """Runs (or resumes) a lottery experiment on `model` and `data`; see the module docstring.

  Args:
    model: a model name, `package.module:function`, or an importable function
      `(input_shape, num_classes, seed) -> tf_keras model`.
    data: a dataset name, the four arrays, or a (train, test) pair of `tf.data` datasets.
    log: where one line per finished branch goes.
    **settings: flags of `lth find` by name (`levels=5`, `reinit=True`, `root_dir="runs"`).

  Raises:
    UserError: bad settings, model or data, before anything is written.
  """
  return _run_refusing_cleanly(*_config(model, data, settings), log)


def train(model: Union[str, Callable], data: Any, log: Callable[[str], None] = print,
          **settings: Any) -> Result:
  """Trains one dense network (level 0 of `find`, no controls)."""
  config, stored = _config(model, data, dict(settings, levels=0))
  return _run_refusing_cleanly(branches.ticket_only(config), stored, log)


def _run_refusing_cleanly(config: ExperimentConfig, stored: Optional[str],
                          log: Callable[[str], None]) -> Result:
  """`run`; where it refuses the experiment before writing its directory, the arrays this call
  stored for its data (`stored`, a path) are removed too: a refused call leaves nothing behind."""
  try:
    return run(config, log=log)
  except UserError:
    if stored and not os.path.exists(finished.layout_for(config)[0].config_file):
      os.remove(stored)
      folder = os.path.dirname(stored)
      if not os.listdir(folder):
        os.rmdir(folder)
    raise


def _config(model: Union[str, Callable], data: Any,
            settings) -> Tuple[ExperimentConfig, Optional[str]]:
  """The experiment's config, and the path of the arrays stored for `data` by this call (None
  where none were stored)."""
  config = with_fields(ExperimentConfig(), **settings)
  validate(with_fields(config, model=model_name(model)))  # before arrays are stored for `data`
  dataset, stored = _dataset(data, config.runtime.root_dir)
  config = with_fields(config, model=model_name(model), dataset=dataset)
  user_code.trust(user_code.named_code(config))  # named by the caller: its directory may run it
  return config, stored


def model_name(model: Union[str, Callable]) -> str:
  """The config name of `model`: a name as given, a function as `module:function`."""
  if isinstance(model, str):
    return model
  return _function_spec(model, "model")


def dataset_name(data: Any, root_dir: str) -> str:
  """The config name of `data`: a name as given; arrays or datasets stored by content."""
  return _dataset(data, root_dir)[0]


def _dataset(data: Any, root_dir: str) -> Tuple[str, Optional[str]]:
  """(`dataset_name`, the path of the arrays stored now, or None: a name, or arrays stored
  before)."""
  if isinstance(data, str):
    return data, None
  if callable(data):
    return "py:" + _function_spec(data, "dataset"), None
  arrays = _arrays(data)
  name = digest(*(arrays[key] for key in npz.KEYS))[:16]
  path = os.path.join(root_dir, "datasets", f"{name}.npz")
  if os.path.exists(path):
    return f"npz:{path}", None
  io.write_arrays(path, arrays)
  return f"npz:{path}", path


def _arrays(data: Any) -> Dict[str, np.ndarray]:
  if isinstance(data, (tuple, list)) and len(data) == 4:
    return {key: np.asarray(value) for key, value in zip(npz.KEYS, data)}
  if isinstance(data, (tuple, list)) and len(data) == 2:
    train, test = (_materialise(split, name) for split, name in zip(data, ("train", "test")))
    return {"x_train": train[0], "y_train": train[1], "x_test": test[0], "y_test": test[1]}
  raise DataError("data must be a dataset name, the four arrays (x_train, y_train, x_test, "
                  f"y_test) or a (train, test) pair of tf.data datasets; got {type(data).__name__}")


def _materialise(dataset: Any, split: str):
  """A `tf.data` dataset of (image, label) examples, unbatched, as two arrays."""
  if not hasattr(dataset, "as_numpy_iterator"):
    raise DataError(f"the {split} split must be a tf.data dataset of (image, label); got "
                    f"{type(dataset).__name__}")
  images, labels = [], []
  for example in dataset.as_numpy_iterator():
    if not isinstance(example, tuple) or len(example) != 2:
      raise DataError(f"the {split} split must yield (image, label) pairs")
    images.append(example[0])
    labels.append(example[1])
  if not images:
    raise DataError(f"the {split} split is empty")
  return np.stack(images), np.asarray(labels)


def _function_spec(function: Callable, what: str) -> str:
  """`module:function` of an importable top-level function (of `__main__`: its file's name)."""
  module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
  if module == "__main__":
    main = getattr(sys.modules["__main__"], "__file__", None)
    if main is None:
      raise ConfigError(f"the {what} function {name} is defined interactively; define it in a "
                        "module (a .py file) and pass it or its 'module:function' name")
    module = os.path.splitext(os.path.basename(main))[0]
  spec = f"{module}:{name}"
  if not module or not user_code.is_spec(spec):
    raise ConfigError(f"the {what} function {name or function!r} must be a top-level function "
                      "of a module, so that a resumed run, a ticket and an export can import it")
  user_code.source_file(spec, what)
  return spec
