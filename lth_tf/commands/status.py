"""`lth status`: what an experiment directory has finished and what a rerun would still train,
per replicate, level and branch, read from its files alone (no TensorFlow, no lock taken)."""
import dataclasses
import os
from typing import List

from lth_tf import branches, rundir
from lth_tf import flags as lth_flags
from lth_tf.commands import EXPERIMENT_DIR, Command, register
from lth_tf.settings import TransferConfig
from lth_tf.errors import UserError

# Per branch: finished (its metrics exist), started (a checkpoint or a mask, no metrics), or not.
FINISHED, STARTED, WAITING = "done", "started", "-"


def branch_state(files: rundir.BranchFiles) -> str:
  if files.is_finished():
    return FINISHED
  if os.path.exists(files.checkpoint) or os.path.exists(files.mask):
    return STARTED
  return WAITING


def status(directory: str) -> List[str]:
  """The lines of `lth status`: the experiment, then one table row per replicate and level."""
  recorded = rundir.read_config(directory)
  config = recorded.config
  layout = rundir.ExperimentLayout.from_directory(directory)
  if recorded.is_transfer:  # its branches are switched by the transfer settings it recorded
    fields = {f.name for f in dataclasses.fields(TransferConfig)}
    settings = TransferConfig(**{key: tuple(value) if isinstance(value, list) else value
                                 for key, value in recorded.transfer.items() if key in fields})
    names = branches.enabled("transfer", settings)
  else:
    names = branches.enabled("find", config)
  levels = 0 if recorded.is_transfer else config.pruning.levels
  lines = [f"experiment {layout.experiment_hash}: {config.model.name} on {config.dataset.name}, "
           f"{levels} levels, replicates {', '.join(map(str, config.runtime.seeds))}",
           "", "| replicate | level | " + " | ".join(names) + " |",
           "|---" * (len(names) + 2) + "|"]
  left = 0
  for seed in config.runtime.seeds:
    for level in range(levels + 1):
      trained = names if level or recorded.is_transfer else ("ticket",)
      states = [branch_state(rundir.BranchFiles(layout.branch_dir(seed, level, name)))
                if name in trained else "" for name in names]
      left += sum(state in (STARTED, WAITING) for state in states)
      lines.append(f"| {seed} | {level} | " + " | ".join(states) + " |")
  lines += ["", f"{left} branch{'es' if left != 1 else ''} left to train"
            + (" (rerun the same command to finish)" if left else "")]
  return lines


def run(args) -> int:
  directories = lth_flags.command_values("experiment_dir")["experiment_dir"] or []
  if args or len(directories) != 1:
    raise UserError("usage: lth status --experiment_dir=DIR")
  print("\n".join(status(directories[0])))
  return 0


register(Command(
    "status", "Says what an experiment directory has finished and what is left to train.", run,
    usage="lth status --experiment_dir=DIR", flags=(EXPERIMENT_DIR,)))
