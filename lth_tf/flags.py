"""The only module that defines and reads absl flags: one flag per config field and per plug-in
option (`lth_tf.options`), flags → config.

Flags are generated from the config dataclasses, so a new config field is a new flag with its
docstring as help; a command's own flags from its record (`lth_tf.commands`). Which group or
command a flag belongs to is recorded when it is defined (`_OWNERS`), never parsed back from
its help. Fields renamed to stay unambiguous (`config_codec.RENAMED_FIELDS`) include `--dataset`
(dataset name), `--model` (model name) and `--pruning_strategy` (pruning strategy name);
`--strategy` is the `tf.distribute` strategy.
"""
import dataclasses
import re
import textwrap
import typing
from typing import Dict, List, Optional, Tuple

from absl import flags

from lth_tf import config as config_lib
from lth_tf import config_codec, settings
from lth_tf import options as options_lib
from lth_tf.errors import ConfigError
from lth_tf import user_code

FLAGS = flags.FLAGS
# The one config field whose flag also takes a comma-separated list: `lth find` runs a rewind
# sweep (`lth_tf.lottery.sweep`), one experiment per k; every other command takes one k.
SWEEP_FLAG = "rewind_iteration"
SWEEP_HELP = (" A comma-separated list (lth find) is a rewind sweep: one experiment per k, "
              "the dense training shared (README, Rewind sweep).")

# Flags lth_tf has retired, with why: given a value other than their old default (off), they are
# refused with that reason before anything runs (an old flagfile gets a clear message rather
# than an unknown flag).
_SLOWER = ("it never trained faster than the default engine on any measured machine "
           "(benchmarks/README.md, \"Training speed\"); drop it: the default engine trains the "
           "branches one by one with the same results within float rounding")
RETIRED = {"batch_variants": _SLOWER, "variant_groups": _SLOWER,
           "replicate_processes": "replicates train at the same time under --executor=ray, on "
                                  "this machine or a cluster (README, \"More than one machine\")"}


def flag_name(part: str, field: str) -> str:
  return config_codec.field_name(part, field)


def _field_help(cls) -> Dict[str, str]:
  """Per-field help text from the dataclass docstring's `Attributes:` section."""
  doc = cls.__doc__ or ""
  fields = {field.name for field in dataclasses.fields(cls)}
  helps, current = {}, None
  for line in doc.split("Attributes:")[-1].splitlines():
    # A field's entry starts at four spaces with its name(s); a continuation line is indented
    # further and may hold a colon of its own ("all: every layer").
    match = re.match(r" {4}([a-z0-9_][a-z0-9_, ]*):\s*(.*)", line)
    names = [n.strip() for n in match.group(1).split(",")] if match else []
    if names and set(names) <= fields:
      for name in names:
        helps[name] = match.group(2)
      current = names
    elif current and line.strip():
      for name in current:
        helps[name] += " " + line.strip()
  return helps


def _parts() -> List[Tuple[str, type]]:
  return [(f.name, type(f.default)) for f in dataclasses.fields(config_lib.ExperimentConfig)]


# The config groups beside the experiment's parts: (config class, its flag name of a field).
_COMMAND_PARTS = {
    "tune": (settings.TuningConfig, lambda field: field),
    "stability": (settings.StabilityConfig, lambda field: f"stability_{field}"),
    "transfer": (settings.TransferConfig, lambda field: field),
}
# Per lth flag: the groups (config parts, command headings) it belongs to, and its help text.
_OWNERS: Dict[str, Tuple[str, ...]] = {}
_HELP: Dict[str, str] = {}


def _groups() -> List[Tuple[str, type, object]]:
  """(group, config class, flag name of a field) of every config group."""
  parts = [(part, cls, lambda field, part=part: flag_name(part, field)) for part, cls in _parts()]
  return parts + [(group, cls, name_of) for group, (cls, name_of) in _COMMAND_PARTS.items()]


def _fields(cls) -> List[dataclasses.Field]:
  """A config class's fields that are flags of their own: all but its plug-ins' options, whose
  flags the plug-ins declare (`lth_tf.options`)."""
  return [f for f in dataclasses.fields(cls) if f.name != config_codec.OPTIONS_FIELD]


