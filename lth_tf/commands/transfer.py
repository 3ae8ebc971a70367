"""`lth transfer`: a ticket trained on another dataset, class subset, optimizer or budget."""
import os

from lth_tf import flags as lth_flags
from lth_tf.commands import TRUST_CODE, Command, register
from lth_tf.errors import UserError

USAGE = ("lth transfer --ticket=NAME_OR_PATH --target_dataset=D [--target_classes=...] "
         "[--target_optimizer=adam|sgd] [--train_examples_per_class=N] [--target_ticket=T] "
         "--root_dir=DIR")


def run(args) -> int:
  from lth_tf import transfer  # pylint: disable=import-outside-toplevel
  from lth_tf.report import transfer as transfer_report  # pylint: disable=import-outside-toplevel
  if args:
    raise UserError(f"usage: {USAGE}")
  experiment = transfer.from_flags(
      lth_flags.config_from_flags(), lth_flags.command_part("transfer"),
      lth_flags.explicit_fields(), flags_text=lth_flags.flags_text())
  experiment.run()
  directory = experiment.layout.directory
  finished = transfer_report.TransferRun.read(directory)
  print()
  print(transfer_report.table([finished]))
  plot = transfer_report.figure([finished], os.path.join(directory, "transfer.png"))
  print(f"\nexperiment directory: {directory}")
  print(f"plot: {plot}")
  return 0


register(Command(
    "transfer", "Trains a ticket on another dataset, class subset, optimizer or budget beside "
    "its controls.", run, usage="lth transfer --ticket=T --target_dataset=D",
    groups=("transfer", "dataset", "training", "pruning", "runtime"), flags=(TRUST_CODE,),
    presets=True))
