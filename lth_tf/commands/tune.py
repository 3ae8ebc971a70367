"""`lth tune`: keras-tuner's search over the rewind point, learning rate and pruning rate."""
from lth_tf import flags as lth_flags
from lth_tf.commands import EXPERIMENT_GROUPS, TRUST_CODE, Command, register
from lth_tf.errors import UserError

USAGE = ("lth tune --flagfile=FILE [--tuner=random|bayesian|hyperband] [--max_trials=N] "
         "[--target_weights_remaining=W] [--tune_dir=DIR]")


def run(args) -> int:
  from lth_tf import tuning  # pylint: disable=import-outside-toplevel
  if args:
    raise UserError(f"usage: {USAGE}")
  results = tuning.run(lth_flags.config_from_flags(), lth_flags.command_part("tune"),
                       lth_flags.config_to_flags)
  if results is None:
    print("\nnot the chief tuner: results are written by the chief")
    return 0
  print()
  print(tuning.table(results["rows"]))
  print()
  for name, path in results["written"].items():
    print(f"{name}: {path}")
  return 0


register(Command(
    "tune", "Searches the rewind point, learning rate and pruning rate for the best ticket "
    "(keras-tuner).", run,
    usage="lth tune --flagfile=F --tuner=random|bayesian|hyperband --max_trials=N "
    "--target_weights_remaining=W", groups=("tune",) + EXPERIMENT_GROUPS, flags=(TRUST_CODE,),
    presets=True))
