"""An experiment session: what every command that trains branches in an experiment directory
opens first, in one order (`lth find`, `lth transfer`, `lth stability`).

The step engine is resolved against the directory's record (`training.engines`: a rerun keeps
the engine it started with), the `tf.distribute` strategy is built from the resolved runtime,
the chief alone writes (`RunDirectory`, its artifact store), and one `BranchRun` trains and
records every branch.
"""
import dataclasses
from typing import Callable

from lth_tf import distribute
from lth_tf.config import ExperimentConfig
from lth_tf.lottery.branch_run import BranchRun
from lth_tf.lottery.directory import RunDirectory
from lth_tf.rundir import ExperimentLayout
from lth_tf.training import engines


@dataclasses.dataclass
class Session:
  """The opened experiment: its config (engine resolved), strategy, directory (with its store;
  `writes` on the chief only) and the trainer of its branches."""
  config: ExperimentConfig
  strategy: object
  directory: RunDirectory
  trainer: BranchRun

  @property
  def writes(self) -> bool:
    return self.directory.writes

  @property
  def store(self):
    return self.directory.store


def open_session(config: ExperimentConfig, layout: ExperimentLayout, data,
                 log: Callable[[str], None], on_branch_finished: Callable[[], None],
                 strategy=None, resolve_engine: bool = True) -> Session:
  """Opens the experiment `config` describes in `layout`'s directory.

  Args:
    data: its loaded splits (the engine is resolved for their shapes).
    on_branch_finished: called after each finished branch (the summary kept current).
    strategy: a strategy already built (stability reuses the level loop's); built from the
      resolved runtime otherwise.
    resolve_engine: False for a finished experiment whose recorded config already holds its
      engine (`lth stability` on a directory).
  """
  if resolve_engine:
    config = engines.resolve(config, data.input_shape, data.num_classes, layout.engine_file,
                             layout.config_file, log)
  strategy = strategy if strategy is not None else distribute.make_strategy(config.runtime)
  directory = RunDirectory(layout, distribute.is_chief(strategy))
  return Session(config, strategy, directory,
                 BranchRun(config, directory, log, on_branch_finished))
