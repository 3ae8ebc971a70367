"""Fixed sparsity patterns a strategy keeps: N:M (`--pruning_strategy=nm --nm=2:4`)."""
from typing import Tuple

from lth_tf.errors import ConfigError


def nm_pattern(text: str) -> Tuple[int, int]:
  """(N, M) of an `N:M` pattern (`PruningConfig.nm`), 1 <= N < M; a one-line `ConfigError`
  otherwise."""
  parts = str(text).split(":")
  try:
    n, m = (int(part) for part in parts) if len(parts) == 2 else (0, 0)
  except ValueError:
    n, m = 0, 0
  if not 1 <= n < m:
    raise ConfigError(f"nm must be N:M with 1 <= N < M (keep N of every M weights), e.g. 2:4; "
                      f"got {text!r}")
  return n, m
