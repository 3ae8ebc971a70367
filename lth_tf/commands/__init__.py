"""The `lth` commands: one module per command, each registering one `Command` record.

A record says everything the command line needs: the name, a one-line summary and the usage,
the config groups whose flags the command reads (`dataset`, `model`, ..., generated from the
config dataclasses), its own flags (`Flag` specs, declared here once when several commands share
one), the flags of other groups it reads too, and `run`. `lth --help`, `lth <command> --help`,
the flag definitions and the refusal of another command's flags (`lth_tf.flags`) are all
generated from the records, so a new command is one new module here.
"""
import dataclasses
from typing import Any, Callable, List, Tuple

from lth_tf.errors import UserError
from lth_tf.registry import Registry, import_modules


@dataclasses.dataclass(frozen=True)
class Flag:
  """A command's own flag (not a config field).

  Attributes:
    name: the flag's name (`--name`).
    default: its default (None: not given).
    help: its help text.
    kind: `string`, `integer`, `list` (comma-separated) or `multi` (a string given repeatedly).
    group: the help heading it is shown under (default: the command's own heading).
  """
  name: str
  default: Any
  help: str
  kind: str = "string"
  group: str = ""


@dataclasses.dataclass(frozen=True)
class Command:
  """One `lth` command.

  Attributes:
    name: `lth <name>`.
    summary: one line, for `lth --help`.
    run: `run(args)` with the positional words after the name; returns the exit status.
    usage: the usage line of `lth <name> --help` (default: the generic one).
    groups: the config groups whose flags it reads, in its help's order.
    flags: its own flags, shown under `heading`.
    heading: the help heading of its own flags (default: the name).
    reads: flags of other groups it reads too (shown under "other").
    presets: whether its help lists the preset flagfiles of `flags/`.
  """
  name: str
  summary: str
  run: Callable[[List[str]], int]
  usage: str = ""
  groups: Tuple[str, ...] = ()
  flags: Tuple[Flag, ...] = ()
  heading: str = ""
  reads: Tuple[str, ...] = ()
  presets: bool = False

  @property
  def own_heading(self) -> str:
    return self.heading or self.name


COMMANDS: Registry[Command] = Registry("command")

# The config groups of an experiment, as most commands read them.
EXPERIMENT_GROUPS = ("dataset", "model", "training", "pruning", "runtime")

# Flags several commands read.
EXPERIMENT_DIR = Flag("experiment_dir", None, "a finished experiment directory (report, masks "
                      "compare: repeatable)", "multi")
OUT = Flag("out", None, "output directory")
TRUST_CODE = Flag("trust_code", [], "the user code (model and dataset functions, as the ticket or "
                  "config.json names them: package.module:function, py:package.module:function) "
                  "that a ticket or an experiment directory may run; by default they may name only "
                  "registered models and datasets (lth tickets show says what a ticket names)",
                  "list", group="runtime")


def register(command: Command) -> Command:
  """Registers a command record under its name."""
  COMMANDS.add(command.name, command)
  return command


def records() -> List[Command]:
  """Every command's record, by name."""
  return [COMMANDS.get(name) for name in COMMANDS.names()]


def levels_list(values, flag: str) -> List[int]:
  """A list flag's values as level numbers; one line naming the flag otherwise."""
  try:
    return [int(value) for value in values]
  except ValueError:
    raise UserError(f"--{flag} takes a comma-separated list of integers") from None


import_modules(__name__, __path__)
