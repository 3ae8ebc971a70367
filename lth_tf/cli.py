"""The `lth` command: `lth <command> [--flagfile=F] [--flag=value ...]`.

The commands are records registered in `lth_tf.commands` (one module each); this module parses
the flags they declare, prints the help generated from them, runs one, and turns user errors
into one line on stderr and exit code 2.
"""
import os
import signal
import sys
from typing import List

from absl import app
from absl import logging as absl_logging

from lth_tf import flags as lth_flags
from lth_tf.commands import COMMANDS, records
from lth_tf.errors import Interrupted, TrainingDiverged, UserError

USAGE_EXIT = 2


def _fail(message: str) -> None:
  print(f"lth: error: {message}", file=sys.stderr)
  sys.exit(USAGE_EXIT)


PRESETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flags")


def overview() -> str:
  """`lth --help`: the commands, one line each."""
  lines = ["usage: lth <command> [--flagfile=FILE] [--flag=value ...]", "", "commands:"]
  lines += [f"  {name:<10} {COMMANDS.get(name).summary}" for name in COMMANDS.names()]
  lines += ["", "lth <command> --help lists a command's flags; --helpfull lists every flag."]
  return "\n".join(lines)


def command_help(name: str) -> str:
  """`lth <command> --help`: the command's own flags, grouped, with the preset flagfiles."""
  command = COMMANDS.get(name)
  presets = []
  if command.presets and os.path.isdir(PRESETS_DIR):
    presets = [f"flags/{f}" for f in sorted(os.listdir(PRESETS_DIR)) if f.endswith(".flags")]
  lth_flags.define_command_flags(records())
  return lth_flags.command_help(command, presets)


def _help_requested(argv: List[str]) -> None:
  """Prints the help asked for and exits 0; returns when none is asked for."""
  words = argv[1:]
  if "--helpfull" in words:
    lth_flags.define_command_flags(records())
    _print_and_exit(lth_flags.full_help())
  if any(word in lth_flags.HELP_TOKENS for word in words) or words[:1] == ["help"]:
    command = words[1] if words[:1] == ["help"] and len(words) > 1 else (words[0] if words else "")
    _print_and_exit(command_help(command) if command in COMMANDS else overview())


def _print_and_exit(text: str) -> None:
  """Prints help and exits 0, also when the reader stops early (`lth find --help | head`)."""
  try:
    print(text, flush=True)
  except BrokenPipeError:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
  sys.exit(0)


def _parse(argv: List[str]) -> List[str]:
  _help_requested(argv)
  lth_flags.define_command_flags(records())
  try:
    return lth_flags.parse(argv)
  except UserError as error:
    _fail(str(error))
  return []


def _refuse_foreign_flags(name: str) -> None:
  """A flag of another command (`lth find --formats=onnx`) is an error, not silently ignored."""
  given = lth_flags.foreign(COMMANDS.get(name))
  if given:
    flag, owners = given[0]
    others = ", ".join(f"--{other}" for other, _ in given[1:])
    raise UserError(f"--{flag} is a flag of {' and '.join(owners)}, which lth {name} does not "
                    f"read" + (f" (nor {others})" if others else "") +
                    f"; see lth {name} --help")


def _terminate(signum, frame) -> None:
  """SIGTERM stops a command as Ctrl-C does: files stay sound, the lock is released."""
  raise Interrupted(signum)


def _main(argv: List[str]) -> None:
  absl_logging.set_verbosity(absl_logging.WARNING)
  signal.signal(signal.SIGTERM, _terminate)
  if len(argv) < 2:
    print(overview(), file=sys.stderr)
    sys.exit(USAGE_EXIT)
  try:
    command = COMMANDS.get(argv[1])
    _refuse_foreign_flags(argv[1])
    lth_flags.trust_given_code()
    sys.exit(command.run(argv[2:]))
  except UserError as error:
    _fail(str(error))
  except TrainingDiverged as error:
    print(f"lth: training diverged: {error}", file=sys.stderr)
    sys.exit(1)
  except KeyboardInterrupt as interrupt:
    signum = getattr(interrupt, "signum", signal.SIGINT)
    where = getattr(interrupt, "where", "")
    print(f"lth: {'terminated' if signum == signal.SIGTERM else 'interrupted'}" +
          (f" {where}; rerun the same command to resume" if where else ""),
          file=sys.stderr)
    sys.exit(128 + signum)
  except OSError as error:  # the environment, not the code: a full disk, a missing permission
    _fail(f"{error.strerror.lower() if error.strerror else error}"
          f"{f': {error.filename}' if error.filename else ''}")


def main() -> None:
  """Console-script entry point."""
  app.run(_main, flags_parser=_parse)


if __name__ == "__main__":
  main()
