"""Atomic file writing, data-only array files, and the experiment-directory lock."""
import contextlib
import errno
import json
import math
import os
import shutil
import signal
import tempfile
from typing import Any, Dict, Iterator, Mapping

import numpy as np

from lth_tf.errors import CorruptFileError, TicketError, UserError


TEMP_PREFIX = ".tmp-"
_FAULT_ENV = "LTH_FAULT_KILL_AT"
_fault_hits: Dict[str, int] = {}


def fault_point(label: str) -> None:
  """Fault injection for tests: `LTH_FAULT_KILL_AT=label@n` SIGKILLs this process at the n-th hit."""
  spec = os.environ.get(_FAULT_ENV)
  if not spec:
    return
  target, _, count = spec.rpartition("@")
  if target != label:
    return
  _fault_hits[label] = _fault_hits.get(label, 0) + 1
  if _fault_hits[label] == int(count):
    os.kill(os.getpid(), signal.SIGKILL)


def remove_temporary_files(directory: str) -> int:
  """Removes temporary files left by a killed writer under `directory`; returns how many."""
  removed = 0
  for parent, folders, names in os.walk(directory):
    for name in names:
      if name.startswith(TEMP_PREFIX):
        os.remove(os.path.join(parent, name))
        removed += 1
    for name in [f for f in folders if f.startswith(TEMP_PREFIX)]:
      shutil.rmtree(os.path.join(parent, name))
      folders.remove(name)
      removed += 1
  return removed


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """Yields a temporary path in the same directory; on success it replaces `path` atomically.

  A reader never sees a partial file: either the old content, or the new one, whole.
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=os.path.basename(path))
  os.close(fd)
  try:
    yield tmp
    with open(tmp, "rb+") as handle:
      os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    fault_point(f"write:{os.path.basename(path)}")
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_text(path: str, text: str) -> None:
  with atomic_path(path) as tmp:
    with open(tmp, "w", encoding="utf-8") as handle:
      handle.write(text)


def finite_or_none(data: Any) -> Any:
  """`data` with every NaN or infinite float replaced by None, which JSON writes as null."""
  if isinstance(data, float):
    return data if math.isfinite(data) else None
  if isinstance(data, dict):
    return {key: finite_or_none(value) for key, value in data.items()}
  if isinstance(data, (list, tuple)):
    return [finite_or_none(value) for value in data]
  return data


def write_json(path: str, data: Any) -> None:
  """Writes strict JSON (no NaN or Infinity, which JSON does not have: they are written as null)."""
  text = json.dumps(finite_or_none(data), indent=2, sort_keys=True, allow_nan=False)
  write_text(path, text + "\n")


def read_json(path: str) -> Any:
  """Reads a JSON file; a missing, unreadable or malformed one is a CorruptFileError naming it."""
  try:
    with open(path, encoding="utf-8") as handle:
      return json.load(handle)
  except FileNotFoundError:
    raise CorruptFileError(f"{path}: no such file") from None
  except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError
    raise CorruptFileError(f"{path}: not valid JSON ({error})") from None
  except OSError as error:
    raise CorruptFileError(f"{path}: cannot be read ({error.strerror or error})") from None


def write_arrays(path: str, arrays: Mapping[str, np.ndarray]) -> None:
  """Writes named arrays to a compressed `.npz` atomically."""
  with atomic_path(path) as tmp:
    with open(tmp, "wb") as handle:
      np.savez_compressed(handle, **{k: np.asarray(v) for k, v in arrays.items()})


def read_arrays(path: str) -> Dict[str, np.ndarray]:
  """Reads an `.npz` written by `write_arrays`; never unpickles; corrupt files raise TicketError."""
  try:
    with np.load(path, allow_pickle=False) as data:
      return {k: data[k] for k in data.files}
  except FileNotFoundError:
    raise TicketError(f"{path}: no such file") from None
  except (ValueError, OSError, EOFError) as error:
    raise TicketError(f"{path}: not a readable array file ({error})") from None
  except Exception as error:  # zipfile.BadZipFile and friends
    raise TicketError(f"{path}: corrupt array file ({type(error).__name__}: {error})") from None


class DirectoryLock:
  """An exclusive lock on an experiment directory, held by one process at a time.

  The lock file holds the owner's pid; a lock whose owner no longer runs is stale and taken over.
  """

  def __init__(self, directory: str):
    self.path = os.path.join(directory, ".lock")
    self._held = False

  def __enter__(self) -> "DirectoryLock":
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        owner = self._owner()
        if owner is not None and _process_alive(owner):
          raise UserError(
              f"{os.path.dirname(self.path)} is in use by another lth process (pid {owner}); "
              "wait for it to finish") from None
        with contextlib.suppress(FileNotFoundError):
          os.remove(self.path)
        continue
      with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
      self._held = True
      return self
    raise UserError(f"could not lock {os.path.dirname(self.path)}")

  def _owner(self):
    try:
      with open(self.path) as handle:
        return int(handle.read().strip() or "0") or None
    except (OSError, ValueError):
      return None

  def __exit__(self, *exc) -> None:
    if self._held:
      with contextlib.suppress(FileNotFoundError):
        os.remove(self.path)
      self._held = False


def _process_alive(pid: int) -> bool:
  if pid == os.getpid():
    return True
  try:
    os.kill(pid, 0)
  except OSError as error:
    return error.errno == errno.EPERM
  return True
