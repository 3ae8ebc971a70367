"""Flags are generated from the config dataclasses: every field is a flag with its help, and a
value given as a flag reaches the config."""
import dataclasses

import pytest
from absl import flags as absl_flags

from lth_tf import commands
from lth_tf import config as config_lib
from lth_tf import config_codec
from lth_tf.errors import ConfigError
from lth_tf import flags as lth_flags

# Every field but a part's plug-in options (each option is a flag its plug-in declares:
# tests/pruning/test_nm.py).
FIELDS = [(part.name, field.name)
          for part in dataclasses.fields(config_lib.ExperimentConfig)
          for field in dataclasses.fields(type(part.default))
          if field.name != config_codec.OPTIONS_FIELD]


@pytest.fixture
def parsed():
  lth_flags.define_command_flags(commands.records())
  flag_values = absl_flags.FLAGS

  def parse(*args):
    flag_values.unparse_flags()
    flag_values(["lth"] + list(args))
    return lth_flags.config_from_flags()
  yield parse
  flag_values.unparse_flags()


@pytest.mark.parametrize("part, field", FIELDS, ids=lambda v: str(v))
def test_every_config_field_is_a_flag_with_its_docstring_as_help(part, field):
  lth_flags.define_flags()
  name = config_codec.field_name(part, field)
  flag = absl_flags.FLAGS[name]
  assert flag.help.startswith(f"[{part}] ") and flag.help != f"[{part}] {field}"


@pytest.mark.parametrize("part, field", FIELDS, ids=lambda v: str(v))
def test_a_help_text_is_the_whole_docstring_entry(part, field):
  """A continuation line of a docstring entry that holds a colon ("convolutions only: ...") is
  part of the entry, not a field of its own that cuts the help short."""
  cls = type(getattr(config_lib.ExperimentConfig(), part))
  entry = cls.__doc__.split("Attributes:")[-1].split(f"\n    {field}:")
  if len(entry) < 2:
    pytest.skip("documented together with other fields")
  lines = [entry[1].splitlines()[0].strip()]
  for line in entry[1].splitlines()[1:]:
    if not line.startswith("      "):
      break
    lines.append(line.strip())
  assert lth_flags._field_help(cls)[field] == " ".join(lines)  # pylint: disable=protected-access


def _other_value(value):
  if isinstance(value, bool):
    return "true" if not value else "false", (not value)
  if isinstance(value, int):
    return str(value + 3), value + 3
  if isinstance(value, float):
    return repr(value / 2 if value else 0.25), (value / 2 if value else 0.25)
  return None


# String and list fields have their own choices (tested with their validation and below).
SCALAR_FIELDS = [(part, field) for part, field in FIELDS if _other_value(
    getattr(getattr(config_lib.ExperimentConfig(), part), field)) is not None]


@pytest.mark.parametrize("part, field", SCALAR_FIELDS, ids=lambda v: str(v))
def test_a_numeric_or_boolean_flag_reaches_its_config_field(part, field, parsed):
  default = getattr(getattr(config_lib.ExperimentConfig(), part), field)
  text, value = _other_value(default)
  name = config_codec.field_name(part, field)
  args = [f"--{name}={text}"] if not isinstance(default, bool) else [
      f"--{name}" if value else f"--no{name}"]
  config = parsed(*args)
  assert getattr(getattr(config, part), field) == value


def test_list_and_renamed_flags_reach_the_config(parsed):
  config = parsed("--dataset=synthetic", "--model=conv2", "--pruning_strategy=random",
                  "--seeds=3,4", "--lr_decay_steps=5,9", "--branches=one,two")
  assert (config.dataset.name, config.model.name, config.pruning.strategy) == (
      "synthetic", "conv2", "random")
  assert config.runtime.seeds == (3, 4) and config.training.lr_decay_steps == (5, 9)
  assert config.pruning.branches == ("one", "two")  # names stay names


def test_an_integer_list_flag_refuses_a_word_in_one_line(parsed):
  with pytest.raises(ConfigError, match="--seeds takes a comma-separated list of integers"):
    parsed("--seeds=3,x")
