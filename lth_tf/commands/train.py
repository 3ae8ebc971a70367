"""`lth train`: one network, dense or a saved ticket (`--ticket`), and its metrics."""
import dataclasses

from lth_tf import branches
from lth_tf import flags as lth_flags
from lth_tf.commands import TRUST_CODE, Command, register
from lth_tf.commands.find import run_experiment


def run(args) -> int:
  config = lth_flags.config_from_flags()
  config = config.replace(pruning=dataclasses.replace(config.pruning, levels=0))
  return run_experiment(branches.ticket_only(config))


register(Command(
    "train", "Trains one network (dense, or a saved ticket with --ticket) and prints its metrics.",
    run, groups=("dataset", "model", "training", "runtime"), flags=(TRUST_CODE,),
    reads=("rewind_iteration",), presets=True))
