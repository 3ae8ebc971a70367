"""The `Mask` type: which prunable weights survive, keyed by weight name, with density accounting."""
import dataclasses
from typing import Dict, Iterator, Mapping, Tuple

import numpy as np

from lth_tf.errors import TicketError


@dataclasses.dataclass(frozen=True)
class Mask(Mapping[str, np.ndarray]):
  """An immutable map from prunable-weight name (e.g. `fc1/kernel`) to a boolean keep-array."""
  arrays: Tuple[Tuple[str, np.ndarray], ...]

  @classmethod
  def from_dict(cls, arrays: Mapping[str, np.ndarray]) -> "Mask":
    items = []
    for name in arrays:
      array = np.asarray(arrays[name])
      if array.dtype != np.bool_:
        if not np.isin(array, (0, 1)).all():
          raise TicketError(f"mask {name!r} holds values other than 0 and 1")
        array = array.astype(np.bool_)
      array = array.copy()
      array.setflags(write=False)
      items.append((name, array))
    return cls(tuple(items))

  @classmethod
  def ones_like(cls, weights: Mapping[str, np.ndarray]) -> "Mask":
    return cls.from_dict({name: np.ones(np.shape(w), np.bool_) for name, w in weights.items()})

  def __getitem__(self, name: str) -> np.ndarray:
    for key, array in self.arrays:
      if key == name:
        return array
    raise KeyError(name)

  def __iter__(self) -> Iterator[str]:
    return (key for key, _ in self.arrays)

  def __len__(self) -> int:
    return len(self.arrays)

  def __eq__(self, other) -> bool:
    if not isinstance(other, Mask) or list(self) != list(other):
      return False
    return all(np.array_equal(self[k], other[k]) for k in self)

  def __hash__(self):
    return hash(tuple(self))

  def num_remaining(self) -> int:
    return int(sum(int(a.sum()) for _, a in self.arrays))

  def num_weights(self) -> int:
    return int(sum(a.size for _, a in self.arrays))

  def weights_remaining(self) -> float:
    """Fraction of prunable weights kept, in (0, 1]."""
    return self.num_remaining() / self.num_weights()

  def layer_densities(self) -> Dict[str, float]:
    return {k: float(a.mean()) for k, a in self.arrays}

  def layer_counts(self) -> Dict[str, int]:
    return {k: int(a.sum()) for k, a in self.arrays}

  def is_subset_of(self, other: "Mask") -> bool:
    """True when every weight kept here is also kept by `other` (masks only shrink)."""
    return list(self) == list(other) and all(
        not np.any(self[k] & ~other[k]) for k in self)

  def hamming_distance(self, other: "Mask") -> float:
    """The normalised Hamming distance to `other`: the fraction of all prunable weights that
    one mask keeps and the other prunes (0: the same masks; 1: complementary ones).

    Raises:
      TicketError: `other` has other weight names or shapes.
    """
    other.check_fits({name: array.shape for name, array in self.arrays})
    differing = sum(int(np.count_nonzero(array != other[name])) for name, array in self.arrays)
    return differing / self.num_weights()

  def check_fits(self, shapes: Mapping[str, Tuple[int, ...]]) -> None:
    """Raises `TicketError` unless this mask has exactly these names and shapes."""
    if set(self) != set(shapes):
      missing = sorted(set(shapes) - set(self))
      extra = sorted(set(self) - set(shapes))
      raise TicketError(
          f"mask does not fit the model: missing {missing or 'none'}, unexpected {extra or 'none'}")
    for name, shape in shapes.items():
      if tuple(self[name].shape) != tuple(shape):
        raise TicketError(
            f"mask {name!r} has shape {tuple(self[name].shape)}, the model needs {tuple(shape)}")

  def to_arrays(self) -> Dict[str, np.ndarray]:
    return {k: np.array(a) for k, a in self.arrays}

  def random_like(self, seed: int) -> "Mask":
    """A random mask keeping exactly as many weights in every layer as this one (seeded)."""
    scores = random_scores(self, seed)
    return Mask.from_dict({name: keep_top(scores[name], int(self[name].sum())) for name in self})


def random_scores(shapes: Mapping[str, np.ndarray], seed: int) -> Dict[str, np.ndarray]:
  """Uniform scores in [0, 1) for every array of `shapes`, from one seeded generator in order."""
  rng = np.random.default_rng(seed)
  return {name: rng.random(np.shape(shapes[name])) for name in shapes}


def keep_top(scores: np.ndarray, keep: int) -> np.ndarray:
  """Boolean array keeping the `keep` highest finite scores (ties broken by position)."""
  flat = scores.reshape(-1)
  order = np.argsort(-flat, kind="stable")
  out = np.zeros(flat.shape, np.bool_)
  out[order[:keep]] = True
  return out.reshape(scores.shape)