def _define(name: str, kind: str, default, text: str, owner: str) -> None:
  """Defines an lth flag once; a flag several commands share gains each as an owner. Its absl
  help names its owners (for --helpfull), which nothing reads back."""
  if name in _OWNERS:
    if owner not in _OWNERS[name]:
      _OWNERS[name] += (owner,)
      FLAGS[name].help = f"[{', '.join(_OWNERS[name])}] {text}"
    return
  _OWNERS[name], _HELP[name] = (owner,), text
  define = {"string": flags.DEFINE_string, "integer": flags.DEFINE_integer,
            "float": flags.DEFINE_float, "bool": flags.DEFINE_bool, "list": flags.DEFINE_list,
            "multi": flags.DEFINE_multi_string}[kind]
  define(name, default, f"[{owner}] {text}")


def define_flags() -> None:
  """Defines one flag per config field of every group (idempotent)."""
  if "pruning_strategy" in FLAGS:
    return
  for group, cls, name_of in _groups():
    helps = _field_help(cls)
    for field in _fields(cls):
      _define_field(name_of(field.name), field, helps.get(field.name, field.name), group)
    for option in config_codec.plugin_options(group, cls).values():
      _define(option.name, "string", option.default, option.help, group)
  for name, off in config_codec.RETIRED_RUNTIME.items():
    _define(name, "bool" if isinstance(off, bool) else "integer", off,
            f"--{name} is retired: {RETIRED[name]}", "retired")


def _define_field(name: str, field: dataclasses.Field, text: str, group: str) -> None:
  default = field.default
  if name == SWEEP_FLAG:
    _define(name, "list", [str(default)], text + SWEEP_HELP, group)
  elif isinstance(default, tuple):
    _define(name, "list", [str(v) for v in default], text, group)
  else:
    kind = {bool: "bool", int: "integer", float: "float"}.get(type(default), "string")
    _define(name, kind, default, text, group)


def define_command_flags(commands) -> None:
  """Defines the own flags of every command record (`lth_tf.commands.Command`; idempotent)."""
  define_flags()
  for command in commands:
    for spec in command.flags:
      _define(spec.name, spec.kind, spec.default, spec.help, spec.group or command.own_heading)


def trust_given_code() -> None:
  """Lets tickets and experiment directories run the user code this command line names: its
  own --model, --dataset and --target_dataset, and --trust_code (where the command reads it)."""
  names = list(FLAGS["trust_code"].value or []) if "trust_code" in FLAGS else []
  for name in ("model", "dataset", "target_dataset"):
    if name in FLAGS and FLAGS[name].present:
      names.append(FLAGS[name].value)
  user_code.trust(names)


def explicit_fields() -> Dict[str, Tuple[str, ...]]:
  """Per config part, the fields whose flag was given (command line or flagfile)."""
  return {part: tuple(f.name for f in _fields(cls) if FLAGS[flag_name(part, f.name)].present)
          for part, cls in _parts()}


def given(name: str):
  """The value of flag `name` if it was given (command line or flagfile), else None."""
  return FLAGS[name].value if FLAGS[name].present else None


def command_values(*names: str) -> Dict[str, object]:
  """The values of the named flags, for subcommands."""
  return {name: FLAGS[name].value for name in names}


def config_from_flags() -> config_lib.ExperimentConfig:
  """Builds the experiment config from the parsed flags (checked later: `validation.validate`).

  Raises:
    ConfigError: `--rewind_iteration` is a list (a rewind sweep is `sweep_from_flags`).
  """
  ks = rewind_iterations()
  if len(ks) != 1:
    raise ConfigError(
        f"--{SWEEP_FLAG} takes one integer here; got {','.join(map(str, ks)) or 'none'} (a "
        "list is a rewind sweep, which lth find runs)")
  return _config_from_flags(ks[0])


def sweep_from_flags() -> Tuple[config_lib.ExperimentConfig, Tuple[int, ...]]:
  """`lth find`'s config and the k's of `--rewind_iteration`: one (an experiment) or several (a
  rewind sweep; checked by `validation.validate_sweep`). The config has the first k."""
  ks = rewind_iterations()
  return _config_from_flags(ks[0] if ks else 0), ks


