"""Where the lottery runner keeps its artifacts: files on the chief, memory on the other workers.

Only the chief of a multi-worker run writes files. The other workers train the same steps and
need the same intermediate results (rewind point, masks, trained weights, metrics): they keep
what they would have written in memory, and read the chief's files where they can see them
(a shared `root_dir`), which is how a multi-worker run resumes.
"""
import os
from typing import Any, Dict, Mapping

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
