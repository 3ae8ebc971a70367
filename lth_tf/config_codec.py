"""How a config is written, read, named and edited: `config.json` parts read back with their
types checked and retired fields dropped, flag names of renamed fields, the experiment and sweep
hashes, and fields set by their flag names (`lth_tf.config` is the schema these work on).

The hash covers the scientific fields only (dataset, model, training, pruning) and, as in
open_lth, only the fields whose value differs from its default: adding a new field with a
default later keeps every old experiment directory findable.
"""
import dataclasses
import hashlib
import json
import numbers
import typing
from typing import Any, Dict

from lth_tf import options
from lth_tf.errors import ConfigError


# Runtime settings lth_tf no longer has, with the value they held when off. The `config.json` of
# a directory from before their retirement still holds them; being runtime settings they are
# not part of the experiment, so reading drops them (the directory's `engine.json` says whether
# one of the batched-engine settings trained it: `lth_tf.rundir.records`; worker processes
# trained exactly what one process trains).
RETIRED_RUNTIME = {"batch_variants": False, "variant_groups": 1, "replicate_processes": 1}


# Per config part, its retired fields.
RETIRED_FIELDS = {"runtime": RETIRED_RUNTIME}


# The field of a part that holds its plug-ins' options (`lth_tf.options`).
OPTIONS_FIELD = "options"


def plugin_options(part: str, part_cls) -> Dict[str, "options.Option"]:
  """The options plug-ins declare for config part `part` (none for a class without options)."""
  if all(f.name != OPTIONS_FIELD for f in dataclasses.fields(part_cls)):
    return {}
  return options.declared(part)


def flat_dict(part) -> Dict[str, Any]:
  """A config part as a dict, its plug-in options as fields of their own (`config.json`)."""
  out = dataclasses.asdict(part)
  out.update(dict(out.pop(OPTIONS_FIELD, ())))
  return out


def part_from_dict(part: str, part_cls, values: Dict[str, Any]):
  """The config part `part` (of class `part_cls`) from its dict in a `config.json`: retired
  fields dropped, lists as tuples, every type checked; unknown fields are a `ConfigError`."""
  known = {f.name: f for f in dataclasses.fields(part_cls)}
  retired = RETIRED_FIELDS.get(part, {})
  values = {name: value for name, value in values.items() if name not in retired}
  declared = plugin_options(part, part_cls)
  plugin = {name for name in values if name not in known and name in declared}
  unknown = set(values) - set(known) - set(plugin)
  if unknown:
    raise ConfigError(f"unknown {part_cls.__name__} fields: {', '.join(sorted(unknown))}")
  kwargs = {}
  for name, value in values.items():
    if name in plugin:
      continue
    if isinstance(known[name].default, tuple) and isinstance(value, (list, tuple)):
      value = tuple(value)
    kwargs[name] = value
  if plugin:
    kwargs[OPTIONS_FIELD] = options.normal(part, list(kwargs.get(OPTIONS_FIELD, ())) +
                                           [(name, values[name]) for name in plugin])
  part = part_cls(**kwargs)
  check_types(part)
  return part


def _is_a(value, hint) -> bool:
  """Whether `value` has the annotated type `hint` (bool, int, float, str, a tuple of one of
  them); an int is a float, a bool is no number."""
  if hint is bool:
    return isinstance(value, bool)
  if hint is int:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
  if hint is float:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
  if hint is str:
    return isinstance(value, str)
  if typing.get_origin(hint) is tuple:
    element = typing.get_args(hint)[0]
    return isinstance(value, (tuple, list)) and all(_is_a(item, element) for item in value)
  return True


def _type_name(hint) -> str:
  if typing.get_origin(hint) is tuple:
    return f"a list of {_type_name(typing.get_args(hint)[0])}"
  return {bool: "true or false", int: "an integer", float: "a number",
          str: "a string"}.get(hint, str(hint))