def rewind_iterations() -> Tuple[int, ...]:
  """The values `--rewind_iteration` was given (one, or a rewind sweep's list)."""
  return tuple(_parse_int(value, SWEEP_FLAG) for value in FLAGS[SWEEP_FLAG].value)


def part_from_flags(group: str, cls, name_of, **fixed):
  """The config part `cls` of `group` from the parsed flags, each field read from flag
  `name_of(field)` (list flags as the field's tuple, `_parse_tuple`), except the `fixed` ones;
  its plug-ins' options from their own flags."""
  values = {}
  for field in _fields(cls):
    name = name_of(field.name)
    value = fixed[field.name] if field.name in fixed else FLAGS[name].value
    if isinstance(field.default, tuple) and field.name not in fixed:
      value = _parse_tuple(field, value, name)
    values[field.name] = value
  plugin = config_codec.plugin_options(group, cls)
  if plugin:
    values[config_codec.OPTIONS_FIELD] = options_lib.normal(
        group, [(name, FLAGS[name].value) for name in plugin])
  return cls(**values)


def _config_from_flags(rewind_iteration: int) -> config_lib.ExperimentConfig:
  for name, why in RETIRED.items():
    if FLAGS[name].value != config_codec.RETIRED_RUNTIME[name]:
      raise ConfigError(f"--{name} is retired: {why}")
  parts = {part: part_from_flags(part, cls, name_of,
                                 **({SWEEP_FLAG: rewind_iteration} if part == "pruning" else {}))
           for part, cls, name_of in _groups() if part not in _COMMAND_PARTS}
  config = config_lib.ExperimentConfig(**parts)
  return _with_ticket(config) if config.runtime.ticket else config


def command_part(group: str):
  """The settings of a command's own config group (`tune`, `stability`, `transfer`) from the
  parsed flags; validation is left to the command."""
  cls, name_of = _COMMAND_PARTS[group]
  return part_from_flags(group, cls, name_of)


def config_to_flags(config: config_lib.ExperimentConfig) -> str:
  """A flagfile that reproduces `config`: one line per field that differs from its default."""
  lines = []
  for part, cls in _parts():
    defaults = cls()
    lines += [f"--{name}={value}" for name, value in
              getattr(getattr(config, part), config_codec.OPTIONS_FIELD, ())]
    for field in _fields(cls):
      value = getattr(getattr(config, part), field.name)
      if value == getattr(defaults, field.name):
        continue
      if isinstance(value, bool):
        text = "true" if value else "false"
      elif isinstance(value, tuple):
        text = ",".join(str(v) for v in value)
      else:
        text = str(value)
      lines.append(f"--{flag_name(part, field.name)}={text}")
  return "\n".join(lines) + "\n"


def _with_ticket(config: config_lib.ExperimentConfig) -> config_lib.ExperimentConfig:
  """Binds `--ticket` into the science: its checksum, and by default its rewind iteration."""
  from lth_tf import tickets  # pylint: disable=import-outside-toplevel
  ticket = tickets.read(tickets.resolve(config.runtime.ticket))
  changes = {"ticket_sha256": ticket.sha256}
  if not FLAGS["rewind_iteration"].present:
    changes["rewind_iteration"] = ticket.config.pruning.rewind_iteration
  return config.replace(pruning=dataclasses.replace(config.pruning, **changes))


def _parse_tuple(field: dataclasses.Field, values, name: str) -> tuple:
  """A list flag's values as the field's tuple: names for `Tuple[str, ...]`, else integers."""
  if typing.get_args(field.type)[:1] == (str,):
    return tuple(str(v) for v in values)
  return tuple(_parse_int(v, name) for v in values)


def _parse_int(text: str, name: str) -> int:
  try:
    return int(text)
  except ValueError:
    raise ConfigError(f"--{name} takes a comma-separated list of integers; got {text!r}") from None


