"""Where the trainings of an experiment run (`--executor`): each executor is one module of this
package that registers itself in `EXECUTORS`.

An executor is `run(work, graph)`: it runs every task of `graph` (each task with the tasks it
waits for, such as `lottery.tasks.FindWork.graph`) after the tasks it waits for, and leaves the
experiment directory as running them one after another in `graph` order here would. `work` is
a `lottery.tasks.Work` in the process that runs the command, whose store is the directory: the
one writer of it, whatever runs the trainings.
"""
from typing import Callable

from lth_tf.registry import Registry, import_modules

EXECUTORS: Registry[Callable] = Registry("executor")


def check(runtime) -> None:
  """Refuses in one line, before anything is written, an executor that cannot run `runtime`
  (a `config.RuntimeConfig`) here: one whose `run` has a `requires(runtime)` that raises (the
  ray executor without Ray installed)."""
  requires = getattr(EXECUTORS.get(runtime.executor), "requires", None)
  if requires is not None:
    requires(runtime)

import_modules(__name__, __path__)

__all__ = ["EXECUTORS", "check"]
