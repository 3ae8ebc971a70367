"""How much two masks share, per layer and overall, beside two independent random masks with the
same per-layer counts (numpy only).

For one layer of n weights whose masks keep the sets A and B (k_a = |A|, k_b = |B| weights):
- the Jaccard index J = |A∩B| / |A∪B| (1 for two empty sets, which are equal);
- the fraction of A's kept weights that B keeps, |A∩B| / k_a (and of B's that A keeps).

The baseline is two independent masks drawn uniformly among those keeping k_a and k_b of the n
weights. Their intersection X = |A∩B| is hypergeometric (n weights, k_a marked, k_b drawn), so
  E[X] = k_a k_b / n   and   E[|A∩B| / k_a] = k_b / n   exactly;
  E[J] = Σ_x P(X = x) · x / (k_a + k_b − x),
which has no closed form and is summed exactly over the hypergeometric pmf (`expected_jaccard`),
not approximated by E[X] / (k_a + k_b − E[X]) (that ratio is close only for large layers). The
pmf is built from its ratio P(x+1)/P(x) = (k_a−x)(k_b−x) / ((x+1)(n−k_a−k_b+x+1)) on the window
mean ± (40σ + 10) of its support, and normalised: the hypergeometric is log-concave, so its tails
fall off at least exponentially in units of σ and what lies beyond 40σ is far below double
precision (the tests check the window against the full sum).

Overall, over several layers, the counts add: J = Σ X_l / Σ (k_a,l + k_b,l − X_l). The random
masks are drawn independently per layer, so Σ X_l is the sum of independent hypergeometrics:
its pmf is the convolution of the layers' pmfs, and E[J] is summed exactly over it.
"""
import dataclasses
import math
from typing import List, Sequence, Tuple

import numpy as np

WINDOW_SDS = 40.0
# Partial sums of 0/1 products stay exact in float32 below 2**24; blocks of this many weights do.
_BLOCK = 1 << 16


@dataclasses.dataclass(frozen=True)
class Overlap:
  """The overlap of two masks (of a layer, or of several layers together) and its baseline.

  Attributes:
    weights: n, the weights compared.
    kept_a, kept_b: how many weights each mask keeps.
    both: how many weights both keep, |A∩B|.
    expected_both: E|A∩B| for two independent random masks of the same counts.
    jaccard, expected_jaccard: |A∩B| / |A∪B| and its expectation.
    a_in_b, expected_a_in_b: |A∩B| / |A| (NaN if A keeps nothing) and its expectation.
    b_in_a, expected_b_in_a: |A∩B| / |B| and its expectation.
  """
  weights: int
  kept_a: int
  kept_b: int
  both: int
  expected_both: float
  jaccard: float
  expected_jaccard: float
  a_in_b: float
  expected_a_in_b: float
  b_in_a: float
  expected_b_in_a: float


def _fraction(numerator: float, denominator: float) -> float:
  return numerator / denominator if denominator else math.nan


def _jaccard(both, total):
  """|A∩B| / |A∪B| from |A∩B| and |A| + |B| (elementwise); 1 where both sets are empty."""
  both = np.asarray(both, np.float64)
  union = total - both
  return np.where(union > 0, both / np.maximum(union, 1), 1.0)


def hypergeometric(n: int, kept_a: int, kept_b: int) -> Tuple[int, np.ndarray]:
  """The pmf of |A∩B| for independent random masks keeping `kept_a` and `kept_b` of `n` weights.

  Returns:
    (lo, pmf): P(|A∩B| = lo + i) = pmf[i], on the window mean ± (40σ + 10) of the support.
  """
  if not (0 <= kept_a <= n and 0 <= kept_b <= n):
    raise ValueError(f"counts {kept_a}, {kept_b} out of range for {n} weights")
  mean = kept_a * kept_b / n if n else 0.0
  variance = mean * (n - kept_a) / n * (n - kept_b) / (n - 1) if n > 1 else 0.0
  half = WINDOW_SDS * math.sqrt(variance) + 10
  lo = max(kept_a + kept_b - n, 0, math.floor(mean - half))
  hi = min(kept_a, kept_b, math.ceil(mean + half))
  x = np.arange(lo, hi, dtype=np.float64)
  log_ratio = (np.log(kept_a - x) + np.log(kept_b - x) - np.log(x + 1)
               - np.log(n - kept_a - kept_b + x + 1))
  log_pmf = np.concatenate([[0.0], np.cumsum(log_ratio)])
  pmf = np.exp(log_pmf - log_pmf.max())
  return lo, pmf / pmf.sum()