def check_types(part) -> None:
  """Every field of a config part has its annotated type (a `config.json` edited by hand, or a
  keyword of the Python API: `iterations=100.0`); one-line `ConfigError` otherwise."""
  hints = typing.get_type_hints(type(part))
  for field in dataclasses.fields(part):
    value = getattr(part, field.name)
    if not _is_a(value, hints[field.name]):
      raise ConfigError(f"{field.name} must be {_type_name(hints[field.name])}; got "
                        f"{value!r} ({type(value).__name__})")


def non_default_fields(part) -> Dict[str, Any]:
  """The fields of a config part whose value differs from its default (tuples as lists)."""
  defaults = type(part)()
  out = {}
  for field in dataclasses.fields(part):
    value = getattr(part, field.name)
    if field.name == OPTIONS_FIELD:
      out.update(dict(value))  # held only where they differ from their defaults: flat
    elif value != getattr(defaults, field.name):
      out[field.name] = list(value) if isinstance(value, tuple) else value
  return out


# Fields whose flag (and keyword of `lth_tf.api.find`) has another name, to stay unambiguous:
# `--dataset`, `--model` and `--pruning_strategy` (`--strategy` is the `tf.distribute` strategy).
RENAMED_FIELDS = {
    ("dataset", "name"): "dataset",
    ("model", "name"): "model",
    ("pruning", "strategy"): "pruning_strategy",
    ("dataset", "source_sha256"): "dataset_sha256",
    ("model", "source_sha256"): "model_sha256",
}


def field_name(part: str, field: str) -> str:
  """The flag name of a config field (its own name unless renamed above)."""
  return RENAMED_FIELDS.get((part, field), field)


def with_fields(config, **values: Any):
  """`config` with fields set by their flag names, e.g. `levels=5, model="conv2", seeds=(0, 1)`.

  Raises:
    ConfigError: a name that is no config field, or a value of the wrong type.
  """
  parts_of = [f.name for f in dataclasses.fields(type(config))]
  where = {field_name(part, f.name): (part, f.name) for part in parts_of
           for f in dataclasses.fields(type(getattr(config, part))) if f.name != OPTIONS_FIELD}
  plugin = {name: part for part in parts_of
            for name in plugin_options(part, type(getattr(config, part)))}
  unknown = sorted(set(values) - set(where) - set(plugin))
  if unknown:
    raise ConfigError(f"unknown settings {unknown}; the settings are the flags of `lth find`")
  changes: Dict[str, Dict[str, Any]] = {}
  for name, value in values.items():
    if name in where:
      part, field = where[name]
      changes.setdefault(part, {})[field] = tuple(value) if isinstance(value, list) else value
  for name, part in plugin.items():
    if name in values:
      held = dict(changes.get(part, {}).get(OPTIONS_FIELD, getattr(config, part).options))
      held[name] = values[name]
      changes.setdefault(part, {})[OPTIONS_FIELD] = options.normal(part, held.items())
  parts = {part: dataclasses.replace(getattr(config, part), **fields)
           for part, fields in changes.items()}
  for part in parts.values():
    check_types(part)  # a wrong type is one line here, not a TypeError where it is first used
  return config.replace(**parts)


def experiment_hash(config) -> str:
  """Returns a 12-hex-digit hash naming the experiment directory."""
  payload = {
      part: non_default_fields(getattr(config, part)) for part in config.SCIENTIFIC_PARTS
  }
  text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def with_rewind_iteration(config, k: int):
  """`config` rewinding to iteration `k`: one experiment of a rewind sweep."""
  return config.replace(pruning=dataclasses.replace(config.pruning, rewind_iteration=k))


def sweep_hash(experiment_hashes) -> str:
  """12 hex digits naming a rewind sweep: the hash of its experiments' hashes, in k order.

  Each experiment keeps the hash of a run with its k alone (`experiment_hash`); the sweep is
  named by the list of them."""
  text = json.dumps({"experiments": list(experiment_hashes)}, separators=(",", ":"))
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
