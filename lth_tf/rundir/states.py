"""The training states an experiment directory keeps: a branch's checkpoint and a replicate's
rewind point. Their one schema, writer and reader.

Both are one `.npz` of arrays:
- `w/<layer>/<variable>`: every weight (the names of `lth_tf.training.get_weights`);
- `optimizer/<NNNN>`: every optimizer variable by position (the layout of
  `lth_tf.training.optimizers.get_state`, whose keys already carry this prefix);
- a checkpoint also has `iteration` (int64 scalar) and `curve` (the evaluation rows so far, as a
  JSON string); a rewind point has neither (its iteration is the config's rewind iteration).
"""
import dataclasses
import json
from typing import Dict, List, Mapping, Optional

import numpy as np

from lth_tf.errors import CorruptFileError

WEIGHT_PREFIX = "w/"
OPTIMIZER_PREFIX = "optimizer/"


@dataclasses.dataclass(frozen=True)
class TrainingState:
  """Weights and optimizer state at one iteration.

  Attributes:
    weights: every weight by `layer/variable` name.
    optimizer: the optimizer's variables (`optimizer/NNNN` keys), possibly empty.
    iteration: the iteration the state belongs to (a checkpoint), or None (a rewind point).
    curve: the evaluation rows recorded up to `iteration` (a checkpoint), or None.
  """
  weights: Dict[str, np.ndarray]
  optimizer: Dict[str, np.ndarray]
  iteration: Optional[int] = None
  curve: Optional[List[Dict]] = None

  def to_arrays(self) -> Dict[str, np.ndarray]:
    arrays = {WEIGHT_PREFIX + name: value for name, value in self.weights.items()}
    for name, value in self.optimizer.items():
      if not name.startswith(OPTIMIZER_PREFIX):
        raise ValueError(f"optimizer state key {name!r} lacks the {OPTIMIZER_PREFIX!r} prefix")
      arrays[name] = value
    if self.iteration is not None:
      arrays["iteration"] = np.array(self.iteration, np.int64)
      arrays["curve"] = np.array(json.dumps(self.curve or []))
    return arrays

  @classmethod
  def from_arrays(cls, arrays: Mapping[str, np.ndarray], path: str = "") -> "TrainingState":
    """The state stored in `arrays` (read from `path`, named in the error).

    Raises:
      CorruptFileError: a key outside the schema, or an unreadable iteration or curve.
    """
    weights, optimizer = {}, {}
    for name, value in arrays.items():
      if name.startswith(WEIGHT_PREFIX):
        weights[name[len(WEIGHT_PREFIX):]] = value
      elif name.startswith(OPTIMIZER_PREFIX):
        optimizer[name] = value
      elif name not in ("iteration", "curve"):
        raise CorruptFileError(f"{path or 'training state'}: unknown entry {name!r}")
    if "iteration" not in arrays:
      return cls(weights, optimizer)
    try:
      return cls(weights, optimizer, int(arrays["iteration"]), json.loads(str(arrays["curve"])))
    except (KeyError, TypeError, ValueError) as error:
      raise CorruptFileError(f"{path or 'training state'}: unreadable checkpoint "
                             f"({error})") from None


def read(store, path: str) -> TrainingState:
  """The state in `path` through `store` (an `ArtifactStore` or `lth_tf.io`: `read_arrays`)."""
  return TrainingState.from_arrays(store.read_arrays(path), path)


def write(store, path: str, state: TrainingState) -> None:
  """Writes `state` to `path` through `store` (anything with `write_arrays`): a checkpoint, written
  at every evaluation and deleted when its branch finishes, uncompressed; a rewind point
  compressed, as every file an experiment keeps."""
  store.write_arrays(path, state.to_arrays(), compress=state.iteration is None)
