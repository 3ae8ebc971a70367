"""Options a plug-in declares for itself (a pruning strategy's `--nm`), kept out of the schema.

A config part with plug-in options (`PruningConfig.options`) holds the values that differ from
their defaults as (name, value) pairs. Everywhere else an option looks like a field of its own:
a flag (`--nm=3:8`), a keyword of the Python API, a key of the part in `config.json` and in the
experiment hash (written only when it differs from its default, so a new option moves no
directory), each read through the declarations here.
"""
import dataclasses
import importlib
from typing import Any, Callable, Dict, Iterable, Mapping, Tuple

from lth_tf.errors import ConfigError

# The packages whose modules declare options, per config part; imported on first use.
_DECLARING = {"pruning": "lth_tf.pruning.strategies"}
_DECLARED: Dict[str, Dict[str, "Option"]] = {}


@dataclasses.dataclass(frozen=True)
class Option:
  """One plug-in option.

  Attributes:
    name: its flag and key (`nm`).
    default: its default, as a flag gives it (a string).
    help: its help text.
    parse: the value the plug-in reads from the string (`"2:4"` -> (2, 4)); raises
      `ConfigError` for a bad one.
    owner: the plug-in that reads it (a strategy's name).
  """
  name: str
  default: str
  help: str
  parse: Callable[[str], Any]
  owner: str


def declare(part: str, option: Option) -> Option:
  """Declares `option` of config part `part` (called by the plug-in's module)."""
  options = _DECLARED.setdefault(part, {})
  if option.name in options:
    raise ValueError(f"{part} option {option.name!r} is declared twice")
  options[option.name] = option
  return option


def declared(part: str) -> Dict[str, Option]:
  """Every option of config part `part`, by name (the declaring plug-ins imported first)."""
  if part in _DECLARING:
    importlib.import_module(_DECLARING[part])
  return dict(_DECLARED.get(part, {}))


def normal(part: str, values: Iterable[Tuple[str, Any]]) -> Tuple[Tuple[str, str], ...]:
  """The (name, value) pairs a part holds: declared names only, values as strings, those equal
  to their defaults dropped, sorted by name; a one-line `ConfigError` for an unknown name."""
  options = declared(part)
  out = {}
  for name, value in values:
    if name not in options:
      raise ConfigError(f"unknown {part} option {name!r}; the options are "
                        f"{', '.join(sorted(options)) or 'none'}")
    if not isinstance(value, str):
      raise ConfigError(f"{name} must be a string; got {value!r} ({type(value).__name__})")
    if value != options[name].default:
      out[name] = value
  return tuple(sorted(out.items()))


def value(part: str, values: Mapping[str, str], name: str) -> str:
  """The value of option `name`: the one held, or its default."""
  return values.get(name, declared(part)[name].default)