def flags_text(rewind_iteration: Optional[int] = None) -> str:
  """The flags that differ from their defaults, as a flagfile; with `rewind_iteration`, the
  flagfile of that k of a rewind sweep (what the k's run alone would have given)."""
  lines = []
  for part, cls, name_of in _groups():
    if part in ("tune", "stability"):
      continue
    names = [name_of(field.name) for field in _fields(cls)] + list(config_codec.plugin_options(part, cls))
    for name in names:
      flag = FLAGS[name]
      if flag.name == SWEEP_FLAG and rewind_iteration is not None:
        lines.append(f"--{SWEEP_FLAG}={rewind_iteration}")
      elif flag.present or flag.value != flag.default:
        lines.append(flag.serialize())
  return "\n".join(lines) + "\n"


def parse(argv: List[str]) -> List[str]:
  """Parses `argv` (the flags defined: `define_command_flags`); a bad flag or flagfile raises
  `ConfigError`."""
  define_flags()
  try:
    return FLAGS(flagfile_first(argv))
  except flags.Error as error:
    raise ConfigError(str(error).splitlines()[0]) from None


def flagfile_first(argv: List[str]) -> List[str]:
  """Moves `--flagfile` arguments first, so that flags given on the command line override them."""
  head, flagfiles, rest = argv[:1], [], []
  for arg in argv[1:]:
    (flagfiles if arg.startswith("--flagfile") else rest).append(arg)
  return head + flagfiles + rest


# ---- help ---------------------------------------------------------------------------------------

HELP_TOKENS = ("--help", "-h", "--helpshort", "-help", "-?")
_HEADINGS = {"dataset": "data"}


def reads(command) -> set:
  """The lth flags a command record reads: those of its config groups, its own, and `reads`."""
  flags_of_groups = {name for name in _OWNERS if set(_OWNERS[name]) & set(command.groups)}
  return flags_of_groups | {spec.name for spec in command.flags} | set(command.reads)


def foreign(command) -> List[Tuple[str, Tuple[str, ...]]]:
  """The lth flags given (command line or flagfile) that `command` does not read: (name, the
  groups it belongs to) of each; absl's own flags are never foreign, and retired ones say why
  they are retired where they are read."""
  read = reads(command)
  return [(name, _OWNERS[name]) for name in sorted(_OWNERS)
          if FLAGS[name].present and "retired" not in _OWNERS[name] and name not in read]


def _describe(name: str) -> List[str]:
  flag = FLAGS[name]
  default = flag.default
  if isinstance(default, list):
    default = ",".join(str(v) for v in default)
  shown = "" if default in (None, "") else f" (default: {default})"
  lines = [f"  --{name}{shown}"]
  lines += textwrap.wrap(_HELP.get(name, flag.help or ""), width=92, initial_indent="      ",
                         subsequent_indent="      ")
  return lines


def command_help(command, presets: List[str]) -> str:
  """`lth <command> --help`: the flags a command record reads, under its config groups, its
  own heading and "other", with defaults, and the preset flagfiles."""
  own = {spec.name: spec.group or command.own_heading for spec in command.flags}
  order = list(command.groups) + [h for h in dict.fromkeys(own.values()) if h not in command.groups]
  groups: Dict[str, List[str]] = {}
  for name in sorted(reads(command)):
    heading = own.get(name) or next((g for g in command.groups if g in _OWNERS.get(name, ())),
                                    "other")
    groups.setdefault(heading, []).extend(_describe(name))
  usage = command.usage or f"lth {command.name} [--flagfile=FILE] [--flag=value ...]"
  lines = [f"lth {command.name}: {command.summary}", ""]
  lines += textwrap.wrap(f"usage: {usage}", width=96, subsequent_indent="  ")
  if presets:
    lines += [""] + textwrap.wrap("preset flagfiles (--flagfile=...): " + ", ".join(presets),
                                  width=96, subsequent_indent="  ")
  for heading in order + ["other"]:
    if heading in groups:
      lines += ["", f"{_HEADINGS.get(heading, heading)}:"] + groups.pop(heading)
  lines += ["", "--helpfull lists every flag, absl's own included."]
  return "\n".join(lines)


def full_help() -> str:
  """Every flag (absl's own included), as absl lists them."""
  return FLAGS.get_help()
