"""Where the lottery runner keeps its artifacts: files on the chief, memory on the other workers
of a multi-worker training, and memory on a remote task's worker (`MemoryStore`).

Only the chief of a multi-worker run writes files. The other workers train the same steps and
need the same intermediate results (rewind point, masks, trained weights, metrics): they keep
what they would have written in memory, and read the chief's files where they can see them
(a shared `root_dir`), which is how a multi-worker run resumes.
"""
import os
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from lth_tf import io


class ArtifactStore:
  """Writes and reads an experiment's arrays and JSON files.

  Args:
    writes: True on the chief (files are written), False on other workers (kept in memory).
  """

  def __init__(self, writes: bool):
    self.writes = writes
    self._memory: Dict[str, Any] = {}

  def write_arrays(self, path: str, arrays: Mapping[str, np.ndarray],
                   compress: bool = True) -> None:
    if self.writes:
      io.write_arrays(path, arrays, compress)
    else:
      self._memory[path] = {k: np.array(v) for k, v in arrays.items()}

  def write_json(self, path: str, data: Any) -> None:
    if self.writes:
      io.write_json(path, data)
    else:
      self._memory[path] = data

  def read_arrays(self, path: str) -> Dict[str, np.ndarray]:
    if path in self._memory:
      return dict(self._memory[path])
    return io.read_arrays(path)

  def read_json(self, path: str) -> Any:
    if path in self._memory:
      return self._memory[path]
    return io.read_json(path)

  def exists(self, path: str) -> bool:
    return path in self._memory or os.path.exists(path)


class MemoryStore:
  """An experiment directory as a task on another machine sees it: it never touches the
  filesystem. It holds the files the task reads (`files`: path -> arrays, or JSON data) and
  records what the task writes, in order (`written`), for the one writer of the directory to
  apply (`apply`)."""

  writes = False

  def __init__(self, files: Mapping[str, Any] = ()):
    self._files: Dict[str, Any] = dict(files)
    self.written: List[Tuple[str, str, Any, bool]] = []  # (kind, path, payload, compress)

  def write_arrays(self, path: str, arrays: Mapping[str, np.ndarray],
                   compress: bool = True) -> None:
    arrays = {k: np.array(v) for k, v in arrays.items()}
    self._files[path] = arrays
    self.written.append(("arrays", path, arrays, compress))

  def write_json(self, path: str, data: Any) -> None:
    self._files[path] = data
    self.written.append(("json", path, data, False))

  def _read(self, path: str) -> Any:
    if path not in self._files:
      raise FileNotFoundError(f"{path} was not sent to this task")
    return self._files[path]

  def read_arrays(self, path: str) -> Dict[str, np.ndarray]:
    return dict(self._read(path))

  def read_json(self, path: str) -> Any:
    return self._read(path)

  def exists(self, path: str) -> bool:
    return path in self._files

  def replay(self, written: Sequence[Tuple[str, str, Any, bool]]) -> None:
    """Takes what another attempt of the task wrote before it was killed (`apply`): as files
    this attempt wrote, so that they reach the directory's writer."""
    apply(self, written)


def apply(store, written: Sequence[Tuple[str, str, Any, bool]]) -> None:
  """Writes what a task recorded in its `MemoryStore` (`written`) through `store`, in order;
  a file the store already holds is left as it is (a retried task writes the same values)."""
  for kind, path, payload, compress in written:
    if store.exists(path):
      continue
    if kind == "arrays":
      store.write_arrays(path, payload, compress)
    else:
      store.write_json(path, payload)
