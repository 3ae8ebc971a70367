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


class WriteError(UserError):
  """A file could not be written: a full disk, no permission, a read-only file system."""


class TrainingDiverged(RuntimeError):
  """The loss became NaN or Inf during training."""


class Interrupted(KeyboardInterrupt):
  """Ctrl-C (SIGINT) or SIGTERM stopped a command: one line on stderr, exit code 128 + signal.

  A KeyboardInterrupt, so that what handles Ctrl-C handles SIGTERM alike; `where` says what was
  being trained when it came, if anything ("during replicate 0 level 1 branch ticket").
  """

  def __init__(self, signum: int, where: str = ""):
    super().__init__(signum, where)
    self.signum = signum
    self.where = where