def expected_jaccard(n: int, kept_a: int, kept_b: int) -> float:
  """E[J] for two independent random masks keeping `kept_a` and `kept_b` of `n` weights."""
  lo, pmf = hypergeometric(n, kept_a, kept_b)
  return float(np.sum(pmf * _jaccard(lo + np.arange(len(pmf)), kept_a + kept_b)))


def layer(n: int, kept_a: int, kept_b: int, both: int) -> Overlap:
  """The overlap of one layer's masks from its counts."""
  expected = kept_a * kept_b / n if n else 0.0
  return Overlap(n, kept_a, kept_b, both, expected,
                 float(_jaccard(both, kept_a + kept_b)), expected_jaccard(n, kept_a, kept_b),
                 _fraction(both, kept_a), _fraction(expected, kept_a),
                 _fraction(both, kept_b), _fraction(expected, kept_b))


def of_arrays(a: np.ndarray, b: np.ndarray) -> Overlap:
  """The overlap of two boolean keep-arrays of one shape."""
  a, b = np.asarray(a, bool), np.asarray(b, bool)
  if a.shape != b.shape:
    raise ValueError(f"shapes {a.shape} and {b.shape} differ")
  return layer(a.size, int(a.sum()), int(b.sum()), int(np.count_nonzero(a & b)))


def _convolve(pmfs: Sequence[np.ndarray]) -> np.ndarray:
  """The pmf of a sum of independent variables, from theirs (through one FFT product)."""
  length = sum(len(p) for p in pmfs) - len(pmfs) + 1
  if len(pmfs) == 1:
    return pmfs[0]
  size = 1 << max(length - 1, 1).bit_length()
  spectrum = np.ones(size // 2 + 1, np.complex128)
  for pmf in pmfs:
    spectrum *= np.fft.rfft(pmf, size)
  out = np.clip(np.fft.irfft(spectrum, size)[:length], 0.0, None)
  return out / out.sum()


def combined(layers: Sequence[Overlap]) -> Overlap:
  """The overlap of several layers taken together (counts summed), with its exact baseline."""
  layers = list(layers)
  if not layers:
    raise ValueError("no layers to combine")
  n = sum(o.weights for o in layers)
  kept_a, kept_b = sum(o.kept_a for o in layers), sum(o.kept_b for o in layers)
  both = sum(o.both for o in layers)
  expected = float(sum(o.expected_both for o in layers))
  windows = [hypergeometric(o.weights, o.kept_a, o.kept_b) for o in layers]
  pmf = _convolve([p for _, p in windows])
  values = sum(lo for lo, _ in windows) + np.arange(len(pmf))
  return Overlap(n, kept_a, kept_b, both, expected, float(_jaccard(both, kept_a + kept_b)),
                 float(np.sum(pmf * _jaccard(values, kept_a + kept_b))),
                 _fraction(both, kept_a), _fraction(expected, kept_a),
                 _fraction(both, kept_b), _fraction(expected, kept_b))


def intersections(masks: Sequence[np.ndarray]) -> np.ndarray:
  """|A_i ∩ A_j| for every pair of same-shaped boolean masks (the diagonal holds |A_i|)."""
  flat: List[np.ndarray] = [np.asarray(m, bool).reshape(-1) for m in masks]
  out = np.zeros((len(flat), len(flat)), np.int64)
  for start in range(0, flat[0].size if flat else 0, _BLOCK):
    block = np.stack([f[start:start + _BLOCK] for f in flat]).astype(np.float32)
    out += np.rint(block @ block.T).astype(np.int64)
  return out
