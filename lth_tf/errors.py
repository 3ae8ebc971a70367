"""Error types that the command line turns into one-line messages and exit code 2."""


class UserError(Exception):
  """Bad input from the user: a flag, a config, a file. Reported without a traceback."""


class ConfigError(UserError):
  """A configuration value is out of range or inconsistent."""


class DataError(UserError):
  """A dataset is missing, unknown or corrupt."""


class TicketError(UserError):
  """A saved ticket or mask is corrupt or does not fit the model."""


class CorruptFileError(UserError):
  """A file of an experiment or ticket is missing, unreadable, truncated or not what it should be."""


class TrainingDiverged(RuntimeError):
  """The loss became NaN or Inf during training."""
