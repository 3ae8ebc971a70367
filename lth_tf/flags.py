"""The only module that defines and reads absl flags: one flag per config field, flags → config.

Flags are generated from the config dataclasses, so a new config field is a new flag with its
docstring as help. Three fields are renamed to stay unambiguous: `--dataset` (dataset name),
`--model` (model name) and `--pruning_strategy` (pruning strategy name); `--strategy` is the
`tf.distribute` strategy.
"""
import dataclasses
import re
from typing import Dict, List, Tuple

from absl import flags

from lth_tf import config as config_lib

FLAGS = flags.FLAGS

_RENAMED = {
    ("dataset", "name"): "dataset",
    ("model", "name"): "model",
    ("pruning", "strategy"): "pruning_strategy",
}


def flag_name(part: str, field: str) -> str:
  return _RENAMED.get((part, field), field)


def _field_help(cls) -> Dict[str, str]:
  """Per-field help text from the dataclass docstring's `Attributes:` section."""
  doc = cls.__doc__ or ""
  helps, current = {}, None
  for line in doc.split("Attributes:")[-1].splitlines():
    match = re.match(r"\s{4}([a-z_, ]+):\s*(.*)", line)
    if match:
      names = [n.strip() for n in match.group(1).split(",")]
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
    helps = _field_help(cls)
    for field in dataclasses.fields(cls):
      name = flag_name(part, field.name)
      help_text = f"[{part}] " + helps.get(field.name, field.name)
      default = field.default
      if isinstance(default, bool):
        flags.DEFINE_bool(name, default, help_text)
      elif isinstance(default, int):
        flags.DEFINE_integer(name, default, help_text)
      elif isinstance(default, float):
        flags.DEFINE_float(name, default, help_text)
      elif isinstance(default, tuple):
        flags.DEFINE_list(name, [str(v) for v in default], help_text)
      else:
        flags.DEFINE_string(name, default, help_text)


def config_from_flags() -> config_lib.ExperimentConfig:
  """Builds the experiment config from the parsed flags; validation is left to `config.validate`."""
  parts = {}
  for part, cls in _parts():
    values = {}
    for field in dataclasses.fields(cls):
      value = FLAGS[flag_name(part, field.name)].value
      if isinstance(field.default, tuple):
        value = tuple(_parse_int(v, flag_name(part, field.name)) for v in value)
      values[field.name] = value
    parts[part] = cls(**values)
  return config_lib.ExperimentConfig(**parts)


def _parse_int(text: str, name: str) -> int:
  try:
    return int(text)
  except ValueError:
    raise config_lib.ConfigError(f"--{name} takes a comma-separated list of integers; got {text!r}") from None


def flags_text() -> str:
  """The flags that differ from their defaults, as a flagfile."""
  lines = []
  for part, cls in _parts():
    for field in dataclasses.fields(cls):
      flag = FLAGS[flag_name(part, field.name)]
      if flag.present or flag.value != flag.default:
        lines.append(flag.serialize())
  return "\n".join(lines) + "\n"


def flagfile_first(argv: List[str]) -> List[str]:
  """Moves `--flagfile` arguments first, so that flags given on the command line override them."""
  head, flagfiles, rest = argv[:1], [], []
  for arg in argv[1:]:
    (flagfiles if arg.startswith("--flagfile") else rest).append(arg)
  return head + flagfiles + rest
