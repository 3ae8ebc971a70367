"""Atomic file writing, data-only array files, and the experiment-directory lock."""
import contextlib
import errno
import fcntl
import json
import math
import os
import re
import shutil
import signal
import tempfile
from typing import Any, Dict, Iterator, Mapping, Tuple

import numpy as np

from lth_tf.errors import CorruptFileError, TicketError, UserError, WriteError


TEMP_PREFIX = ".tmp-"
# Fault injection for tests: `ENV=label@n` acts at the n-th hit of `fault_point(label)`.
_FAULT_KILL_ENV = "LTH_FAULT_KILL_AT"  # SIGKILLs this process
_FAULT_ENOSPC_ENV = "LTH_FAULT_ENOSPC_AT"  # raises OSError ENOSPC, as a full disk does
_fault_hits: Dict[Tuple[str, str], int] = {}
# What to do about a failed write, by errno; others: just rerun.
_REMEDIES = {errno.ENOSPC: "free space", errno.EDQUOT: "free space",
             errno.EACCES: "make it writable", errno.EPERM: "make it writable",
             errno.EROFS: "make it writable"}


def fault_point(label: str) -> None:
  """Fault injection for tests: `LTH_FAULT_KILL_AT=label@n` SIGKILLs this process at the n-th
  hit, `LTH_FAULT_ENOSPC_AT=label@n` raises the OSError of a full disk there."""
  for env in (_FAULT_KILL_ENV, _FAULT_ENOSPC_ENV):
    spec = os.environ.get(env)
    if not spec:
      continue
    target, _, count = spec.rpartition("@")
    if target != label:
      continue
    _fault_hits[env, label] = _fault_hits.get((env, label), 0) + 1
    if _fault_hits[env, label] != int(count):
      continue
    if env == _FAULT_KILL_ENV:
      os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def write_failure(path: str, error: OSError) -> str:
  """The one-line message for an OSError while writing `path` atomically."""
  reason = (os.strerror(error.errno) if error.errno else str(error)).lower()
  remedy = _REMEDIES.get(error.errno)
  return (f"{reason} while writing {path}; the files written so far are intact: "
          f"{remedy + ' and rerun' if remedy else 'rerun'} to resume")


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

  A reader never sees a partial file: either the old content, or the new one, whole. An OSError
  while writing (a full disk, no permission) is a `WriteError` naming `path`, and the
  temporary file is removed.
  """
  directory = os.path.dirname(os.path.abspath(path))
  tmp = None
  try:
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=os.path.basename(path))
    os.close(fd)
    yield tmp
    with open(tmp, "rb+") as handle:
      os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    fault_point(f"write:{os.path.basename(path)}")
    os.replace(tmp, path)
  except OSError as error:
    raise WriteError(write_failure(path, error)) from None
  finally:
    if tmp is not None and os.path.exists(tmp):
      os.remove(tmp)


def write_text(path: str, text: str) -> None:
  with atomic_path(path) as tmp:
    with open(tmp, "w", encoding="utf-8") as handle:
      handle.write(text)


def copy_file(source: str, path: str) -> None:
  """Copies `source` to `path` atomically (a copy, never a link: it stays whole when moved)."""
  with atomic_path(path) as tmp:
    shutil.copyfile(source, tmp)


def copy_tree(source: str, path: str) -> None:
  """Copies the directory `source` to `path`: into a temporary folder beside it (removed by
  `remove_temporary_files` if the copy is killed), then renamed into place."""
  staging = os.path.join(os.path.dirname(os.path.abspath(path)),
                         TEMP_PREFIX + os.path.basename(path))
  try:
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(staging, path)
  except OSError as error:
    raise WriteError(write_failure(path, error)) from None
  finally:
    shutil.rmtree(staging, ignore_errors=True)


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


def write_arrays(path: str, arrays: Mapping[str, np.ndarray], compress: bool = True) -> None:
  """Writes named arrays to an `.npz` atomically: compressed, or stored (`compress=False`: about
  45 times faster to write and 1.6 times the size for trained float32 weights; for files
  written often and deleted at the end, such as checkpoints). `read_arrays` reads both."""
  save = np.savez_compressed if compress else np.savez
  with atomic_path(path) as tmp:
    with open(tmp, "wb") as handle:
      save(handle, **{k: np.asarray(v) for k, v in arrays.items()})


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

  The lock is an `flock` on the file `.lock`, which the kernel releases when the holding
  process dies however it dies: a lock file that nobody holds is stale whatever pid it names
  (its owner may be gone, or its pid reused by another program), and is taken over. The
  holder writes its pid into the file for the message another process gives, and deletes the
  file before releasing it; a process that locked a file just deleted sees that it is no
  longer `.lock` and tries again.
  """

  def __init__(self, directory: str):
    self.path = os.path.join(directory, ".lock")
    self._fd = None

  def __enter__(self) -> "DirectoryLock":
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    for _ in range(100):
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        owner = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        raise UserError(
            f"{os.path.dirname(self.path)} is in use by another lth process"
            f"{f' (pid {owner})' if owner.isdigit() else ''}; wait for it to finish") from None
      if _same_file(fd, self.path):
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self
      os.close(fd)  # the holder deleted the file between our open and our flock
    raise UserError(f"could not lock {os.path.dirname(self.path)}")

  def __exit__(self, *exc) -> None:
    if self._fd is not None:
      with contextlib.suppress(FileNotFoundError):
        os.remove(self.path)
      os.close(self._fd)
      self._fd = None


def _same_file(fd: int, path: str) -> bool:
  try:
    named = os.stat(path)
  except FileNotFoundError:
    return False
  held = os.fstat(fd)
  return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


# ---- a directory written whole: tickets, reports --------------------------------------------

def _staging_prefix(out: str) -> str:
  """The prefix of the staging directories of writes to `out` (`tempfile.mkdtemp` adds 8
  characters of its own)."""
  return TEMP_PREFIX + os.path.basename(out) + "-"


@contextlib.contextmanager
def _flocked(path: str, blocking: bool = True) -> Iterator[bool]:
  """An `flock` on the directory `path` (released when the holder dies, however it dies);
  yields False, without waiting, where `blocking` is off and another process holds it."""
  fd = os.open(path, os.O_RDONLY)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
      yield False
      return
    yield True
  finally:
    os.close(fd)


def _recover(out: str) -> None:
  """Finishes what writes to `out` killed before their end left beside it (called with the
  parent's lock held, so no swap is under way): the previous content, moved aside between a
  swap's two renames, is put back where `out` is missing, and removed otherwise; staging
  directories whose writer is gone (their lock is free) are removed."""
  parent = os.path.dirname(out)
  own = re.compile(re.escape(_staging_prefix(out)) + r"[a-z0-9_]{8}(\.previous)?$")
  for name in sorted(os.listdir(parent)):
    path = os.path.join(parent, name)
    if not own.match(name) or not os.path.isdir(path):
      continue
    if name.endswith(".previous"):
      if not os.path.exists(out):
        os.replace(path, out)
      else:
        shutil.rmtree(path, ignore_errors=True)
      continue
    with _flocked(path, blocking=False) as free:
      if free:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def published_directory(out_dir: str, fault_label: str = "") -> Iterator[str]:
  """Yields a new, empty staging directory beside `out_dir`; once the body succeeds it becomes
  `out_dir` whole, replacing what was there (the caller has checked that this is its own
  earlier output). A reader of `out_dir` sees the old content or the new one, never a mix.

  - A failure removes the staging directory and leaves `out_dir` as it was.
  - A killed write leaves a staging directory (or, between the swap's two renames, the old
    content moved aside) that the next write to `out_dir` finishes first (`_recover`).
  - Concurrent writes to `out_dir` each stage their own directory; their swaps are serialised
    by a lock on the parent directory, so the last to finish wins, whole.

  `fault_label` names the moment between the two renames for fault-injection tests.
  """
  out = os.path.abspath(out_dir)
  parent = os.path.dirname(out)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(dir=parent, prefix=_staging_prefix(out))
  previous = staging + ".previous"
  try:
    with _flocked(staging):  # marks the staging directory as in use by this process
      yield staging
      umask = os.umask(0)
      os.umask(umask)
      os.chmod(staging, 0o777 & ~umask)  # as a directory made by makedirs would be
      with _flocked(parent):
        _recover(out)
        if os.path.isdir(out) and os.listdir(out):
          os.replace(out, previous)
          if fault_label:
            fault_point(fault_label)
        elif os.path.isdir(out):
          os.rmdir(out)
        os.replace(staging, out)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(previous, ignore_errors=True)
